// kiln/ptq/rewrite.hpp — a float graph rewritten to int8 from observed ranges.
//
// In topological order, each float node becomes:
//   linear/matmul or conv2d with a constant weight, with the bias add and relu/relu6/clamp that
//     follow it alone  -> qlinear / qconv2d: per-output-channel symmetric int8 weights
//     (scale max|w_c| / 127), int32 bias (scale input_scale * weight_scale_c), the activation fused,
//     the output quantised with the chain end's observed range (any groups; depthwise: groups C);
//   max/avg pool, views (reshape, permute, slice, expand) of an int8 value -> the int8 op / view
//     (same quantisation, as TFLite);
//   softmax over the last axis of an int8 value -> qsoftmax (output 1/256, -128);
//   add of two int8 values -> qadd (output from the add's range);
//   anything else -> the float node itself.
// Conversions are inserted where needed: quantize before an int8 op reading a float value (with
// that value's observed range), dequantize before a float op reading an int8 one. Ops without an
// int8 form so stay float between a dequantize and a quantize (issue 7 builds mixed precision on
// this). Host only: the int8 weights live in storage the caller keeps.
#pragma once

#include <cmath>
#include <deque>
#include <string>
#include <vector>

#include "../quant/quantize.hpp"
#include "calibrate.hpp"

namespace kiln::ptq {

struct Options {
  Calibration calibration = Calibration::min_max;
  double percentile = 99.99;  ///< Calibration::percentile: the range is [100 - p, p] percentiles
  bool per_channel = true;    ///< weight scales per output channel (else one per tensor)
  bool int8_input = false;    ///< the model takes i8 (the input's calibrated quantisation) instead of f32
  bool int8_output = false;   ///< the model returns i8 instead of dequantising its result
  /// Nodes of the float graph (QuantizedModel::float_graph() ids) kept in f32: a layer any of
  /// whose nodes (the conv/linear, its bias add or activation) is listed stays float, with
  /// dequantize/quantize around it (mixed precision, issue 7's lever).
  std::vector<int> keep_float;
  /// Per-layer variants (the doctor's cheaper intervention than f32): float nodes whose layer
  /// gets per-channel weight scales although per_channel is false, and nodes whose int8 range is
  /// calibrated by percentile although calibration is min_max (a layer's output range is its
  /// chain end's: list that node).
  std::vector<int> per_channel_nodes, percentile_nodes;
};

/// Whether `id` is in `v` (the per-node option lists are short).
inline bool listed(const std::vector<int>& v, int id) {
  for (int k : v)
    if (k == id) return true;
  return false;
}

/// One quantised layer, for the report.
struct Layer {
  std::string what;       ///< e.g. "qlinear + bias + relu"
  int node = -1;          ///< the int8 node in QuantizedModel::graph()
  Shape shape;            ///< its output shape
  QuantParams input, output;
  float weight_scale_min = 0.f, weight_scale_max = 0.f;  ///< qlinear/qconv2d
  Range observed;         ///< the calibrated range its output quantisation covers
};

/// Bytes owned for the rewritten graph's new constants (stable addresses).
class ConstantStore {
 public:
  template <class T>
  const T* add(std::vector<T> v) {
    blocks_.emplace_back(v.size() * sizeof(T) + 1);
    std::memcpy(blocks_.back().data(), v.data(), v.size() * sizeof(T));
    return reinterpret_cast<const T*>(blocks_.back().data());
  }

 private:
  std::deque<std::vector<unsigned char>> blocks_;  // vector<unsigned char> data: malloc-aligned
};

namespace detail {

class Rewriter {
 public:
  Rewriter(const Graph& f, const Observer& obs, const Options& o, ConstantStore& store)
      : f_(f), obs_(obs), o_(o), store_(store), q_of_(static_cast<std::size_t>(f.size()), -1),
        f_of_(static_cast<std::size_t>(f.size()), -1), absorbed_(static_cast<std::size_t>(f.size()), false) {
    uses_.resize(static_cast<std::size_t>(f.size()));
    f.count_uses(uses_.data());
  }

  Status run(Graph& out, std::vector<Layer>& layers) {
    g_ = &out;
    layers_ = &layers;
    for (int i = 0; i < f_.size() && g_->ok(); ++i) {
      if (absorbed_[static_cast<std::size_t>(i)]) continue;
      visit(i);
    }
    for (int k = 0; k < f_.num_outputs() && g_->ok(); ++k) {
      const int o = f_.output(k);
      g_->add_output(o_.int8_output ? as_int8(o) : as_float(o));
    }
    return g_->status();
  }

