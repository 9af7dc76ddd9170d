// kiln/ptq/doctor.hpp — the precision doctor (issue 7): find the layers that break accuracy in
// int8 (or FP16 storage, ptq/fp16.hpp: DoctorOptions::precision) and keep only those in f32.
// Host only, not part of kiln.hpp or ptq.hpp.
//
//   #include <kiln/ptq/doctor.hpp>
//   kiln::ptq::DoctorOptions d;                      // criterion, base PTQ options
//   d.criterion = {0.05, 0.0, kiln::ptq::Statistic::mean};
//   kiln::ptq::Diagnosis r = kiln::ptq::diagnose(model, calibration, samples, d);
//   r.print(std::cout);                              // per-node error table, kept nodes, cost
//   std::ofstream("model.doctor") << r.config.to_text();
//   ...
//   auto cfg = kiln::ptq::DoctorConfig::parse(text);                 // later
//   auto qm  = kiln::ptq::quantize_with_config(model, calibration, cfg);
//
// Observation: the float graph and the quantised graph both run through their compiled
// observation plans (runtime/observe.hpp: the compiled model's debug mode, every node's value
// kept); QuantizedModel::value_map() maps each float node to the node holding its value in the
// quantised graph (a fused layer's output at the float chain's last node), which is dequantised
// and compared. tests/test_doctor_observe.cpp checks those plans against the interpreter.
//
// Criterion: element error e = |q - f| / (atol + rtol * |f|); a node violates when the statistic
// (mean, median or max) of e over its elements and all samples exceeds 1.
//
// Search (what it guarantees): first the PTQ variants are tried globally (per-channel weights,
// percentile calibration; PTQ offers them per model, not per layer) and the best kept. Then,
// greedily: the earliest violating node in topological order that can still be changed, and its
// producers, are each tried kept in f32 (Options::keep_float; the whole fused layer stays f32
// with quantize/dequantize around it); the one giving the lowest output error is kept. This
// repeats until the output meets the criterion or nothing is left to keep (unreachable: said so,
// the best configuration seen returned). A pruning pass then drops each kept node whose removal
// still meets the criterion. Result: meets the criterion on the given samples and is 1-minimal
// (no single kept node can be removed); it is not guaranteed to be the smallest set.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iomanip>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "../ptq.hpp"

namespace kiln::ptq {

enum class Statistic : std::uint8_t { mean, median, max };

/// The reduced precision the doctor examines: int8 post-training quantisation (ptq/model.hpp) or
/// FP16 storage of weights and activations (ptq/fp16.hpp).
enum class Precision : std::uint8_t { int8, fp16 };

inline const char* precision_name(Precision p) { return p == Precision::int8 ? "int8" : "fp16"; }

inline const char* statistic_name(Statistic s) {
  return s == Statistic::mean ? "mean" : s == Statistic::median ? "median" : "max";
}

/// When a value (a node's output, or the model's) is close enough to the float reference.
struct Criterion {
  double atol = 1e-2;  ///< absolute tolerance
  double rtol = 0.0;   ///< relative tolerance (of |reference|)
  Statistic statistic = Statistic::mean;  ///< over elements and samples of the normalised error
};

/// One float-graph node compared with its quantised counterpart.
struct NodeError {
  int node = -1;
  std::string op;         ///< e.g. "matmul", "elementwise relu"
  Shape shape;
  std::string precision;  ///< "int8" | "fp16", "f32", "f32 kept", "fused" (inside an int8 layer; no value)
  double mean_abs = 0.0, max_abs = 0.0;
  double score = 0.0;     ///< the criterion's statistic of |q - f| / (atol + rtol |f|); > 1 violates
  bool violates() const { return score > 1.0; }
};

/// A node kept in f32 and why.
struct KeptNode {
  int node = -1;
  std::string op;
  Shape shape;
  std::string reason;
};

/// What the doctor found, to keep and apply at quantisation (to_text / parse / apply).
struct DoctorConfig {
  Criterion criterion;
  bool per_channel = true;
  Calibration calibration = Calibration::min_max;
  double percentile = 99.99;
  std::string variant_reason;  ///< why the variant differs from the base options ("" if it does not)
  std::vector<KeptNode> kept;
  /// Per-layer PTQ variants (Options::per_channel_nodes / percentile_nodes), with why.
  std::vector<KeptNode> per_channel_layers, percentile_layers;
  // Result and cost, informative (written, read back, not used by apply).
  bool met = false;
  double output_score = 0.0, output_max_abs = 0.0;
  Precision precision = Precision::int8;
  std::size_t weight_bytes = 0, reduced_weight_bytes = 0, float_weight_bytes = 0;  ///< reduced: all int8/fp16
  std::size_t arena_bytes = 0;
  double us_per_call = 0.0, reduced_us_per_call = 0.0, float_us_per_call = 0.0;

