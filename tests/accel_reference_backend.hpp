// A reference accelerator backend for the offload tests: its own naive kernels (written here, not
// kiln's) for the patterns linear_bias_relu, linear_bias, conv2d_bias_relu, conv2d_bias and the
// single ops add / mul / relu (f32, NumPy broadcasting), a record of every call, and switches to
// make it misbehave (refuse to compile, fail or throw at run, run "asynchronously" by deferring
// the work to wait()).
#pragma once

#include <kiln/kiln.hpp>

#include "test_util.hpp"

#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace refdev {

using kiln::EwFn;
using kiln::Graph;
using kiln::index_t;
using kiln::Node;
using kiln::Op;
using kiln::accel::step;

struct Options {
  bool refuse_compile = false;  // compile returns no handle
  bool fail_run = false;        // run/submit returns false
  bool throw_run = false;       // run/submit throws
  bool deferred = false;        // async: submit records the buffers, wait computes
};

/// What the backend saw: one line per call ("compile r0: linear_bias_relu linear_bias", "run r0").
struct Log {
  std::vector<std::string> calls;
  int compiles = 0, runs = 0, releases = 0;
};

/// One command of a compiled region: a fused pattern or a single op over region-graph values.
struct Command {
  enum Kind { linear, conv, add, mul, relu } kind = add;
  int out = -1, a = -1, b = -1, bias = -1;  // region-graph node ids
  bool relu_after = false;
};

struct Compiled {
  const Graph* g = nullptr;
  int index = 0;
  std::vector<Command> cmds;
  std::vector<std::vector<float>> values;  // per region node: its buffer (leaves point elsewhere)
  std::vector<const void*> in_copy;
  std::vector<void*> out_copy;
};

struct Device {
  Options opt;
  Log log;
};

inline void execute(Compiled& c, const void* const* inputs, void* const* outputs) {
  const Graph& g = *c.g;
  std::vector<const float*> at(static_cast<std::size_t>(g.size()), nullptr);
  for (int i = 0; i < g.size(); ++i) {
    const Node& n = g[i];
    if (n.op == Op::input) at[static_cast<std::size_t>(i)] = static_cast<const float*>(inputs[n.index]);
    else if (n.op == Op::constant) at[static_cast<std::size_t>(i)] = static_cast<const float*>(n.data);
    else if (n.op == Op::scalar) at[static_cast<std::size_t>(i)] = &g[i].p0;
    else at[static_cast<std::size_t>(i)] = c.values[static_cast<std::size_t>(i)].data();
  }
  for (const Command& cmd : c.cmds) {
    float* out = c.values[static_cast<std::size_t>(cmd.out)].data();
    const Node& o = g[cmd.out];
    if (cmd.kind == Command::linear) {  // out[m][n] = sum_k a[m][k] * w[n][k] (+ bias[n])
      const Node& mm = g[cmd.a];
      const kiln::Shape& xs = g[mm.inputs[0]].shape;
      const index_t K = xs.back(), M = xs.numel() / K, N = o.shape.back();
      const float* x = at[static_cast<std::size_t>(mm.inputs[0])];
      const float* w = at[static_cast<std::size_t>(mm.inputs[1])];
      const float* bias = cmd.bias >= 0 ? at[static_cast<std::size_t>(cmd.bias)] : nullptr;
      for (index_t m = 0; m < M; ++m)
        for (index_t j = 0; j < N; ++j) {
          double acc = bias ? bias[j] : 0.0;
          for (index_t k = 0; k < K; ++k) acc += double(x[m * K + k]) * (mm.trans_b ? w[j * K + k] : w[k * N + j]);
          const float v = static_cast<float>(acc);
          out[m * N + j] = cmd.relu_after && v < 0.f ? 0.f : v;
        }
    } else if (cmd.kind == Command::conv) {  // NHWC x, OHWI w, groups == 1
      const Node& cv = g[cmd.a];
      const kiln::Shape& xs = g[cv.inputs[0]].shape;
      const kiln::Shape& ws = g[cv.inputs[1]].shape;
      const float* x = at[static_cast<std::size_t>(cv.inputs[0])];
      const float* w = at[static_cast<std::size_t>(cv.inputs[1])];
      const float* bias = cmd.bias >= 0 ? at[static_cast<std::size_t>(cmd.bias)] : nullptr;
      const kiln::Window2d& win = cv.win;
      const index_t N = xs[0], H = xs[1], W = xs[2], C = xs[3], O = ws[0], KH = ws[1], KW = ws[2];
      const index_t OH = o.shape[1], OW = o.shape[2];
      for (index_t b = 0; b < N; ++b)
        for (index_t oh = 0; oh < OH; ++oh)
          for (index_t ow = 0; ow < OW; ++ow)
            for (index_t oc = 0; oc < O; ++oc) {
              double acc = bias ? bias[oc] : 0.0;
              for (index_t kh = 0; kh < KH; ++kh)
                for (index_t kw = 0; kw < KW; ++kw) {
                  const index_t ih = oh * win.stride_h - win.pad_top + kh * win.dilation_h;
                  const index_t iw = ow * win.stride_w - win.pad_left + kw * win.dilation_w;
                  if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                  for (index_t ic = 0; ic < C; ++ic)
                    acc += double(x[((b * H + ih) * W + iw) * C + ic]) * w[((oc * KH + kh) * KW + kw) * C + ic];
                }
              const float v = static_cast<float>(acc);
              out[((b * OH + oh) * OW + ow) * O + oc] = cmd.relu_after && v < 0.f ? 0.f : v;
            }
    } else {
      const float* a = at[static_cast<std::size_t>(cmd.a)];
      const float* bb = cmd.b >= 0 ? at[static_cast<std::size_t>(cmd.b)] : nullptr;
      const kiln::Shape& as = g[cmd.a].shape;
      for (index_t i = 0; i < o.shape.numel(); ++i) {
        const float x = a[kt::broadcast_offset(i, o.shape, as)];
        const float y = bb ? bb[kt::broadcast_offset(i, o.shape, g[cmd.b].shape)] : 0.f;
        out[i] = cmd.kind == Command::add ? x + y : cmd.kind == Command::mul ? x * y : (x < 0.f ? 0.f : x);
      }
    }
  }
  for (int k = 0; k < g.num_outputs(); ++k) {
    const int id = g.output(k);
    std::memcpy(outputs[k], c.values[static_cast<std::size_t>(id)].data(),
                static_cast<std::size_t>(g[id].shape.numel()) * sizeof(float));
  }
}