  /// Float node id -> the node of the new graph holding its value as computed: the float node
  /// when it ran in f32, else its int8 version (a fused layer's output is at the chain's last
  /// node; nodes absorbed into a layer map to -1). The precision doctor observes through this.
  std::vector<int> value_map() const {
    std::vector<int> m(q_of_.size(), -1);
    for (std::size_t i = 0; i < m.size(); ++i) {
      const int fv = f_of_[i];
      m[i] = fv >= 0 && (*g_)[fv].op != Op::dequantize ? fv : q_of_[i] >= 0 ? q_of_[i] : fv;
    }
    return m;
  }

 private:
  const Node& fn(int id) const { return f_[id]; }
  int uses(int id) const { return uses_[static_cast<std::size_t>(id)]; }
  QuantParams quant_of(int id) const { return quant_for_range(range_of(id)); }
  Range range_of(int id) const {
    return obs_.range(id, listed(o_.percentile_nodes, id) ? Calibration::percentile : o_.calibration, o_.percentile);
  }

  int add(Node n) { return g_->add(n); }

  /// The float version of value `id` in the new graph (dequantising its int8 version if needed).
  int as_float(int id) {
    int& fv = f_of_[static_cast<std::size_t>(id)];
    if (fv >= 0) return fv;
    if (f_[id].is_leaf()) {  // constants enter the new graph where first used (as a trace adds them)
      fv = add(f_[id]);
      return fv;
    }
    Node n;
    n.op = Op::dequantize;
    n.inputs[0] = q_of_[static_cast<std::size_t>(id)];
    n.num_inputs = 1;
    fv = add(n);
    return fv;
  }
  /// The int8 version of value `id` (quantising its float version with its observed range).
  int as_int8(int id) {
    int& qv = q_of_[static_cast<std::size_t>(id)];
    if (qv >= 0) return qv;
    Node n;
    n.op = Op::quantize;
    n.quant = quant_of(id);
    n.inputs[0] = as_float(id);
    n.num_inputs = 1;
    qv = add(n);
    return qv;
  }
  bool has_int8(int id) const { return q_of_[static_cast<std::size_t>(id)] >= 0; }

  /// The only consumer of `id` when it has exactly one and is not a graph output, else -1.
  int sole_user(int id) const {
    if (uses(id) != 1 || f_.is_output(id)) return -1;
    for (int u = id + 1; u < f_.size(); ++u)
      for (int k = 0; k < f_[u].num_inputs; ++k)
        if (f_[u].inputs[k] == id) return u;
    return -1;
  }
  bool is_const(int id) const { return f_[id].op == Op::constant && f_[id].dtype == DType::f32; }

  bool kept_float(int id) const { return listed(o_.keep_float, id); }