  std::string to_text() const;
  /// Parses to_text()'s format; a malformed line is an error naming it.
  static Status parse(const std::string& text, DoctorConfig& out);
  /// PTQ options with this configuration's variant and kept nodes, checked against the model's
  /// float graph: nodes that no longer exist (or are another op/shape now) are named in the error.
  Status apply(const Graph& float_graph, Options& o) const;
};

struct DoctorOptions {
  Criterion criterion;
  Precision precision = Precision::int8;  ///< fp16: FP16 storage (no PTQ variants; base unused)
  Options base;                ///< PTQ options to start from (int8 ends not supported here)
  bool try_variants = true;    ///< per-channel weights, percentile calibration, for the whole model first
  bool try_layer_variants = true;  ///< the same per layer, on the earliest violation, before f32
  bool measure_cost = true;    ///< time the three models (a few ms)
  int max_kept = -1;           ///< at most this many layers kept in f32 (-1: no limit)
};

struct Diagnosis {
  Status status;               ///< bad input; a reachable/unreachable criterion is `met`
  DoctorConfig config;
  bool met = false;
  std::vector<NodeError> before, after;  ///< all reduced (int8 PTQ with the base options, or fp16); the result
  std::vector<std::string> log;          ///< the search's steps
  void print(std::ostream& os) const;
};

namespace detail {

inline std::string node_label(const Node& n) {
  std::string s = op_name(n.op);
  if (n.op == Op::elementwise) s += std::string(" ") + ewfn_name(n.fn);
  return s;
}
inline std::string shape_text(const Shape& s) {
  std::string t = "[";
  for (int i = 0; i < s.rank(); ++i) t += (i ? "x" : "") + std::to_string(static_cast<long long>(s[i]));
  return t + "]";
}
inline bool in(const std::vector<int>& v, int x) { return std::find(v.begin(), v.end(), x) != v.end(); }
inline const char* layer_variant_name(int kind) { return kind == 0 ? "per_channel" : "percentile"; }

inline double statistic_of(std::vector<float>& e, Statistic s) {
  if (e.empty()) return 0.0;
  if (s == Statistic::max) return *std::max_element(e.begin(), e.end());
  if (s == Statistic::median) {
    const auto mid = e.begin() + static_cast<std::ptrdiff_t>(e.size() / 2);
    std::nth_element(e.begin(), mid, e.end());
    return *mid;
  }
  double sum = 0.0;
  for (float v : e) sum += v;
  return sum / static_cast<double>(e.size());
}

/// A graph's observation plan (runtime/observe.hpp: the compiled model's debug mode): after
/// run(x), value(id) is node id's value as f32 (an i8 value dequantised with its node's scale).
class ObservedRun {
 public:
  ObservedRun(const Graph& g, Status& st) : g_(g), exe_(engine::build_observing(g, st)) {
    if (exe_) arena_.resize(engine::arena_bytes(*exe_) + kAlignment);
  }
  bool ok() const { return exe_ != nullptr; }
  void run(const Tensor<float>& x) {
    out_ = Tensor<float>(g_[g_.output(0)].shape);
    const void* ins[1] = {x.data()};
    void* outs[1] = {out_.data()};
    engine::run(*exe_, ins, outs, align_up(arena_.data()));
    x_ = x.data();
  }
  const float* value(int id) {
    const Node& n = g_[id];
    const index_t count = n.shape.numel();
    buf_.resize(static_cast<std::size_t>(count) + 1);
    raw_.resize(static_cast<std::size_t>(count) * dtype_size(n.dtype) + 4);
    const void* ins[1] = {x_};
    void* outs[1] = {out_.data()};
    if (!engine::read_value(*exe_, id, ins, outs, align_up(arena_.data()), raw_.data())) return nullptr;
    if (n.dtype == DType::i8)
      quant::dequantize(reinterpret_cast<const std::int8_t*>(raw_.data()), buf_.data(), count,
                        {n.quant.scale, n.quant.zero_point});
    else if (n.dtype == DType::f32)
      std::memcpy(buf_.data(), raw_.data(), static_cast<std::size_t>(count) * sizeof(float));
    else
      return nullptr;
    return buf_.data();
  }

