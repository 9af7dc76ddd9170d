// kiln/passes/autodiff.hpp — reverse-mode autodiff as a graph transformation.
//
// append_gradients(g, loss, wrt) walks the graph from a scalar loss back to the requested nodes
// and appends, to the same Graph, the nodes that compute d loss / d wrt[i]. The backward is made
// of ordinary IR ops (elementwise, reduce, matmul, views, pad, conv2d, pool2d), so simplification, CSE, fusion and
// memory planning treat it like any forward graph, and the eager interpreter can run it op by op.
// Like the rest of the IR it is constexpr-capable: fixed arrays, no heap, errors in the Graph's
// status.
//
// Conventions (PyTorch's, so gradients match torch.autograd):
//  - relu, relu6: gradient 0 at the kink (relu'(0) = 0; relu6 = hardtanh(0, 6): 0 at x = 0 and
//    x = 6). clamp(lo, hi): gradient 1 on the closed interval [lo, hi] (clamp_backward's mask
//    x >= lo && x <= hi), 0 outside, and 0 everywhere when lo > hi. leaky_relu: slope at x <= 0.
//    abs: sign(x), 0 at x = 0.
//  - minimum/maximum: a tie (a == b) sends half of the gradient to each operand.
//  - max/min reductions (values only, like torch.amax/amin): the gradient is split evenly among
//    all elements equal to the result.
//  - pow(x, p): p * x^(p-1); p == 0 gives zeros.
//  - Comparisons and where's condition are not differentiable: nothing flows through them, so an
//    input reached only that way gets a zero gradient (torch gives zeros with allow_unused and
//    materialised grads). An op with no backward rule on the path (copy, which only a planner
//    would create) is an error naming the op, its node and shapes.
//  - max_pool2d: each window's gradient goes to its first maximum in row-major window order (as
//    PyTorch's CPU kernel); the CNN rules are in autodiff_cnn.hpp.
//  - Broadcasting: the gradient of a broadcast operand is summed over the broadcast dimensions
//    and reshaped back to the operand's shape.
#pragma once

#include "../ir/graph.hpp"
#include "autodiff_cnn.hpp"
#include "grad_builder.hpp"

