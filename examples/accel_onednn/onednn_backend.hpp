// examples/accel_onednn/onednn_backend.hpp — oneDNN (Debian libdnnl-dev, 2.x API) behind kiln's
// accelerator hook.
//
// Patterns: conv2d_bias_relu, conv2d_bias (groups == 1, NHWC activations, OHWI weights) and
// linear_bias_relu, linear_bias (2-D input, weight [out, in]), all with constant weights and bias.
// Each composite becomes one oneDNN primitive (convolution_forward / inner_product_forward) with
// the ReLU as an eltwise post-op. compile() builds the primitives once and reorders every weight
// once into the layout the primitive chose (format_tag::any); run() binds the region's dense
// input/output buffers (NHWC / row-major, no per-call reorder) and executes the chain on one
// stream. A region merged from several composites keeps its intermediates in buffers the
// handle owns. Anything else in a region (a predicate is not registered, so only these patterns
// are claimed) makes compile refuse it: the region stays on kiln's CPU kernels.
#pragma once

#include <kiln/kiln.hpp>
#include <oneapi/dnnl/dnnl.hpp>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace onednn {

using kiln::EwFn;
using kiln::Op;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

struct Context {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  int compiles = 0, runs = 0;
};

/// One compiled region: primitives in order, each with its argument map; region inputs/outputs
/// and intermediates are memories whose data handles run() rebinds.
struct Handle {
  struct Call {
    dnnl::primitive prim;
    int src = -1, dst = -1;  // region-graph node ids of the activation in/out
    dnnl::memory src_mem, weights, bias, dst_mem;
  };
  std::vector<Call> calls;
  const kiln::Graph* g = nullptr;
  std::vector<std::vector<float>> scratch;  // intermediates, by region node id
};

inline int consumer(const kiln::Graph& g, int id) {
  for (int u = id + 1; u < g.size(); ++u)
    for (int k = 0; k < g[u].num_inputs; ++k)
      if (g[u].inputs[k] == id) return u;
  return -1;
}

inline bool refuse(kiln::Status& why, const std::string& msg) {
  why = kiln::Status(kiln::Errc::not_supported) << "onednn: " << msg.c_str();
  return false;
}

inline dnnl::memory::dims nchw_dims(const kiln::Shape& nhwc) { return {nhwc[0], nhwc[3], nhwc[1], nhwc[2]}; }

/// Builds the primitive of one composite rooted at matmul/conv node `root`; `out` is the
/// composite's last node (the add, or the relu).
inline bool build_call(Context& ctx, const kiln::Graph& g, int root, int out, bool relu, Handle::Call& c,
                       kiln::Status& why) {
  const kiln::Node& n = g[root];
  const kiln::Node& add = g[consumer(g, root)];
  const int bias = add.inputs[0] == root ? add.inputs[1] : add.inputs[0];
  const kiln::Node& w = g[n.inputs[1]];
  if (w.op != Op::constant || g[bias].op != Op::constant) return refuse(why, "weights and bias must be constants");
  if (g[bias].shape.numel() != n.shape.back()) return refuse(why, "bias must have one value per output channel");
  dnnl::primitive_attr attr;
  if (relu) {
    dnnl::post_ops po;
    po.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
    attr.set_post_ops(po);
  }
  const dnnl::memory::desc bias_md({n.shape.back()}, dt::f32, tag::a);
  dnnl::memory::desc src_md, user_w_md, any_w_md, dst_md;
  dnnl::memory::desc prim_w_md;
  if (n.op == Op::conv2d) {
    const kiln::Window2d& win = n.win;
    if (win.groups != 1) return refuse(why, "grouped/depthwise conv2d");
    const kiln::Shape& xs = g[n.inputs[0]].shape;
    src_md = dnnl::memory::desc(nchw_dims(xs), dt::f32, tag::nhwc);
    dst_md = dnnl::memory::desc(nchw_dims(n.shape), dt::f32, tag::nhwc);
    const dnnl::memory::dims wd{w.shape[0], w.shape[3], w.shape[1], w.shape[2]};
    user_w_md = dnnl::memory::desc(wd, dt::f32, tag::ohwi);
    any_w_md = dnnl::memory::desc(wd, dt::f32, tag::any);
    const dnnl::convolution_forward::desc d(
        dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src_md, any_w_md, bias_md, dst_md,
        {win.stride_h, win.stride_w}, {win.dilation_h - 1, win.dilation_w - 1}, {win.pad_top, win.pad_left},
        {win.pad_bottom, win.pad_right});
    const dnnl::convolution_forward::primitive_desc pd(d, attr, ctx.engine);
    c.prim = dnnl::convolution_forward(pd);
    prim_w_md = pd.weights_desc();
  } else {
    const kiln::Shape& xs = g[n.inputs[0]].shape;
    if (xs.rank() != 2 || !n.trans_b) return refuse(why, "linear needs a 2-D input and a weight [out, in]");
    src_md = dnnl::memory::desc({xs[0], xs[1]}, dt::f32, tag::nc);
    dst_md = dnnl::memory::desc({n.shape[0], n.shape[1]}, dt::f32, tag::nc);
    user_w_md = dnnl::memory::desc({w.shape[0], w.shape[1]}, dt::f32, tag::oi);
    any_w_md = dnnl::memory::desc({w.shape[0], w.shape[1]}, dt::f32, tag::any);
    const dnnl::inner_product_forward::desc d(dnnl::prop_kind::forward_inference, src_md, any_w_md, bias_md, dst_md);
    const dnnl::inner_product_forward::primitive_desc pd(d, attr, ctx.engine);
    c.prim = dnnl::inner_product_forward(pd);
    prim_w_md = pd.weights_desc();
  }
  // Weights: reordered once into the primitive's layout (owned by the memory object).
  dnnl::memory user_w(user_w_md, ctx.engine, const_cast<void*>(w.data));
  c.weights = dnnl::memory(prim_w_md, ctx.engine);
  dnnl::reorder(user_w, c.weights).execute(ctx.stream, user_w, c.weights);
  ctx.stream.wait();
  c.bias = dnnl::memory(bias_md, ctx.engine, const_cast<void*>(g[bias].data));
  c.src_mem = dnnl::memory(src_md, ctx.engine, DNNL_MEMORY_NONE);
  c.dst_mem = dnnl::memory(dst_md, ctx.engine, DNNL_MEMORY_NONE);
  c.src = n.inputs[0];
  c.dst = out;
  return true;
}