 private:
  const Graph& g_;
  std::unique_ptr<runtime::Executable, engine::ExecutableDeleter> exe_;
  std::vector<std::uint8_t> arena_, raw_;
  std::vector<float> buf_;
  Tensor<float> out_;
  const void* x_ = nullptr;
};

/// A float graph and its reduced-precision version, as the doctor compares them.
struct Comparison {
  const Graph& f;                  ///< the float reference
  const Graph& q;                  ///< the reduced-precision graph
  const std::vector<int>& map;     ///< float node -> node of q holding its value (-1: fused away)
  const std::vector<int>& kept;    ///< float nodes kept in f32
  const char* precision;           ///< "int8" | "fp16": the label of q's values
};

/// Every float node compared on `samples` (already shape-checked), both graphs observed through
/// their compiled observation plans. Empty (status set) when a plan cannot be built.
inline std::vector<NodeError> observe(const Comparison& cmp, const std::vector<Tensor<float>>& samples,
                                      const Criterion& c, Status& st) {
  const Graph& f = cmp.f;
  const Graph& q = cmp.q;
  const std::vector<int>& map = cmp.map;
  const auto nf = static_cast<std::size_t>(f.size());
  std::vector<std::vector<float>> errs(nf);
  std::vector<NodeError> out(nf);
  ObservedRun rf(f, st), rq(q, st);
  if (!rf.ok() || !rq.ok()) return {};
  std::vector<float> fv;
  for (const Tensor<float>& x : samples) {
    rf.run(x);
    rq.run(x);
    for (int id = 0; id < f.size(); ++id) {
      const Node& n = f[id];
      const int m = map[static_cast<std::size_t>(id)];
      if (n.is_leaf() || n.dtype != DType::f32 || m < 0) continue;
      const index_t count = n.shape.numel();
      const float* fp = rf.value(id);
      if (!fp) continue;
      fv.assign(fp, fp + count);
      const float* qv = rq.value(m);
      if (!qv) continue;
      NodeError& r = out[static_cast<std::size_t>(id)];
      std::vector<float>& e = errs[static_cast<std::size_t>(id)];
      for (index_t i = 0; i < count; ++i) {
        double d = std::fabs(static_cast<double>(qv[i]) - fv[static_cast<std::size_t>(i)]);
        if (d != d) d = HUGE_VAL;  // NaN (inf - inf, an f16 overflow met downstream): worst, not "no error"
        r.max_abs = std::max(r.max_abs, d);
        r.mean_abs += d;
        e.push_back(static_cast<float>(d / (c.atol + c.rtol * std::fabs(static_cast<double>(fv[static_cast<std::size_t>(i)])))));
      }
    }
  }
  for (int id = 0; id < f.size(); ++id) {
    const Node& n = f[id];
    NodeError& r = out[static_cast<std::size_t>(id)];
    r.node = id;
    r.op = node_label(n);
    r.shape = n.shape;
    const int m = map[static_cast<std::size_t>(id)];
    r.precision = n.is_leaf()          ? "leaf"
                  : m < 0              ? "fused"
                  : in(cmp.kept, id)   ? "f32 kept"
                  : q[m].dtype == DType::i8 || (q[m].op == Op::elementwise && q[m].fn == EwFn::round_f16)
                      ? cmp.precision
                      : "f32";
    std::vector<float>& e = errs[static_cast<std::size_t>(id)];
    if (!e.empty()) r.mean_abs /= static_cast<double>(e.size());
    r.score = statistic_of(e, c.statistic);
  }
  return out;
}

/// observe() for a quantised model (errors reported by fail(); empty then).
inline std::vector<NodeError> observe(const QuantizedModel& qm, const std::vector<Tensor<float>>& samples,
                                      const Criterion& c) {
  Status st;
  std::vector<NodeError> v =
      observe({qm.float_graph(), qm.graph(), qm.value_map(), qm.options().keep_float, "int8"}, samples, c, st);
  if (v.empty()) fail(st);
  return v;
}

inline std::size_t constant_bytes(const Graph& g) {
  std::size_t b = 0;
  for (int id = 0; id < g.size(); ++id)
    if (g[id].op == Op::constant) b += static_cast<std::size_t>(g[id].shape.numel()) * dtype_size(g[id].dtype);
  return b;
}

/// Median microseconds of `run` over a few repetitions.
template <class F>
double time_us(F&& run) {
  std::vector<double> t;
  for (int k = 0; k < 15; ++k) {
    const auto a = std::chrono::steady_clock::now();
    run();
    t.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - a).count());
  }
  std::nth_element(t.begin(), t.begin() + 7, t.end());
  return t[7];
}

}  // namespace detail