namespace kiln::passes {

namespace detail {

/// Whether a value can carry a gradient at all (booleans are masks: piecewise constant).
constexpr bool carries_gradient(const Node& n) { return n.dtype == DType::f32; }

/// The error for an op on the differentiated path that has no backward rule.
constexpr Status no_rule(const Graph& g, int id) {
  const Node& n = g[id];
  Status s(Errc::not_supported);
  s << "autodiff: no backward rule for ";
  if (n.op == Op::elementwise) s << ewfn_name(n.fn);
  else if (n.op == Op::reduce) s << reduce_name(n.rk);
  else s << op_name(n.op);
  s << " (node %" << id << ", shape " << n.shape << ", inputs";
  for (int k = 0; k < n.num_inputs; ++k) s << ' ' << g[n.inputs[k]].shape;
  return s << ')';
}

/// Adds `contribution` (already in the input's shape) to input `in`'s adjoint.
constexpr void accumulate(GradBuilder& b, int* adjoint, int in, int contribution) {
  if (contribution < 0) return;
  adjoint[in] = adjoint[in] < 0 ? contribution : b.ew(EwFn::add, adjoint[in], contribution);
}

/// Backward of an elementwise node: contributions (in the node's broadcast shape) per input.
/// Returns false for a function without a rule.
constexpr bool elementwise_backward(GradBuilder& b, int id, int gy, int* contrib) {
  const Node n = b.node(id);
  const int x = n.inputs[0];
  const int y = id;
  switch (n.fn) {
    case EwFn::identity: contrib[0] = gy; return true;
    case EwFn::neg: contrib[0] = b.ew(EwFn::neg, gy); return true;
    case EwFn::abs:  // sign(x) * g, sign(0) = 0
      contrib[0] = b.keep_where(b.mask(EwFn::gt, x, 0.f), gy);
      contrib[0] = b.select(b.mask(EwFn::lt, x, 0.f), b.ew(EwFn::neg, gy), contrib[0]);
      return true;
    case EwFn::exp: contrib[0] = b.ew(EwFn::mul, gy, y); return true;
    case EwFn::log: contrib[0] = b.ew(EwFn::div, gy, x); return true;
    case EwFn::sqrt: contrib[0] = b.ew(EwFn::div, gy, b.mul_s(y, 2.f)); return true;  // g / (2 sqrt x)
    case EwFn::rsqrt:  // d x^-1/2 = -1/2 x^-3/2 = -1/2 y^3
      contrib[0] = b.ew(EwFn::mul, gy, b.mul_s(b.ew(EwFn::mul, b.ew(EwFn::mul, y, y), y), -0.5f));
      return true;
    case EwFn::tanh: contrib[0] = b.ew(EwFn::mul, gy, b.rsub_s(1.f, b.ew(EwFn::mul, y, y))); return true;
    case EwFn::sigmoid: contrib[0] = b.ew(EwFn::mul, gy, b.ew(EwFn::mul, y, b.rsub_s(1.f, y))); return true;
    case EwFn::relu: contrib[0] = b.keep_where(b.mask(EwFn::gt, x, 0.f), gy); return true;
    case EwFn::relu6:  // hardtanh(0, 6): open interval
      contrib[0] = b.keep_where(b.mask(EwFn::gt, x, 0.f), b.keep_where(b.mask(EwFn::lt, x, 6.f), gy));
      return true;
    case EwFn::clamp:  // closed interval [lo, hi]
      contrib[0] = b.keep_where(b.mask(EwFn::ge, x, n.p0), b.keep_where(b.mask(EwFn::le, x, n.p1), gy));
      return true;
    case EwFn::leaky_relu:
      contrib[0] = b.select(b.mask(EwFn::gt, x, 0.f), gy, b.mul_s(gy, n.p0));
      return true;
    case EwFn::silu: {  // s (1 + x (1 - s)), s = sigmoid(x)
      const int s = b.ew(EwFn::sigmoid, x);
      const int d = b.ew(EwFn::mul, s, b.add_s(b.ew(EwFn::mul, x, b.rsub_s(1.f, s)), 1.f));
      contrib[0] = b.ew(EwFn::mul, gy, d);
      return true;
    }
    case EwFn::gelu_erf: {
      // Phi(x) + x phi(x). The IR has no erf, but gelu_erf(x) = x Phi(x), so Phi(x) = gelu(x) / x
      // (Phi(0) = 1/2 where the quotient is 0/0). x is clamped to +-20 first: beyond, Phi is 0 or
      // 1 and x phi(x) underflows to 0 in f32, and infinities would give inf/inf or inf*0.
      const int xc = b.ew(EwFn::clamp, x, -1, -1, -20.f, 20.f);
      const int tiny = b.mask(EwFn::lt, b.ew(EwFn::abs, xc), 1e-30f);
      const int phi_cdf = b.select(tiny, b.scalar(0.5f), b.ew(EwFn::div, b.ew(EwFn::gelu_erf, xc), xc));
      const int pdf = b.mul_s(b.ew(EwFn::exp, b.mul_s(b.ew(EwFn::mul, xc, xc), -0.5f)), 0.3989422804014327f);
      contrib[0] = b.ew(EwFn::mul, gy, b.ew(EwFn::add, phi_cdf, b.ew(EwFn::mul, xc, pdf)));
      return true;
    }
    case EwFn::gelu_tanh: {
      // 0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3k x^2), t = tanh(c (x + k x^3)), c = sqrt(2/pi).
      constexpr float c = 0.7978845608028654f, k = 0.044715f;
      const int xc = b.ew(EwFn::clamp, x, -1, -1, -20.f, 20.f);  // t = +-1 beyond: keeps inf out
      const int x2 = b.ew(EwFn::mul, xc, xc);
      const int u = b.mul_s(b.ew(EwFn::mul, xc, b.add_s(b.mul_s(x2, k), 1.f)), c);
      const int t = b.ew(EwFn::tanh, u);
      const int left = b.mul_s(b.add_s(t, 1.f), 0.5f);
      const int du = b.mul_s(b.add_s(b.mul_s(x2, 3.f * k), 1.f), c);
      const int right = b.ew(EwFn::mul, b.mul_s(b.ew(EwFn::mul, xc, b.rsub_s(1.f, b.ew(EwFn::mul, t, t))), 0.5f), du);
      contrib[0] = b.ew(EwFn::mul, gy, b.ew(EwFn::add, left, right));
      return true;
    }
    case EwFn::round:  // piecewise constant: zero almost everywhere, as torch.round
    case EwFn::floor:
    case EwFn::detach: return true;  // no contribution: the input gets no gradient from here
    case EwFn::round_f16:  // a storage cast: the gradient passes as through x.half().float()
    case EwFn::round_bf16: contrib[0] = gy; return true;
    case EwFn::pow_scalar:
      if (n.p0 == 0.f) contrib[0] = b.zeros(b.shape(id));
      else contrib[0] = b.ew(EwFn::mul, gy, b.mul_s(b.ew(EwFn::pow_scalar, x, -1, -1, n.p0 - 1.f), n.p0));
      return true;
    case EwFn::add:
      contrib[0] = gy;
      contrib[1] = gy;
      return true;
    case EwFn::sub:
      contrib[0] = gy;
      contrib[1] = b.ew(EwFn::neg, gy);
      return true;
    case EwFn::mul:
      contrib[0] = b.ew(EwFn::mul, gy, n.inputs[1]);
      contrib[1] = b.ew(EwFn::mul, gy, x);
      return true;
    case EwFn::div: {  // d/da = g / b; d/db = -g a / b^2
      const int bb = n.inputs[1];
      contrib[0] = b.ew(EwFn::div, gy, bb);
      contrib[1] = b.ew(EwFn::neg, b.ew(EwFn::div, b.ew(EwFn::mul, gy, x), b.ew(EwFn::mul, bb, bb)));
      return true;
    }
    case EwFn::minimum:
    case EwFn::maximum: {  // the selected operand gets g; a tie splits it evenly
      const int other = n.inputs[1];
      const EwFn wins = n.fn == EwFn::maximum ? EwFn::gt : EwFn::lt;
      const int tie = b.ew(EwFn::eq, x, other);
      const int half = b.mul_s(gy, 0.5f);
      contrib[0] = b.select(b.ew(wins, x, other), gy, b.keep_where(tie, half));
      contrib[1] = b.select(b.ew(wins, other, x), gy, b.keep_where(tie, half));
      return true;
    }
    case EwFn::where:  // the condition is not differentiable
      contrib[1] = b.keep_where(x, gy);
      contrib[2] = b.select(x, b.scalar(0.f), gy);
      return true;
    case EwFn::gt:
    case EwFn::lt:
    case EwFn::ge:
    case EwFn::le:
    case EwFn::eq:
    case EwFn::ne: return true;  // boolean results: never on a differentiated path
  }
  return false;
}

/// Backward of a reduction: the contribution to its input.
constexpr int reduce_backward(GradBuilder& b, int id, int gy) {
  const Node n = b.node(id);
  const int x = n.inputs[0];
  const Shape xs = b.shape(x);
  Shape kept = xs;  // the result's shape with keepdim
  kept[n.axis] = 1;
  const int gk = b.reshape(gy, kept);
  switch (n.rk) {
    case ReduceKind::sum: return b.expand(gk, xs);
    case ReduceKind::mean: return b.expand(b.ew(EwFn::div, gk, b.scalar(static_cast<float>(xs[n.axis]))), xs);
    case ReduceKind::max:
    case ReduceKind::min: {  // split evenly among the elements equal to the result (torch.amax)
      const int hit = b.ew(EwFn::eq, x, b.reshape(id, kept));
      const int count = b.reduce_sum(b.keep_where(hit, b.scalar(1.f)), n.axis, true);
      return b.keep_where(hit, b.ew(EwFn::div, gk, count));
    }
  }
  return -1;
}

/// Backward of matmul (and linear, trans_b): contributions to a and b in their own shapes.
constexpr void matmul_backward(GradBuilder& b, int id, int gy, int* contrib) {
  const Node n = b.node(id);
  const int a = n.inputs[0], bm = n.inputs[1];
  const Shape as = b.shape(a), bs = b.shape(bm), cs = b.shape(id);
  int a2 = a, g2 = gy;
  if (as.rank() == 1) {  // vector a: [K] -> [1, K], the result gets its M = 1 back
    a2 = b.reshape(a, Shape{1, as[0]});
    Shape gs;
    for (int d = 0; d + 1 < cs.rank(); ++d) gs.push_back(cs[d]);
    gs.push_back(1);
    gs.push_back(cs.back());
    g2 = b.reshape(gy, gs);
  }
  // C = A op(B): dA = dC op(B)^T, which is matmul(dC, B) when op is the transpose and
  // linear(dC, B) otherwise; dB = A^T dC, or (dC^T A) for linear's B^T.
  const int da = b.matmul(g2, bm, !n.trans_b);
  const int db = n.trans_b ? b.matmul(b.transpose_last(g2), a2, false) : b.matmul(b.transpose_last(a2), g2, false);
  contrib[0] = as.rank() == 1 ? b.reshape(b.sum_to(da, b.ok() ? b.shape(a2) : as), as) : b.sum_to(da, as);
  contrib[1] = b.sum_to(db, bs);
}

}  // namespace detail

/// Appends to `g` the gradients of the scalar `loss` with respect to nodes wrt[0..count).
/// grads[i] receives the id of d loss / d wrt[i] (same shape as wrt[i]; zeros when the loss does
/// not depend on it). On error returns the status (also recorded in g) and leaves grads unset.
constexpr Status append_gradients(Graph& g, int loss, const int* wrt, int count, int* grads) {
  if (!g.ok()) return g.status();
  if (loss < 0 || loss >= g.size()) {
    g.set_error(Status(Errc::invalid_argument) << "grad: the loss is not a node of this graph");
    return g.status();
  }
  {
    const Node& l = g[loss];
    if (l.shape.numel() != 1 || !detail::carries_gradient(l)) {
      Status s(Errc::invalid_argument);
      s << "grad: the loss must be a single f32 value; got ";
      if (l.op == Op::elementwise) s << ewfn_name(l.fn);
      else s << op_name(l.op);
      g.set_error(s << " of shape " << l.shape << " and dtype " << l.dtype);
      return g.status();
    }
  }
  if (count > kMaxGraphIO) {
    g.set_error(Status(Errc::capacity_exceeded) << "grad: more than " << kMaxGraphIO << " tensors requested");
    return g.status();
  }
  const int end = loss + 1;  // nothing after the loss contributes to it
  bool wanted[kMaxNodes]{};
  for (int i = 0; i < count; ++i) {
    const int w = wrt[i];
    if (w < 0 || w >= g.size()) {
      g.set_error(Status(Errc::invalid_argument) << "grad: tensor " << i << " is not a node of this graph");
      return g.status();
    }
    if (!detail::carries_gradient(g[w])) {
      Status s(Errc::dtype_mismatch);
      s << "grad: tensor " << i << " (";
      if (g[w].op == Op::elementwise) s << ewfn_name(g[w].fn);
      else s << op_name(g[w].op);
      g.set_error(s << ", shape " << g[w].shape << ") has dtype " << g[w].dtype << "; only f32 values have gradients");
      return g.status();
    }
    wanted[w] = true;
  }
  // Nodes whose value depends (differentiably or not) on a requested node...
  bool from_wrt[kMaxNodes]{};
  for (int i = 0; i < end; ++i) {
    from_wrt[i] = wanted[i];
    for (int k = 0; k < g[i].num_inputs && !from_wrt[i]; ++k) from_wrt[i] = from_wrt[g[i].inputs[k]];
  }
  int adjoint[kMaxNodes]{};
  for (int i = 0; i < kMaxNodes; ++i) adjoint[i] = -1;
  detail::GradBuilder b(g);
  // d loss / d loss = 1, in the loss's shape ([] or [1, ...]).
  adjoint[loss] = b.expand(b.scalar(1.f), g[loss].shape);

  // ...visited from the loss backwards: ids only grow, so every consumer of a node is done
  // before the node itself (appended backward nodes have ids >= end and are never visited).
  for (int id = loss; id >= 0 && b.ok(); --id) {
    const int gy = adjoint[id];
    if (gy < 0 || !from_wrt[id]) continue;
    const Node n = g[id];
    if (n.is_leaf()) continue;
    // Inputs that need a contribution: differentiable values that depend on a requested node.
    bool need[kMaxInputs]{};
    bool any = false;
    for (int k = 0; k < n.num_inputs; ++k) {
      const int in = n.inputs[k];
      need[k] = from_wrt[in] && detail::carries_gradient(g[in]);
      any = any || need[k];
    }
    if (!any || !detail::carries_gradient(n)) continue;  // e.g. a comparison of requested values
    int contrib[kMaxInputs]{};
    for (int k = 0; k < kMaxInputs; ++k) contrib[k] = -1;
    switch (n.op) {
      case Op::elementwise: {
        int c[3] = {-1, -1, -1};
        if (!detail::elementwise_backward(b, id, gy, c)) {
          g.set_error(detail::no_rule(g, id));
          return g.status();
        }
        for (int k = 0; k < n.num_inputs; ++k)
          if (need[k] && c[k] >= 0) contrib[k] = b.sum_to(c[k], g[n.inputs[k]].shape);
        break;
      }
      case Op::reduce: contrib[0] = detail::reduce_backward(b, id, gy); break;
      case Op::softmax: {  // y (g - sum(g y))
        const int gyy = b.ew(EwFn::mul, gy, id);
        contrib[0] = b.ew(EwFn::mul, id, b.ew(EwFn::sub, gy, b.reduce_sum(gyy, n.axis, true)));
        break;
      }
      case Op::log_softmax:  // g - exp(y) sum(g)
        contrib[0] = b.ew(EwFn::sub, gy, b.ew(EwFn::mul, b.ew(EwFn::exp, id), b.reduce_sum(gy, n.axis, true)));
        break;
      case Op::matmul: detail::matmul_backward(b, id, gy, contrib); break;
      case Op::reshape: contrib[0] = b.reshape(gy, g[n.inputs[0]].shape); break;
      case Op::permute: {
        std::int8_t inverse[kMaxRank]{};
        for (int d = 0; d < n.shape.rank(); ++d) inverse[n.perm[d]] = static_cast<std::int8_t>(d);
        contrib[0] = b.permute(gy, inverse);
        break;
      }
      case Op::slice: contrib[0] = b.pad(gy, n.axis, n.start, n.step, g[n.inputs[0]].shape[n.axis]); break;
      case Op::unslice:
        contrib[0] = b.slice(gy, n.axis, n.start, g[n.inputs[0]].shape[n.axis], n.step);
        break;
      case Op::expand: contrib[0] = b.sum_to(gy, g[n.inputs[0]].shape); break;
      case Op::concat: {
        index_t at = 0;
        for (int k = 0; k < n.num_inputs; ++k) {
          const index_t len = g[n.inputs[k]].shape[n.axis];
          if (need[k]) contrib[k] = b.slice(gy, n.axis, at, len, 1);
          at += len;
        }
        break;
      }
      case Op::input:
      case Op::constant:
      case Op::parameter:
      case Op::scalar: break;  // leaves (skipped above)
      case Op::conv2d:
      case Op::pool2d:
      case Op::pad:
      case Op::upsample: detail::cnn_backward(b, id, gy, need, contrib); break;  // autodiff_cnn.hpp
      // No backward rule. copy is a planner-level op: neither the front-end nor any pass creates
      // it in this release, and autodiff runs on traced graphs; a new op lands here until it
      // gets a rule (the switch has no default, so the compiler lists every op to decide on).
      case Op::copy:
      // int8 ops: inference only (quantisation-aware training is not in this release).
      case Op::quantize:
      case Op::dequantize:
      case Op::qlinear:
      case Op::qconv2d:
      case Op::qpool2d:
      case Op::qadd:
      case Op::qsoftmax:
      case Op::qmul:
      case Op::qlogistic:
      case Op::qtanh:
      case Op::qhard_swish:
      case Op::qmean:
      case Op::qpad:
      case Op::qslice:
      case Op::qconcat: g.set_error(detail::no_rule(g, id)); return g.status();
    }
    for (int k = 0; k < n.num_inputs; ++k)
      if (need[k]) detail::accumulate(b, adjoint, n.inputs[k], contrib[k]);
  }
  if (!b.ok()) return g.status();
  for (int i = 0; i < count; ++i) {
    const int w = wrt[i];
    grads[i] = adjoint[w] >= 0 ? adjoint[w] : b.zeros(g[w].shape);
    if (b.ok() && g[grads[i]].shape != g[w].shape) {
      g.set_error(Status(Errc::invalid_argument) << "autodiff: gradient of shape " << g[grads[i]].shape << " for "
                                                 << g[w].shape << " (internal error)");
      return g.status();
    }
  }
  return g.status();
}

}  // namespace kiln::passes