/// The consumer of `id` inside the region's graph (the pattern guarantees exactly one).
inline int consumer(const Graph& g, int id) {
  for (int u = id + 1; u < g.size(); ++u)
    for (int k = 0; k < g[u].num_inputs; ++k)
      if (g[u].inputs[k] == id) return u;
  return -1;
}

inline void* compile(void* ctx, const kiln::accel::Region& r, kiln::Status& why) {
  Device& dev = *static_cast<Device*>(ctx);
  ++dev.log.compiles;
  std::string line = "compile r" + std::to_string(r.index) + ":";
  const Graph& g = *r.graph;
  auto c = std::make_unique<Compiled>();
  c->g = r.graph;
  c->index = r.index;
  c->values.resize(static_cast<std::size_t>(g.size()));
  std::vector<bool> done(static_cast<std::size_t>(g.size()), false);
  for (int i = 0; i < g.size(); ++i) {
    const Node& n = g[i];
    if (n.is_leaf() || done[static_cast<std::size_t>(i)]) continue;
    if (n.dtype != kiln::DType::f32) {
      why = kiln::Status(kiln::Errc::not_supported) << "refdev: only f32";
      return nullptr;
    }
    c->values[static_cast<std::size_t>(i)].resize(static_cast<std::size_t>(n.shape.numel()));
    Command cmd;
    cmd.out = i;
    const char* pat = r.composite[i];
    if (pat && (n.op == Op::matmul || n.op == Op::conv2d)) {
      line += std::string(" ") + pat;
      if (n.op == Op::matmul && (g[n.inputs[0]].shape.rank() != 2 || g[n.inputs[1]].shape.rank() != 2)) {
        why = kiln::Status(kiln::Errc::not_supported) << "refdev: matmul must be 2-D, got " << g[n.inputs[0]].shape;
        return nullptr;
      }
      if (n.op == Op::conv2d && n.win.groups != 1) {
        why = kiln::Status(kiln::Errc::not_supported) << "refdev: grouped conv2d";
        return nullptr;
      }
      cmd.kind = n.op == Op::matmul ? Command::linear : Command::conv;
      cmd.a = i;
      const int add = consumer(g, i);  // every pattern here continues with the bias add
      const Node& an = g[add];
      cmd.bias = an.inputs[0] == i ? an.inputs[1] : an.inputs[0];
      if (g[cmd.bias].shape.numel() != n.shape.back()) {
        why = kiln::Status(kiln::Errc::not_supported) << "refdev: bias of shape " << g[cmd.bias].shape;
        return nullptr;
      }
      done[static_cast<std::size_t>(add)] = true;
      cmd.out = add;
      if (std::string(pat).find("relu") != std::string::npos) {
        const int relu = consumer(g, add);
        done[static_cast<std::size_t>(relu)] = true;
        cmd.relu_after = true;
        cmd.out = relu;
      }
      c->values[static_cast<std::size_t>(cmd.out)].resize(static_cast<std::size_t>(g[cmd.out].shape.numel()));
    } else if (n.op == Op::elementwise && (n.fn == EwFn::add || n.fn == EwFn::mul || n.fn == EwFn::relu)) {
      line += std::string(" ") + kiln::ewfn_name(n.fn);
      cmd.kind = n.fn == EwFn::add ? Command::add : n.fn == EwFn::mul ? Command::mul : Command::relu;
      cmd.a = n.inputs[0];
      cmd.b = n.num_inputs > 1 ? n.inputs[1] : -1;
    } else {
      why = kiln::Status(kiln::Errc::not_supported) << "refdev: no kernel for " << kiln::op_name(n.op);
      return nullptr;
    }
    c->cmds.push_back(cmd);
  }
  if (dev.opt.refuse_compile) {
    why = kiln::Status(kiln::Errc::not_supported) << "refdev: device out of memory";
    return nullptr;
  }
  dev.log.calls.push_back(line);
  return c.release();
}