/// Runs the search described at the top of this file. `samples` are batches of the calibration
/// batches' shape on which the criterion is judged (they may be the calibration batches).
template <class Fn>
Diagnosis diagnose(Fn fn, const std::vector<Tensor<float>>& calibration, const std::vector<Tensor<float>>& samples,
                   const DoctorOptions& d) {
  Diagnosis r;
  const auto bad = [&r](Status s) {
    r.status = s;
    fail(s);
    return r;
  };
  if (calibration.empty() || samples.empty())
    return bad(Status(Errc::invalid_argument) << "doctor: needs calibration batches and samples (got "
                                              << static_cast<long long>(calibration.size()) << " and "
                                              << static_cast<long long>(samples.size()) << ')');
  if (d.base.int8_input || d.base.int8_output)
    return bad(Status(Errc::not_supported) << "doctor: models with int8 ends (compare f32 ends, then set them)");
  for (std::size_t k = 0; k < samples.size(); ++k)
    if (samples[k].shape() != calibration[0].shape())
      return bad(Status(Errc::shape_mismatch) << "doctor: sample " << static_cast<long long>(k) << " has shape "
                                              << samples[k].shape() << "; the model is quantised at "
                                              << calibration[0].shape());
  const Criterion& c = d.criterion;
  if (!(c.atol >= 0.0 && c.rtol >= 0.0 && c.atol + c.rtol > 0.0))
    return bad(Status(Errc::invalid_argument) << "doctor: criterion needs atol > 0 or rtol > 0, both >= 0");
  struct Trial {
    Options o;
    std::vector<NodeError> nodes;
    double score = 0.0;
  };
  const bool fp16 = d.precision == Precision::fp16;
  const char* reduced = precision_name(d.precision);
  const auto trial = [&](const Options& o) {
    Trial t;
    t.o = o;
    if (fp16) {
      Fp16Model h = to_fp16(fn, calibration[0], o.keep_float);
      Status st;
      if (h.ok()) t.nodes = detail::observe({h.float_graph(), h.graph(), h.value_map(), h.keep_float(), "fp16"},
                                            samples, c, st);
      if (!st.ok()) fail(st);
      t.score = t.nodes.empty() ? 1e300 : t.nodes[static_cast<std::size_t>(h.float_graph().output(0))].score;
      return t;
    }
    QuantizedModel qm = quantize_model(fn, calibration, o);
    if (qm.value_map().empty()) {
      t.score = 1e300;
      return t;
    }
    t.nodes = detail::observe(qm, samples, c);
    if (t.nodes.empty()) {
      t.score = 1e300;
      return t;
    }
    t.score = t.nodes[static_cast<std::size_t>(qm.float_graph().output(0))].score;
    return t;
  };
  const auto passes = [](const Trial& t) { return t.score <= 1.0; };
  std::ostringstream line;
  auto say = [&r](const std::string& s) { r.log.push_back(s); };

  Trial cur = trial(d.base);
  if (cur.nodes.empty()) return bad(last_error());
  r.before = cur.nodes;
  say(std::string("plain ") + reduced + ": output " + std::string(statistic_name(c.statistic)) + " score " + std::to_string(cur.score));
  std::vector<std::string> reasons;  // parallel to cur.o.keep_float
  std::string variant_reason;
  if (!passes(cur) && d.try_variants && !fp16) {
    std::vector<std::pair<Options, std::string>> variants;
    if (!d.base.per_channel) {
      Options o = d.base;
      o.per_channel = true;
      variants.push_back({o, "per-channel weight scales"});
    }
    if (d.base.calibration == Calibration::min_max) {
      Options o = d.base;
      o.calibration = Calibration::percentile;
      variants.push_back({o, "percentile calibration"});
    }
    for (auto& v : variants) {
      Trial t = trial(v.first);
      say("variant " + v.second + ": output score " + std::to_string(t.score));
      if (t.score < cur.score) {
        cur = t;
        variant_reason = v.second;
      }
    }
  }
  Trial best = cur;
  std::vector<std::string> best_reasons;
  struct VariantNote {
    int kind, node;  // kind 0: per-channel, 1: percentile
    std::string reason;
  };
  std::vector<VariantNote> variant_notes;
  std::vector<int> variant_tried;
  const Graph* fg = nullptr;
  QuantizedModel probe = quantize_model(fn, calibration, d.base);  // the float graph, for producers
  fg = &probe.float_graph();
  while (!passes(cur)) {
    // The earliest violating node that can still change, with its producers as alternatives.
    std::vector<int> cands;
    int culprit = -1;
    for (const NodeError& e : cur.nodes) {
      if (!e.violates() || e.precision == "f32 kept") continue;
      const Node& n = (*fg)[e.node];
      if (e.precision == reduced && !detail::in(cur.o.keep_float, e.node)) cands.push_back(e.node);
      for (int k = 0; k < n.num_inputs; ++k) {
        const int p = n.inputs[k];
        const std::string& pp = cur.nodes[static_cast<std::size_t>(p)].precision;
        if ((pp == reduced || pp == "fused") && !detail::in(cur.o.keep_float, p) && !detail::in(cands, p))
          cands.push_back(p);
      }
      if (!cands.empty()) {
        culprit = e.node;
        break;
      }
    }
    if (culprit < 0) break;  // nothing left to keep in f32
    // Cheaper than f32: a per-layer PTQ variant on the culprit's layer (per-channel weight scales,
    // percentile range), adopted when it clears the culprit's own violation without raising the
    // output's error; tried once per node.
    if (!fp16 && d.try_layer_variants && cur.nodes[static_cast<std::size_t>(culprit)].precision == "int8" &&
        !detail::in(variant_tried, culprit)) {
      variant_tried.push_back(culprit);
      Trial vbest;
      int vk = -1;
      for (int k = 0; k < 2; ++k) {
        Options o = cur.o;
        if (k == 0 && (o.per_channel || detail::in(o.per_channel_nodes, culprit))) continue;
        if (k == 1 && (o.calibration == Calibration::percentile || detail::in(o.percentile_nodes, culprit))) continue;
        (k == 0 ? o.per_channel_nodes : o.percentile_nodes).push_back(culprit);
        Trial t = trial(o);
        const double cs = t.nodes.empty() ? 1e300 : t.nodes[static_cast<std::size_t>(culprit)].score;
        say("layer variant " + std::string(detail::layer_variant_name(k)) + " on %" + std::to_string(culprit) +
            ": its score " + std::to_string(cs) + ", output score " + std::to_string(t.score));
        if (cs <= 1.0 && t.score <= cur.score && (vk < 0 || t.score < vbest.score)) {
          vbest = t;
          vk = k;
        }
      }
      if (vk >= 0) {
        const NodeError& ce = cur.nodes[static_cast<std::size_t>(culprit)];
        std::ostringstream why;
        why << "earliest violation: %" << culprit << ' ' << ce.op << " score " << ce.score << " -> "
            << vbest.nodes[static_cast<std::size_t>(culprit)].score << "; output score " << cur.score << " -> "
            << vbest.score;
        variant_notes.push_back({vk, culprit, why.str()});
        cur = vbest;
        if (cur.score < best.score) {
          best = cur;
          best_reasons = reasons;
        }
        continue;
      }
    }
    if (d.max_kept >= 0 && cur.o.keep_float.size() >= static_cast<std::size_t>(d.max_kept)) {
      say("stopped: " + std::to_string(d.max_kept) + " layers kept in f32 (DoctorOptions::max_kept)");
      break;
    }
    Trial pick;
    int picked = -1;
    for (int cnd : cands) {
      Options o = cur.o;
      o.keep_float.push_back(cnd);
      Trial t = trial(o);
      if (picked < 0 || t.score < pick.score) {
        pick = t;
        picked = cnd;
      }
    }
    const NodeError& ce = cur.nodes[static_cast<std::size_t>(culprit)];
    std::ostringstream why;
    why << "earliest violation: %" << culprit << ' ' << ce.op << " score " << ce.score;
    if (picked != culprit) why << " (kept its producer %" << picked << ')';
    why << "; output score " << cur.score << " -> " << pick.score;
    say("keep %" + std::to_string(picked) + ": " + why.str());
    reasons.push_back(why.str());
    cur = pick;
    if (cur.score < best.score) {
      best = cur;
      best_reasons = reasons;
    }
  }
  if (passes(cur)) {
    best = cur;
    best_reasons = reasons;
    for (std::size_t k = 0; k < best.o.keep_float.size();) {  // pruning: drop what is not needed
      Options o = best.o;
      o.keep_float.erase(o.keep_float.begin() + static_cast<std::ptrdiff_t>(k));
      Trial t = trial(o);
      if (passes(t)) {
        say("pruned %" + std::to_string(best.o.keep_float[k]) + ": output score still " + std::to_string(t.score));
        best = t;
        best_reasons.erase(best_reasons.begin() + static_cast<std::ptrdiff_t>(k));
      } else {
        ++k;
      }
    }
    for (int k = 0; k < 2; ++k) {  // per-layer variants the result does not need
      std::vector<int>& list = k == 0 ? best.o.per_channel_nodes : best.o.percentile_nodes;
      for (std::size_t j = 0; j < list.size();) {
        Options o = best.o;
        std::vector<int>& l = k == 0 ? o.per_channel_nodes : o.percentile_nodes;
        l.erase(l.begin() + static_cast<std::ptrdiff_t>(j));
        Trial t = trial(o);
        if (passes(t)) {
          say(std::string("pruned layer variant ") + detail::layer_variant_name(k) + " on %" +
              std::to_string(list[j]) + ": output score still " + std::to_string(t.score));
          best = t;
        } else {
          ++j;
        }
      }
    }
    if (!variant_reason.empty()) {  // the variant too, when the kept layers alone suffice
      Options o = best.o;
      o.per_channel = d.base.per_channel;
      o.calibration = d.base.calibration;
      Trial t = trial(o);
      if (passes(t)) {
        say("pruned the variant (" + variant_reason + "): output score still " + std::to_string(t.score));
        best = t;
      }
    }
  } else {
    say("unreachable: no configuration found meets the criterion; returning the best seen (output score " +
        std::to_string(best.score) + ')');
  }
  r.met = passes(best);
  r.after = best.nodes;
  DoctorConfig& cfg = r.config;
  cfg.criterion = c;
  cfg.per_channel = best.o.per_channel;
  cfg.calibration = best.o.calibration;
  cfg.percentile = best.o.percentile;
  for (std::size_t k = 0; k < best.o.keep_float.size(); ++k) {
    const int id = best.o.keep_float[k];
    cfg.kept.push_back({id, detail::node_label((*fg)[id]), (*fg)[id].shape, best_reasons[k]});
  }
  for (int k = 0; k < 2; ++k)
    for (int id : k == 0 ? best.o.per_channel_nodes : best.o.percentile_nodes) {
      std::string why;
      for (const VariantNote& v : variant_notes)
        if (v.kind == k && v.node == id) why = v.reason;
      (k == 0 ? cfg.per_channel_layers : cfg.percentile_layers)
          .push_back({id, detail::node_label((*fg)[id]), (*fg)[id].shape, why});
    }
  if (best.o.per_channel != d.base.per_channel || best.o.calibration != d.base.calibration)
    cfg.variant_reason = variant_reason;
  cfg.met = r.met;
  const NodeError& oe = best.nodes[static_cast<std::size_t>(fg->output(0))];
  cfg.output_score = oe.score;
  cfg.output_max_abs = oe.max_abs;
  cfg.precision = d.precision;
  const Tensor<float>& x = samples[0];
  if (fp16) {
    const Fp16Model h = to_fp16(fn, calibration[0], best.o.keep_float), all = to_fp16(fn, calibration[0]);
    cfg.weight_bytes = h.weight_bytes();
    cfg.reduced_weight_bytes = all.weight_bytes();
    cfg.float_weight_bytes = detail::constant_bytes(h.float_graph());
    cfg.arena_bytes = h.arena_bytes();
    if (d.measure_cost) {
      cfg.us_per_call = detail::time_us([&] { (void)h(x); });
      cfg.reduced_us_per_call = detail::time_us([&] { (void)all(x); });
      cfg.float_us_per_call = detail::time_us([&] { (void)h.run_float(x); });
    }
    return r;
  }
  QuantizedModel qm = quantize_model(fn, calibration, best.o);
  cfg.weight_bytes = detail::constant_bytes(qm.graph());
  cfg.reduced_weight_bytes = detail::constant_bytes(probe.graph());
  cfg.float_weight_bytes = detail::constant_bytes(qm.float_graph());
  cfg.arena_bytes = qm.arena_bytes();
  if (d.measure_cost) {
    cfg.us_per_call = detail::time_us([&] { (void)qm(x); });
    cfg.reduced_us_per_call = detail::time_us([&] { (void)probe(x); });
    cfg.float_us_per_call = detail::time_us([&] { (void)qm.run_float(x); });
  }
  return r;
}

