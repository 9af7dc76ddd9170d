// kiln/ptq/model.hpp — post-training quantisation of a float model: the object you run, inspect
// and emit.
//
//   auto qm = kiln::ptq::quantize_model(model, calibration_batches, {});   // model: fn(x) -> y
//   kiln::Tensor<float> y = qm(x);                                          // int8 inside
//   qm.print_report(std::cout);                                             // per-layer scales
//   kiln::ptq::Evaluation e = qm.evaluate(eval_batches, labels);            // float vs int8
//   std::string header = qm.emit_header("digits");                          // ptq/emit.hpp
//
// The model is traced at the calibration batches' shape (one input, one output), simplified like
// compile() does, observed on every batch (ptq/calibrate.hpp) and rewritten to int8
// (ptq/rewrite.hpp). Both the float and the int8 graph run through the engine's Executable (the
// path compile() takes), so the evaluation compares like with like. Host only (heap, strings).
#pragma once

#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "../passes/fold_channel_affine.hpp"
#include "../passes/simplify.hpp"
#include "../trace/compile.hpp"
#include "rewrite.hpp"

namespace kiln::ptq {

/// Float model versus its int8 version on evaluation batches.
struct Evaluation {
  index_t samples = 0;               ///< rows (all dimensions but the last) over every batch
  double float_accuracy = -1.0;      ///< top-1 over the last axis, when labels are given
  double int8_accuracy = -1.0;
  double agreement = 0.0;            ///< rows whose argmax is the same in both
  double max_abs_error = 0.0, mean_abs_error = 0.0;  ///< int8 output (dequantised) vs float
};

namespace detail {

/// Traces `fn` at `x` (one input, one output) into `t` and cleans the graph up as compile() does,
/// batch norm folded into the conv/linear before it (new constants in `store`): the float graph
/// post-training quantisation and the FP16 rewrite (ptq/fp16.hpp) start from. False after a
/// reported error.
template <class Fn>
bool trace_float_model(Fn fn, const Tensor<float>& x, Tracer& t, ConstantStore& store) {
  Graph& f = t.graph;
  if (!kiln::detail::trace_model(fn, t, x)) return false;
  if (f.num_inputs() != 1 || f.num_outputs() != 1) {
    fail(Status(Errc::not_supported) << "ptq: models of one input and one output (got " << f.num_inputs() << " and "
                                     << f.num_outputs() << ')');
    return false;
  }
  auto affine = [&store](const void* data, index_t rows, index_t cols, const void* scale, const void* shift) {
    const auto* w = static_cast<const float*>(data);
    const auto* sc = static_cast<const float*>(scale);
    const auto* sh = static_cast<const float*>(shift);
    std::vector<float> out(static_cast<std::size_t>(rows * cols));
    for (index_t r = 0; r < rows; ++r)
      for (index_t c = 0; c < cols; ++c)
        out[static_cast<std::size_t>(r * cols + c)] = w[r * cols + c] * (sc ? sc[r] : 1.f) + (sh ? sh[r] : 0.f);
    return static_cast<const void*>(store.add(std::move(out)));
  };
  for (int round = 0; round < 4; ++round) {
    const int s = passes::simplify_algebra(f), c = passes::eliminate_common_subexpressions(f);
    const int a = passes::fold_channel_affine(f, affine);
    f.remove_dead();
    if (s + c + a == 0) break;
  }
  return true;
}

/// Runs a plan of one-input one-output graph `g` on `x` (shape and dtypes checked, error reported).
template <class Out, class In>
Tensor<Out> run_plan(const runtime::Executable& exe, const Graph& g, std::vector<std::uint8_t>& arena,
                     const Tensor<In>& x) {
  const Node& in = g[g.input(0)];
  const Node& out = g[g.output(0)];
  if (x.shape() != in.shape || dtype_of_v<In> != in.dtype || dtype_of_v<Out> != out.dtype) {
    fail(Status(Errc::shape_mismatch) << "ptq: the model takes " << in.shape << ' ' << in.dtype << " and returns "
                                      << out.dtype << "; called with " << x.shape() << ' ' << dtype_of_v<In>
                                      << " for " << dtype_of_v<Out>);
    return Tensor<Out>();
  }
  Tensor<Out> y(out.shape);
  const std::size_t need = engine::arena_bytes(exe) + kAlignment;
  if (arena.size() < need) arena.resize(need);
  const void* ins[1] = {x.data()};
  void* outs[1] = {y.data()};
  engine::run(exe, ins, outs, align_up(arena.data()));
  return y;
}

}  // namespace detail

class QuantizedModel;
/// Quantises `fn` (a function of one f32 tensor returning one, as compile() takes) with the
/// calibration batches (all of the shape the model will run at). Errors are reported by fail()
/// (kiln::Error with exceptions) and give a model without plans.
template <class Fn>
QuantizedModel quantize_model(Fn fn, const std::vector<Tensor<float>>& calibration, const Options& o = {});

class QuantizedModel {
 public:
  /// The int8 graph (as rewritten, before the Executable's own passes).
  const Graph& graph() const { return *graph_; }
  /// The float graph it came from (traced and simplified).
  const Graph& float_graph() const { return tracer_->graph; }
  const std::vector<Layer>& layers() const { return layers_; }
  /// Float-graph node id -> node of graph() holding that value (rewrite.hpp's value_map()).
  const std::vector<int>& value_map() const { return value_map_; }
  const Options& options() const { return options_; }
  std::size_t arena_bytes() const { return engine::arena_bytes(*int8_exe_); }
  std::size_t float_arena_bytes() const { return engine::arena_bytes(*float_exe_); }

