// kiln/ptq/fp16.hpp — a float model with FP16 storage of weights and activations (the precision
// doctor's second reduced precision, issue 7). Host only, part of ptq.hpp.
//
//   kiln::ptq::Fp16Model h = kiln::ptq::to_fp16(model, example_batch, {/* float nodes kept f32 */});
//   kiln::Tensor<float> y = h(x);
//
// The rewrite (rewrite_to_fp16) emulates binary16 storage on the f32 kernels: every f32 constant
// a node reads is replaced by a copy rounded to the nearest binary16 value, and every f32 value a
// node computes is followed by round_f16 (EwFn::round_f16: ties to even, overflow to inf,
// subnormals) — which the ordinary elementwise fusion puts in the producing kernel's epilogue,
// so rounding costs no extra pass over memory. Rounding after every node (not only at kernel
// boundaries) is what an f16 datapath does to each op's result; accumulation inside a matmul or
// conv stays f32 (as f16 GEMMs accumulate in f32). Nodes listed in keep_float compute from f32
// weights and store their value in f32; their inputs are what their producers stored (f16 unless
// kept too). Views and the model input are not rounded (the input is the caller's f32 buffer).
// The model's size in FP16 counts 2 bytes per rounded weight element, 4 per f32 one.
#pragma once

#include <algorithm>
#include <memory>
#include <vector>

#include "model.hpp"

namespace kiln::ptq {

/// Float graph `f` rewritten with FP16 storage into `out` (see the top); rounded weights go to
/// `store` (their data pointers appended to `rounded`). value_map[i]: the node of `out` holding
/// float node i's value as stored (-1 for a leaf no node reads).
inline Status rewrite_to_fp16(const Graph& f, const std::vector<int>& keep_float, ConstantStore& store, Graph& out,
                              std::vector<int>& value_map, std::vector<const void*>& rounded) {
  const auto n = static_cast<std::size_t>(f.size());
  std::vector<int> stored(n, -1), as32(n, -1), as16(n, -1);  // leaves and views: per reader kind
  std::vector<bool> kept(n, false);
  for (int id : keep_float)
    if (id >= 0 && id < f.size()) kept[static_cast<std::size_t>(id)] = true;
  // Value `id` as a node of precision `full` (kept, f32 weights) or not (rounded weights) reads it.
  auto read = [&](auto& self, int id, bool full) -> int {
    const auto i = static_cast<std::size_t>(id);
    const Node& nd = f[id];
    if ((!nd.is_leaf() && !nd.is_view()) || nd.op == Op::input) return stored[i];
    std::vector<int>& memo = full ? as32 : as16;
    if (memo[i] >= 0) return memo[i];
    Node c = nd;
    if (nd.op == Op::constant && nd.dtype == DType::f32 && !full) {
      // Rounded by the round_f16 kernel itself (eager path), so weights and activations round alike.
      std::vector<float> r(static_cast<std::size_t>(nd.shape.numel()) + 1);
      Node rn;
      rn.op = Op::elementwise;
      rn.fn = EwFn::round_f16;
      rn.shape = nd.shape;
      rn.num_inputs = 1;
      const void* in[1] = {nd.data};
      const Shape shapes[1] = {nd.shape};
      const DType dtypes[1] = {DType::f32};
      engine::run_node(rn, in, shapes, dtypes, r.data(), nullptr);
      r.pop_back();
      c.f32 = store.add(std::move(r));
      c.data = c.f32;
      rounded.push_back(c.data);
    }
    for (int k = 0; k < nd.num_inputs; ++k) c.inputs[k] = self(self, nd.inputs[k], full);
    return memo[i] = out.add(c);
  };
  for (int id = 0; id < f.size() && out.ok(); ++id) {
    const Node& nd = f[id];
    const auto i = static_cast<std::size_t>(id);
    if (nd.op == Op::input) {
      stored[i] = out.add(nd);
      continue;
    }
    if (nd.is_leaf() || nd.is_view()) continue;  // added where read
    Node c = nd;
    for (int k = 0; k < nd.num_inputs; ++k) c.inputs[k] = read(read, nd.inputs[k], kept[i]);
    const int v = out.add(c);
    if (kept[i] || nd.dtype != DType::f32 || v < 0) {
      stored[i] = v;
      continue;
    }
    Node r;
    r.op = Op::elementwise;
    r.fn = EwFn::round_f16;
    r.inputs[0] = v;
    r.num_inputs = 1;
    stored[i] = out.add(r);
  }
  value_map.assign(n, -1);
  for (int id = 0; id < f.size() && out.ok(); ++id) {
    const Node& nd = f[id];
    const auto i = static_cast<std::size_t>(id);
    value_map[i] = nd.is_view() ? read(read, id, false) : nd.is_leaf() ? std::max(as16[i], as32[i]) : stored[i];
  }
  if (out.ok()) out.add_output(value_map[static_cast<std::size_t>(f.output(0))]);
  return out.status();
}

class Fp16Model;
/// `fn` traced at `example`'s shape (cleaned up as for quantisation) with FP16 storage; the float
/// nodes in keep_float (Fp16Model::float_graph() ids) stay f32. Errors are reported by fail() and
/// give a model that is not ok().
template <class Fn>
Fp16Model to_fp16(Fn fn, const Tensor<float>& example, const std::vector<int>& keep_float = {});

/// A float model with FP16 storage (to_fp16), beside its float original on the same engine path.
class Fp16Model {
 public:
  bool ok() const { return exe_ != nullptr; }
  const Graph& graph() const { return *graph_; }
  const Graph& float_graph() const { return tracer_->graph; }
  const std::vector<int>& value_map() const { return value_map_; }
  const std::vector<int>& keep_float() const { return keep_; }
  Tensor<float> operator()(const Tensor<float>& x) const { return detail::run_plan<float>(*exe_, *graph_, arena_, x); }
  Tensor<float> run_float(const Tensor<float>& x) const {
    return detail::run_plan<float>(*float_exe_, float_graph(), arena_, x);
  }
  /// Weight bytes as deployed: 2 per element of a rounded (binary16) constant, 4 per f32 one.
  std::size_t weight_bytes() const {
    std::size_t b = 0;
    const Graph& g = *graph_;
    for (int id = 0; id < g.size(); ++id) {
      const Node& c = g[id];
      if (c.op != Op::constant) continue;
      const bool half = std::find(rounded_.begin(), rounded_.end(), c.data) != rounded_.end();
      b += static_cast<std::size_t>(c.shape.numel()) * (half ? 2 : dtype_size(c.dtype));
    }
    return b;
  }
  /// The emulation's arena (values held in f32; f16 storage would take about half).
  std::size_t arena_bytes() const { return engine::arena_bytes(*exe_); }