/// Quantises `fn` with a configuration the doctor wrote (checked against the model first).
template <class Fn>
QuantizedModel quantize_with_config(Fn fn, const std::vector<Tensor<float>>& calibration, const DoctorConfig& cfg,
                                    Options base = {}) {
  if (cfg.precision != Precision::int8) {
    fail(Status(Errc::invalid_argument) << "doctor config: written for " << precision_name(cfg.precision)
                                        << ", not int8 (apply it with fp16_with_config)");
    return QuantizedModel();
  }
  QuantizedModel probe = quantize_model(fn, calibration, base);
  if (probe.value_map().empty()) return probe;
  Status st = cfg.apply(probe.float_graph(), base);
  if (!st.ok()) {
    fail(st);
    return QuantizedModel();
  }
  return quantize_model(fn, calibration, base);
}

/// `fn` with FP16 storage and the f32 nodes of a configuration the doctor wrote for fp16
/// (checked against the model first).
template <class Fn>
Fp16Model fp16_with_config(Fn fn, const Tensor<float>& example, const DoctorConfig& cfg) {
  if (cfg.precision != Precision::fp16) {
    fail(Status(Errc::invalid_argument) << "doctor config: written for " << precision_name(cfg.precision)
                                        << ", not fp16 (apply it with quantize_with_config)");
    return Fp16Model();
  }
  Fp16Model probe = to_fp16(fn, example);
  if (!probe.ok()) return probe;
  Options o;
  Status st = cfg.apply(probe.float_graph(), o);
  if (!st.ok()) {
    fail(st);
    return Fp16Model();
  }
  return to_fp16(fn, example, o.keep_float);
}