  /// Runs the int8 model (f32 in/out unless the options asked for int8 ends).
  template <class Out = float, class In>
  Tensor<Out> run(const Tensor<In>& x) const {
    return run_exe<Out>(*int8_exe_, *graph_, arena_, x);
  }
  Tensor<float> operator()(const Tensor<float>& x) const { return run<float>(x); }
  /// The float model on the same engine path.
  Tensor<float> run_float(const Tensor<float>& x) const { return run_exe<float>(*float_exe_, float_graph(), arena_, x); }

  /// Runs both on every batch; labels[b][row] (optional) give top-1 accuracies.
  Evaluation evaluate(const std::vector<Tensor<float>>& batches, const std::vector<std::vector<int>>& labels = {}) const {
    Evaluation e;
    index_t right_f = 0, right_q = 0, agree = 0, elems = 0;
    double err_sum = 0.0;
    for (std::size_t b = 0; b < batches.size(); ++b) {
      const Tensor<float> yf = run_float(batches[b]);
      const Tensor<float> yq = int8_as_float(batches[b]);
      if (yf.empty() || yq.empty()) return e;
      const index_t classes = yf.shape().back(), rows = classes ? yf.size() / classes : 0;
      for (index_t r = 0; r < rows; ++r) {
        index_t af = 0, aq = 0;
        for (index_t c = 0; c < classes; ++c) {
          const float f = yf[r * classes + c], q = yq[r * classes + c];
          if (f > yf[r * classes + af]) af = c;
          if (q > yq[r * classes + aq]) aq = c;
          const double d = std::fabs(static_cast<double>(f) - q);
          e.max_abs_error = std::max(e.max_abs_error, d);
          err_sum += d;
          ++elems;
        }
        agree += af == aq;
        if (b < labels.size() && static_cast<std::size_t>(r) < labels[b].size()) {
          right_f += af == labels[b][static_cast<std::size_t>(r)];
          right_q += aq == labels[b][static_cast<std::size_t>(r)];
        }
        ++e.samples;
      }
    }
    if (e.samples == 0) return e;
    e.agreement = static_cast<double>(agree) / static_cast<double>(e.samples);
    e.mean_abs_error = elems ? err_sum / static_cast<double>(elems) : 0.0;
    if (!labels.empty()) {
      e.float_accuracy = static_cast<double>(right_f) / static_cast<double>(e.samples);
      e.int8_accuracy = static_cast<double>(right_q) / static_cast<double>(e.samples);
    }
    return e;
  }