 private:
  template <class Fn>
  friend Fp16Model to_fp16(Fn fn, const Tensor<float>& example, const std::vector<int>& keep_float);
 public:
  using ExePtr = std::unique_ptr<runtime::Executable, engine::ExecutableDeleter>;
 private:
  std::unique_ptr<Tracer> tracer_;
  std::unique_ptr<ConstantStore> store_;
  std::unique_ptr<Graph> graph_;
  std::vector<int> value_map_, keep_;
  std::vector<const void*> rounded_;  // data of the rounded (binary16) constants
  ExePtr exe_, float_exe_;
  mutable std::vector<std::uint8_t> arena_;
};

template <class Fn>
Fp16Model to_fp16(Fn fn, const Tensor<float>& example, const std::vector<int>& keep_float) {
  Fp16Model m;
  m.keep_ = keep_float;
  m.tracer_ = std::make_unique<Tracer>();
  m.store_ = std::make_unique<ConstantStore>();
  if (!detail::trace_float_model(fn, example, *m.tracer_, *m.store_)) return m;
  const Graph& f = m.tracer_->graph;
  for (int id : keep_float)
    if (id < 0 || id >= f.size()) {
      fail(Status(Errc::invalid_argument) << "fp16: keep_float names node %" << id << "; the model has " << f.size()
                                          << " nodes");
      return m;
    }
  m.graph_ = std::make_unique<Graph>();
  Status st = rewrite_to_fp16(f, keep_float, *m.store_, *m.graph_, m.value_map_, m.rounded_);
  if (st.ok()) m.float_exe_.reset(engine::build(f, st));
  Fp16Model::ExePtr exe;
  if (st.ok()) exe.reset(engine::build(*m.graph_, st));
  if (!st.ok()) {
    fail(Status(st.code()) << "fp16: " << st.message());
    return m;
  }
  m.exe_ = std::move(exe);
  return m;
}

}  // namespace kiln::ptq