// ---- text format ---------------------------------------------------------------------------------
// kiln-precision-doctor 1
// precision <int8|fp16>                                   (absent: int8)
// criterion atol=<a> rtol=<r> statistic=<mean|median|max>
// variant per_channel=<0|1> calibration=<min_max|percentile> percentile=<p>
// variant_reason <text>                                  (only when the variant was changed)
// keep <node id> <op words> <shape> : <reason>          (one per layer kept in f32)
// per_channel <node id> <op words> <shape> : <reason>   (per-layer variants, same form)
// percentile <node id> <op words> <shape> : <reason>
// result met=<0|1> output_score=<s> output_max_abs=<e>
// cost weight_bytes=.. reduced_weight_bytes=.. float_weight_bytes=.. arena_bytes=.. us=.. reduced_us=.. float_us=..
//   (reduced: everything in the reduced precision; int8_weight_bytes / int8_us are read as those)
inline std::string DoctorConfig::to_text() const {
  std::ostringstream os;
  os << std::setprecision(9);
  os << "kiln-precision-doctor 1\n";
  os << "precision " << precision_name(precision) << '\n';
  os << "criterion atol=" << criterion.atol << " rtol=" << criterion.rtol
     << " statistic=" << statistic_name(criterion.statistic) << '\n';
  os << "variant per_channel=" << (per_channel ? 1 : 0)
     << " calibration=" << (calibration == Calibration::min_max ? "min_max" : "percentile")
     << " percentile=" << percentile << '\n';
  if (!variant_reason.empty()) os << "variant_reason " << variant_reason << '\n';
  for (int v = 0; v < 2; ++v)
    for (const KeptNode& k : v == 0 ? per_channel_layers : percentile_layers)
      os << detail::layer_variant_name(v) << ' ' << k.node << ' ' << k.op << ' ' << detail::shape_text(k.shape)
         << " : " << k.reason << '\n';
  for (const KeptNode& k : kept)
    os << "keep " << k.node << ' ' << k.op << ' ' << detail::shape_text(k.shape) << " : " << k.reason << '\n';
  os << "result met=" << (met ? 1 : 0) << " output_score=" << output_score << " output_max_abs=" << output_max_abs
     << '\n';
  os << "cost weight_bytes=" << weight_bytes << " reduced_weight_bytes=" << reduced_weight_bytes
     << " float_weight_bytes=" << float_weight_bytes << " arena_bytes=" << arena_bytes << " us=" << us_per_call
     << " reduced_us=" << reduced_us_per_call << " float_us=" << float_us_per_call << '\n';
  return os.str();
}