  /// One line per quantised layer: what it fused, its output shape, input/output quantisation,
  /// weight scale range and the observed range the output covers.
  void print_report(std::ostream& os) const {
    os << "int8 layers (" << layers_.size() << "), calibration "
       << (options_.calibration == Calibration::min_max ? "min/max" : "percentile") << ":\n";
    for (const Layer& l : layers_) {
      os << "  %" << l.node << ' ' << l.what << ' ' << l.shape << ": in " << l.input.scale << ',' << l.input.zero_point
         << " out " << l.output.scale << ',' << l.output.zero_point;
      if (l.weight_scale_max > 0.f) os << ", weight scales [" << l.weight_scale_min << ", " << l.weight_scale_max << ']';
      os << ", observed [" << l.observed.lo << ", " << l.observed.hi << "]\n";
    }
    os << "arena: int8 model " << arena_bytes() << " B, float model " << float_arena_bytes() << " B\n";
  }

  /// The quantised model as a C++ header (ptq/emit.hpp).
  std::string emit_header(const std::string& name) const;

 private:
  template <class Fn>
  friend QuantizedModel quantize_model(Fn fn, const std::vector<Tensor<float>>& calibration, const Options& o);

  using ExePtr = std::unique_ptr<runtime::Executable, engine::ExecutableDeleter>;

  /// The int8 model's output as f32 (dequantised here when the model returns i8).
  Tensor<float> int8_as_float(const Tensor<float>& x) const {
    if (!options_.int8_input && !options_.int8_output) return run<float>(x);
    const Graph& g = *graph_;
    Tensor<std::int8_t> xq;
    if (options_.int8_input) {
      const Node& in = g[g.input(0)];
      xq = Tensor<std::int8_t>(x.shape());
      quant::quantize(x.data(), xq.data(), x.size(), {in.quant.scale, in.quant.zero_point});
    }
    if (!options_.int8_output) return run<float>(xq);
    const Tensor<std::int8_t> yq = options_.int8_input ? run<std::int8_t>(xq) : run<std::int8_t>(x);
    const Node& out = g[g.output(0)];
    Tensor<float> y(yq.shape());
    quant::dequantize(yq.data(), y.data(), yq.size(), {out.quant.scale, out.quant.zero_point});
    return y;
  }

  template <class Out, class In>
  static Tensor<Out> run_exe(const runtime::Executable& exe, const Graph& g, std::vector<std::uint8_t>& arena,
                             const Tensor<In>& x) {
    return detail::run_plan<Out>(exe, g, arena, x);
  }

  std::unique_ptr<Tracer> tracer_;        // the float graph and the constants it captured
  std::unique_ptr<ConstantStore> store_;  // int8 weights, scales, bias
  std::unique_ptr<Graph> graph_;
  std::vector<Layer> layers_;
  std::vector<int> value_map_;
  Options options_;
  ExePtr float_exe_, int8_exe_;
  mutable std::vector<std::uint8_t> arena_;
};

template <class Fn>
QuantizedModel quantize_model(Fn fn, const std::vector<Tensor<float>>& calibration, const Options& o) {
  QuantizedModel m;
  m.options_ = o;
  if (calibration.empty()) {
    fail(Status(Errc::invalid_argument) << "ptq: no calibration batches");
    return m;
  }
  m.tracer_ = std::make_unique<Tracer>();
  m.store_ = std::make_unique<ConstantStore>();
  Graph& f = m.tracer_->graph;
  // compile()'s clean-up, so the ranges are of the nodes that run; batch norm folded into the
  // conv/linear before it (passes/fold_channel_affine.hpp), so the pair quantises as one layer.
  if (!detail::trace_float_model(fn, calibration[0], *m.tracer_, *m.store_)) return m;
  Observer obs(f, o.calibration == Calibration::percentile || !o.percentile_nodes.empty() ? 4096 : 0);
  for (const Tensor<float>& batch : calibration) {
    if (batch.shape() != calibration[0].shape()) {
      fail(Status(Errc::shape_mismatch) << "ptq: calibration batch " << batch.shape() << " differs from the first, "
                                        << calibration[0].shape());
      return m;
    }
    const void* in[1] = {batch.data()};
    obs.observe(in);
  }
  m.graph_ = std::make_unique<Graph>();
  Status st = rewrite_to_int8(f, obs, o, *m.store_, *m.graph_, m.layers_, &m.value_map_);
  if (st.ok()) m.float_exe_.reset(engine::build(f, st));
  if (st.ok()) m.int8_exe_.reset(engine::build(*m.graph_, st));
  if (!st.ok()) fail(Status(st.code()) << "ptq: " << st.message());
  return m;
}

}  // namespace kiln::ptq