inline void* compile(void* context, const kiln::accel::Region& r, kiln::Status& why) {
  Context& ctx = *static_cast<Context*>(context);
  const kiln::Graph& g = *r.graph;
  auto h = std::make_unique<Handle>();
  h->g = r.graph;
  h->scratch.resize(static_cast<std::size_t>(g.size()));
  std::vector<bool> covered(static_cast<std::size_t>(g.size()), false);
  try {
    for (int i = 0; i < g.size(); ++i) {
      const kiln::Node& n = g[i];
      if (n.is_leaf() || covered[static_cast<std::size_t>(i)]) continue;
      if (n.dtype != kiln::DType::f32 || !r.composite[i] || (n.op != Op::conv2d && n.op != Op::matmul)) {
        refuse(why, std::string("no primitive for ") + kiln::op_name(n.op) + " outside the patterns");
        return nullptr;
      }
      const bool relu = std::strstr(r.composite[i], "relu") != nullptr;
      const int add = consumer(g, i);
      const int out = relu ? consumer(g, add) : add;
      covered[static_cast<std::size_t>(add)] = covered[static_cast<std::size_t>(out)] = true;
      Handle::Call c;
      if (!build_call(ctx, g, i, out, relu, c, why)) return nullptr;
      h->calls.push_back(std::move(c));
    }
  } catch (const dnnl::error& e) {
    refuse(why, e.what());
    return nullptr;
  }
  // Intermediates (a composite's output that only the next composite reads) live in the handle.
  for (const Handle::Call& c : h->calls) {
    bool is_output = false;
    for (int k = 0; k < g.num_outputs(); ++k) is_output = is_output || g.output(k) == c.dst;
    if (!is_output) h->scratch[static_cast<std::size_t>(c.dst)].resize(static_cast<std::size_t>(g[c.dst].shape.numel()));
  }
  ++ctx.compiles;
  return h.release();
}

inline bool run(void* context, void* handle, const void* const* ins, void* const* outs, kiln::Status& why) {
  Context& ctx = *static_cast<Context*>(context);
  Handle& h = *static_cast<Handle*>(handle);
  const kiln::Graph& g = *h.g;
  auto where = [&](int id) -> void* {
    if (g[id].op == Op::input) return const_cast<void*>(ins[g[id].index]);
    for (int k = 0; k < g.num_outputs(); ++k)
      if (g.output(k) == id) return outs[k];
    return h.scratch[static_cast<std::size_t>(id)].data();
  };
  try {
    for (Handle::Call& c : h.calls) {
      c.src_mem.set_data_handle(where(c.src));
      c.dst_mem.set_data_handle(where(c.dst));
      c.prim.execute(ctx.stream, {{DNNL_ARG_SRC, c.src_mem},
                                  {DNNL_ARG_WEIGHTS, c.weights},
                                  {DNNL_ARG_BIAS, c.bias},
                                  {DNNL_ARG_DST, c.dst_mem}});
    }
    ctx.stream.wait();
  } catch (const dnnl::error& e) {
    why = kiln::Status(kiln::Errc::not_supported) << "onednn: " << e.what();
    return false;
  }
  ++ctx.runs;
  return true;
}

inline void release(void*, void* handle) { delete static_cast<Handle*>(handle); }

inline constexpr kiln::accel::Pattern kPatterns[] = {
    {"conv2d_bias_relu", {kiln::accel::step(Op::conv2d), kiln::accel::step(EwFn::add), kiln::accel::step(EwFn::relu)}, 3},
    {"conv2d_bias", {kiln::accel::step(Op::conv2d), kiln::accel::step(EwFn::add)}, 2},
    {"linear_bias_relu", {kiln::accel::step(Op::matmul), kiln::accel::step(EwFn::add), kiln::accel::step(EwFn::relu)}, 3},
    {"linear_bias", {kiln::accel::step(Op::matmul), kiln::accel::step(EwFn::add)}, 2},
};

/// The backend over `ctx` (which must outlive the models compiled with it).
inline kiln::accel::Backend backend(Context& ctx) {
  kiln::accel::Backend b;
  b.target = kiln::accel::Target{"onednn", nullptr, kPatterns, 4};
  b.context = &ctx;
  b.compile = &compile;
  b.run = &run;
  b.release = &release;
  return b;
}

}  // namespace onednn