inline Status DoctorConfig::parse(const std::string& text, DoctorConfig& out) {
  out = DoctorConfig();
  std::istringstream in(text);
  std::string line;
  int no = 0;
  bool header = false;
  auto bad = [&](const char* what) {
    return Status(Errc::invalid_argument) << "doctor config line " << no << ": " << what << " (\"" << line.c_str()
                                          << "\")";
  };
  while (std::getline(in, line)) {
    ++no;
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ls(line);
    std::string key;
    ls >> key;
    if (!header) {
      int v = 0;
      if (key != "kiln-precision-doctor" || !(ls >> v) || v != 1) return bad("expected \"kiln-precision-doctor 1\"");
      header = true;
      continue;
    }
    if (key == "precision") {
      std::string p;
      ls >> p;
      if (p == "int8") out.precision = Precision::int8;
      else if (p == "fp16") out.precision = Precision::fp16;
      else return bad("precision is int8 or fp16");
      continue;
    }
    if (key == "variant_reason") {
      std::getline(ls >> std::ws, out.variant_reason);
      continue;
    }
    if (key == "keep" || key == "per_channel" || key == "percentile") {
      KeptNode k;
      std::string rest;
      if (!(ls >> k.node)) return bad("keep needs a node id");
      std::getline(ls, rest);
      const auto colon = rest.find(" : ");
      if (colon == std::string::npos) return bad("keep needs \" : <reason>\"");
      k.reason = rest.substr(colon + 3);
      std::string desc = rest.substr(0, colon);
      const auto lb = desc.rfind('[');
      if (lb == std::string::npos || desc.back() != ']') return bad("keep needs a shape like [1x64]");
      k.op = desc.substr(desc.find_first_not_of(' '), lb - 1 - desc.find_first_not_of(' '));
      std::vector<index_t> dims;
      for (std::size_t p = lb + 1; p < desc.size() - 1;) {
        char* e = nullptr;
        dims.push_back(static_cast<index_t>(std::strtoll(desc.c_str() + p, &e, 10)));
        p = static_cast<std::size_t>(e - desc.c_str()) + 1;
      }
      if (dims.size() > static_cast<std::size_t>(kMaxRank)) return bad("shape rank too large");
      k.shape = Shape::from(dims.data(), static_cast<int>(dims.size()));
      (key == "keep" ? out.kept : key == "per_channel" ? out.per_channel_layers : out.percentile_layers).push_back(k);
      continue;
    }
    std::string kv;
    while (ls >> kv) {
      const auto eq = kv.find('=');
      if (eq == std::string::npos) return bad("expected key=value");
      const std::string k = kv.substr(0, eq), v = kv.substr(eq + 1);
      const double x = std::atof(v.c_str());
      if (key == "criterion" && k == "atol") out.criterion.atol = x;
      else if (key == "criterion" && k == "rtol") out.criterion.rtol = x;
      else if (key == "criterion" && k == "statistic") {
        if (v == "mean") out.criterion.statistic = Statistic::mean;
        else if (v == "median") out.criterion.statistic = Statistic::median;
        else if (v == "max") out.criterion.statistic = Statistic::max;
        else return bad("statistic is mean, median or max");
      } else if (key == "variant" && k == "per_channel") out.per_channel = x != 0.0;
      else if (key == "variant" && k == "calibration") {
        if (v == "min_max") out.calibration = Calibration::min_max;
        else if (v == "percentile") out.calibration = Calibration::percentile;
        else return bad("calibration is min_max or percentile");
      } else if (key == "variant" && k == "percentile") out.percentile = x;
      else if (key == "result" && k == "met") out.met = x != 0.0;
      else if (key == "result" && k == "output_score") out.output_score = x;
      else if (key == "result" && k == "output_max_abs") out.output_max_abs = x;
      else if (key == "cost") {
        if (k == "weight_bytes") out.weight_bytes = static_cast<std::size_t>(x);
        else if (k == "reduced_weight_bytes" || k == "int8_weight_bytes")
          out.reduced_weight_bytes = static_cast<std::size_t>(x);
        else if (k == "float_weight_bytes") out.float_weight_bytes = static_cast<std::size_t>(x);
        else if (k == "arena_bytes") out.arena_bytes = static_cast<std::size_t>(x);
        else if (k == "us") out.us_per_call = x;
        else if (k == "reduced_us" || k == "int8_us") out.reduced_us_per_call = x;
        else if (k == "float_us") out.float_us_per_call = x;
      } else {
        return bad("unknown line or key");
      }
    }
  }
  if (!header) return Status(Errc::invalid_argument) << "doctor config: empty (no \"kiln-precision-doctor 1\" line)";
  return Status();
}