inline bool run(void* ctx, void* handle, const void* const* in, void* const* out, kiln::Status& why) {
  Device& dev = *static_cast<Device*>(ctx);
  Compiled& c = *static_cast<Compiled*>(handle);
  ++dev.log.runs;
  dev.log.calls.push_back("run r" + std::to_string(c.index));
  if (dev.opt.throw_run) throw std::runtime_error("refdev: driver crashed");
  if (dev.opt.fail_run) {
    why = kiln::Status(kiln::Errc::not_supported) << "refdev: device busy";
    return false;
  }
  execute(c, in, out);
  return true;
}

/// Deferred mode: submit keeps the buffers, wait computes (as a device working in the background
/// would: the CPU must not touch those buffers in between).
inline bool submit(void* ctx, void* handle, const void* const* in, void* const* out, kiln::Status& why) {
  Device& dev = *static_cast<Device*>(ctx);
  Compiled& c = *static_cast<Compiled*>(handle);
  ++dev.log.runs;
  dev.log.calls.push_back("submit r" + std::to_string(c.index));
  if (dev.opt.fail_run) {
    why = kiln::Status(kiln::Errc::not_supported) << "refdev: queue full";
    return false;
  }
  const int ni = c.g->num_inputs(), no = c.g->num_outputs();
  c.in_copy.assign(in, in + ni);
  c.out_copy.assign(out, out + no);
  return true;
}
inline bool wait(void* ctx, void* handle, kiln::Status&) {
  Device& dev = *static_cast<Device*>(ctx);
  Compiled& c = *static_cast<Compiled*>(handle);
  dev.log.calls.push_back("wait r" + std::to_string(c.index));
  execute(c, c.in_copy.data(), c.out_copy.data());
  return true;
}

inline void release(void* ctx, void* handle) {
  ++static_cast<Device*>(ctx)->log.releases;
  delete static_cast<Compiled*>(handle);
}

inline constexpr kiln::accel::Pattern kPatterns[] = {
    {"linear_bias_relu", {step(Op::matmul), step(EwFn::add), step(EwFn::relu)}, 3},
    {"linear_bias", {step(Op::matmul), step(EwFn::add)}, 2},
    {"conv2d_bias_relu", {step(Op::conv2d), step(EwFn::add), step(EwFn::relu)}, 3},
    {"conv2d_bias", {step(Op::conv2d), step(EwFn::add)}, 2},
};

inline bool supports(const Graph& g, int id) {
  const Node& n = g[id];
  return n.op == Op::elementwise && n.dtype == kiln::DType::f32 &&
         (n.fn == EwFn::add || n.fn == EwFn::mul || n.fn == EwFn::relu);
}

/// The backend over `dev` (which must outlive every model compiled with it).
inline kiln::accel::Backend backend(Device& dev, bool (*predicate)(const Graph&, int) = supports) {
  kiln::accel::Backend b;
  b.target = kiln::accel::Target{"refdev", predicate, kPatterns, 4};
  b.context = &dev;
  b.compile = &compile;
  if (dev.opt.deferred) {
    b.submit = &submit;
    b.wait = &wait;
  } else {
    b.run = &run;
  }
  b.release = &release;
  return b;
}

}  // namespace refdev