  void visit(int i) {
    const Node& n = fn(i);
    if (kept_float(i) && n.op != Op::input) {
      as_float_node(i);
      return;
    }
    switch (n.op) {
      case Op::constant:
      case Op::parameter:
      case Op::scalar: return;  // added by as_float when something reads them
      case Op::input:
        if (o_.int8_input) {
          Node in = n;
          in.dtype = DType::i8;
          in.quant = quant_of(i);
          q_of_[static_cast<std::size_t>(i)] = add(in);
        } else {
          f_of_[static_cast<std::size_t>(i)] = add(n);
        }
        return;
      case Op::matmul:
        if (is_const(n.inputs[1]) && f_[n.inputs[1]].shape.rank() == 2 && f_[n.inputs[0]].shape.rank() >= 1 &&
            f_[n.inputs[0]].dtype == DType::f32) {
          weighted_chain(i);
          return;
        }
        break;
      case Op::conv2d:
        if (is_const(n.inputs[1])) {
          weighted_chain(i);
          return;
        }
        break;
      case Op::pool2d: {
        const Window2d& w = n.win;
        const bool padded = w.pad_top || w.pad_bottom || w.pad_left || w.pad_right;
        if (has_int8(n.inputs[0]) && (n.rk == ReduceKind::max || !w.count_include_pad || !padded)) {
          Node q = n;
          q.op = Op::qpool2d;
          q.win.count_include_pad = false;
          q.inputs[0] = as_int8(n.inputs[0]);
          record(i, add(q), n.rk == ReduceKind::max ? "qmax_pool2d" : "qavg_pool2d");
          return;
        }
        break;
      }
      case Op::reshape:
      case Op::permute:
      case Op::slice:
      case Op::expand:
        if (has_int8(n.inputs[0])) {  // the int8 value viewed; its float version only if a float op asks
          Node v = n;
          v.quant = QuantParams();
          v.inputs[0] = as_int8(n.inputs[0]);
          if (n.op == Op::slice) v.shape = Shape{n.shape[n.axis]};  // slice takes its count this way
          q_of_[static_cast<std::size_t>(i)] = add(v);
          return;
        }
        break;
      case Op::softmax:
        if (has_int8(n.inputs[0]) && n.axis == f_[n.inputs[0]].shape.rank() - 1) {
          Node s;
          s.op = Op::qsoftmax;
          s.axis = -1;
          s.p0 = 1.f;
          s.inputs[0] = as_int8(n.inputs[0]);
          s.num_inputs = 1;
          record(i, add(s), "qsoftmax");
          return;
        }
        break;
      case Op::elementwise:
        if (n.fn == EwFn::add && has_int8(n.inputs[0]) && has_int8(n.inputs[1])) {
          Node a;
          a.op = Op::qadd;
          a.quant = quant_of(i);
          a.inputs[0] = as_int8(n.inputs[0]);
          a.inputs[1] = as_int8(n.inputs[1]);
          a.num_inputs = 2;
          record(i, add(a), "qadd");
          return;
        }
        break;
      default: break;
    }
    as_float_node(i);
  }

  /// The float node itself (no int8 form, or kept in f32), reading float versions of its inputs.
  void as_float_node(int i) {
    const Node& n = fn(i);
    Node c = n;
    for (int k = 0; k < n.num_inputs; ++k) c.inputs[k] = as_float(n.inputs[k]);
    if (n.op == Op::slice) c.shape = Shape{n.shape[n.axis]};
    if (n.op == Op::unslice) c.shape = Shape{n.shape[n.axis]};
    f_of_[static_cast<std::size_t>(i)] = add(c);
  }

  void record(int i, int id, const char* what, float ws_min = 0.f, float ws_max = 0.f) {
    q_of_[static_cast<std::size_t>(i)] = id;
    if (id < 0) return;
    Layer l;
    l.what = what;
    l.node = id;
    l.shape = (*g_)[id].shape;
    l.input = (*g_)[id].in_quant[0];
    l.output = (*g_)[id].quant;
    l.weight_scale_min = ws_min;
    l.weight_scale_max = ws_max;
    l.observed = range_of(i);
    layers_->push_back(l);
  }