inline Status DoctorConfig::apply(const Graph& f, Options& o) const {
  o.per_channel = per_channel;
  o.calibration = calibration;
  o.percentile = percentile;
  Status err(Errc::invalid_argument);
  err << "doctor config: nodes that no longer exist in the model (" << f.size() << " nodes):";
  bool any = false;
  const std::vector<KeptNode>* lists[3] = {&kept, &per_channel_layers, &percentile_layers};
  std::vector<int>* into[3] = {&o.keep_float, &o.per_channel_nodes, &o.percentile_nodes};
  for (int li = 0; li < 3; ++li)
    for (const KeptNode& k : *lists[li]) {
      const bool exists =
          k.node >= 0 && k.node < f.size() && detail::node_label(f[k.node]) == k.op && f[k.node].shape == k.shape;
      if (!exists) {
        err << " %" << k.node << ' ' << k.op.c_str() << ' ' << k.shape;
        if (k.node >= 0 && k.node < f.size())
          err << " (now " << detail::node_label(f[k.node]).c_str() << ' ' << f[k.node].shape << ')';
        any = true;
        continue;
      }
      if (!detail::in(*into[li], k.node)) into[li]->push_back(k.node);
    }
  return any ? err : Status();
}

inline void Diagnosis::print(std::ostream& os) const {
  const Criterion& c = config.criterion;
  os << "criterion: " << statistic_name(c.statistic) << " of |" << precision_name(config.precision) << " - f32| / (" << c.atol << " + " << c.rtol
     << " |f32|) <= 1 over elements and samples\n";
  os << "  node  op                     shape        before: prec   mean|e|     max|e|   score   after: prec      "
        "score\n";
  for (std::size_t i = 0; i < before.size() && i < after.size(); ++i) {
    const NodeError& b = before[i];
    const NodeError& a = after[i];
    if (b.precision == "leaf") continue;
    char buf[256];
    std::snprintf(buf, sizeof buf, "  %%%-4d %-22s %-12s %-9s %10.4g %10.4g %7.3g%s  %-9s %7.3g%s\n", b.node,
                  b.op.c_str(), detail::shape_text(b.shape).c_str(), b.precision.c_str(), b.mean_abs, b.max_abs,
                  b.score, b.violates() ? "!" : " ", a.precision.c_str(), a.score, a.violates() ? "!" : " ");
    os << buf;
  }
  os << (met ? "criterion met" : "criterion NOT met (unreachable with these samples; best configuration found)")
     << ", output score " << config.output_score << ", max |error| " << config.output_max_abs << '\n';
  if (!config.variant_reason.empty()) os << "PTQ variant: " << config.variant_reason << '\n';
  for (int v = 0; v < 2; ++v)
    for (const KeptNode& k : v == 0 ? config.per_channel_layers : config.percentile_layers)
      os << "layer variant " << detail::layer_variant_name(v) << " on %" << k.node << ' ' << k.op << ' '
         << detail::shape_text(k.shape) << ": " << k.reason << '\n';
  os << "layers kept in f32 (" << config.kept.size() << "):\n";
  for (const KeptNode& k : config.kept)
    os << "  %" << k.node << ' ' << k.op << ' ' << detail::shape_text(k.shape) << ": " << k.reason << '\n';
  os << "cost: weights " << config.weight_bytes << " B (all " << precision_name(config.precision) << ' ' << config.reduced_weight_bytes << " B, f32 "
     << config.float_weight_bytes << " B), arena " << config.arena_bytes << " B";
  if (config.us_per_call > 0.0)
    os << "; per call " << config.us_per_call << " us (all " << precision_name(config.precision) << ' ' << config.reduced_us_per_call << " us, f32 "
       << config.float_us_per_call << " us)";
  os << '\n';
}

/// The per-node report as CSV (node,op,shape,precision,mean_abs,max_abs,score,violates).
inline std::string to_csv(const std::vector<NodeError>& nodes) {
  std::ostringstream os;
  os << std::setprecision(9) << "node,op,shape,precision,mean_abs,max_abs,score,violates\n";
  for (const NodeError& e : nodes)
    if (e.precision != "leaf")
      os << e.node << ',' << e.op << ',' << detail::shape_text(e.shape) << ',' << e.precision << ',' << e.mean_abs
         << ',' << e.max_abs << ',' << e.score << ',' << (e.violates() ? 1 : 0) << '\n';
  return os.str();
}

}  // namespace kiln::ptq