  /// matmul/conv2d with a constant weight, plus the bias add and clamp-like activation that
  /// follow it alone: one qlinear/qconv2d.
  void weighted_chain(int root) {
    const Node& r = fn(root);
    const bool conv = r.op == Op::conv2d;
    const Node& wn = fn(r.inputs[1]);
    const index_t out_c = conv ? wn.shape[0] : (r.trans_b ? wn.shape[0] : wn.shape[1]);
    std::string what = !conv ? "qlinear"
                       : r.win.groups == 1 ? "qconv2d"
                       : wn.shape[3] == 1 && r.win.groups == fn(r.inputs[0]).shape[3] ? "qconv2d depthwise"
                                                                                     : "qconv2d grouped";
    int end = root, bias = -1;
    int members[3] = {root, -1, -1};
    Node q;
    q.op = conv ? Op::qconv2d : Op::qlinear;
    q.win = r.win;
    if (int u = sole_user(end); u >= 0 && fn(u).op == Op::elementwise && fn(u).fn == EwFn::add) {
      const int other = fn(u).inputs[0] == end ? fn(u).inputs[1] : fn(u).inputs[0];
      if (other != end && is_const(other) && fn(other).shape == Shape{out_c}) {
        bias = other;
        members[1] = u;
        end = u;
        what += " + bias";
      }
    }
    if (int u = sole_user(end); u >= 0 && fn(u).op == Op::elementwise &&
                                (fn(u).fn == EwFn::relu || fn(u).fn == EwFn::relu6 ||
                                 (fn(u).fn == EwFn::clamp && fn(u).p0 <= fn(u).p1))) {
      q.fn = fn(u).fn;
      q.p0 = fn(u).p0;
      q.p1 = fn(u).p1;
      members[2] = u;
      end = u;
      what += std::string(" + ") + ewfn_name(q.fn);
    }
    for (int m : members)
      if (m >= 0 && kept_float(m)) {  // part of the layer must stay f32: all of it does
        as_float_node(root);
        return;
      }
    for (int m : members)
      if (m != root && m >= 0) absorbed_[static_cast<std::size_t>(m)] = true;
    bool per_channel = o_.per_channel;
    for (int m : members) per_channel = per_channel || (m >= 0 && listed(o_.per_channel_nodes, m));
    const int x = as_int8(r.inputs[0]);
    if (x < 0) return;
    const QuantParams in_q = (*g_)[x].quant;
    // Weights as [out_c, rest] rows (a matmul's [K, N] weight is transposed).
    const Shape wshape = conv ? wn.shape : Shape{out_c, r.trans_b ? wn.shape[1] : wn.shape[0]};
    const index_t rest = wshape.numel() / out_c;
    const auto* w = static_cast<const float*>(wn.data);
    auto w_at = [&](index_t c, index_t k) { return conv || r.trans_b ? w[c * rest + k] : w[k * out_c + c]; };
    std::vector<float> scales(static_cast<std::size_t>(per_channel ? out_c : 1), 0.f);
    for (index_t c = 0; c < out_c; ++c)
      for (index_t k = 0; k < rest; ++k) {
        float& s = scales[per_channel ? static_cast<std::size_t>(c) : 0];
        s = std::max(s, std::fabs(w_at(c, k)));
      }
    for (float& s : scales) s = s > 0.f ? s / 127.f : 1.f;  // an all-zero channel: any scale
    std::vector<std::int8_t> wq(static_cast<std::size_t>(out_c * rest));
    for (index_t c = 0; c < out_c; ++c) {
      const quant::TensorQuant wq_c{scales[per_channel ? static_cast<std::size_t>(c) : 0], 0};
      for (index_t k = 0; k < rest; ++k) {
        const std::int8_t v = quant::quantize_value(w_at(c, k), wq_c);
        wq[static_cast<std::size_t>(c * rest + k)] = v < -127 ? std::int8_t{-127} : v;  // symmetric
      }
    }
    const int w_id = constant(store_.add(std::move(wq)), wshape, DType::i8);
    const int s_id = constant(store_.add(scales), Shape{static_cast<index_t>(scales.size())}, DType::f32);
    q.inputs[0] = x;
    q.inputs[1] = w_id;
    q.inputs[2] = s_id;
    q.num_inputs = 3;
    if (bias >= 0) {
      const auto* b = static_cast<const float*>(fn(bias).data);
      std::vector<std::int32_t> bq(static_cast<std::size_t>(out_c));
      for (index_t c = 0; c < out_c; ++c)
        bq[static_cast<std::size_t>(c)] =
            quant::quantize_bias_value(b[c], in_q.scale, scales[per_channel ? static_cast<std::size_t>(c) : 0]);
      q.inputs[3] = constant(store_.add(std::move(bq)), Shape{out_c}, DType::i32);
      q.num_inputs = 4;
    }
    q.quant = quant_of(end);
    const auto mm = std::minmax_element(scales.begin(), scales.end());
    record(end, add(q), what.c_str(), *mm.first, *mm.second);
  }

  int constant(const void* data, const Shape& s, DType t) {
    Node c;
    c.op = Op::constant;
    c.dtype = t;
    c.shape = s;
    c.data = data;
    return add(c);
  }

  const Graph& f_;
  const Observer& obs_;
  const Options& o_;
  ConstantStore& store_;
  Graph* g_ = nullptr;
  std::vector<Layer>* layers_ = nullptr;
  std::vector<int> q_of_, f_of_, uses_;
  std::vector<bool> absorbed_;
};

}  // namespace detail

/// Rewrites float graph `f` (observed by `obs`) to int8 into `out`; new constants go to `store`.
inline Status rewrite_to_int8(const Graph& f, const Observer& obs, const Options& o, ConstantStore& store, Graph& out,
                              std::vector<Layer>& layers, std::vector<int>* value_map = nullptr) {
  detail::Rewriter r(f, obs, o, store);
  Status st = r.run(out, layers);
  if (value_map) *value_map = r.value_map();
  return st;
}

}  // namespace kiln::ptq
