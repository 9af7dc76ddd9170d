// kiln/passes/simplify.hpp — graph clean-up before fusion: CSE, algebraic identities, DCE.
//
// Each rewrite redirects uses to an earlier node (keeping topological order)
// and leaves the dead node for remove_dead(). All constexpr over fixed arrays.
#pragma once

#include "../ir/graph.hpp"

namespace kiln::passes {

/// Common-subexpression elimination: a node equal to an earlier one is replaced by it.
/// Returns the number of nodes replaced.
constexpr int eliminate_common_subexpressions(Graph& g) {
  int replaced = 0;
  for (int i = 0; i < g.size(); ++i) {
    const Node& n = g.node(i);
    if (n.op == Op::input) continue;
    for (int j = 0; j < i; ++j) {
      if (same_computation(g.node(j), n)) {
        g.replace_uses(i, j);
        ++replaced;
        break;
      }
    }
  }
  return replaced;
}

namespace detail {

constexpr bool is_scalar_value(const Graph& g, int id, float v) {
  return g.node(id).op == Op::scalar && g.node(id).p0 == v;
}

/// x itself can stand for node n: same shape and dtype (no broadcast is lost).
constexpr bool can_forward(const Graph& g, const Node& n, int x) {
  return g.node(x).shape == n.shape && g.node(x).dtype == n.dtype;
}

/// The node that `id` reduces to by an algebraic identity, or id itself.
constexpr int identity_of(const Graph& g, int id) {
  const Node& n = g.node(id);
  if (n.op == Op::elementwise) {
    const int a = n.inputs[0], b = n.num_inputs > 1 ? n.inputs[1] : -1;
    switch (n.fn) {
      case EwFn::identity:
      case EwFn::detach:  // autodiff has run (at trace time): from here on it is the identity
        if (can_forward(g, n, a)) return a;
        break;
      case EwFn::add:
        if (is_scalar_value(g, b, 0.f) && can_forward(g, n, a)) return a;
        if (is_scalar_value(g, a, 0.f) && can_forward(g, n, b)) return b;
        break;
      case EwFn::sub:
        if (is_scalar_value(g, b, 0.f) && can_forward(g, n, a)) return a;
        break;
      case EwFn::mul:
        if (is_scalar_value(g, b, 1.f) && can_forward(g, n, a)) return a;
        if (is_scalar_value(g, a, 1.f) && can_forward(g, n, b)) return b;
        break;
      case EwFn::div:
        if (is_scalar_value(g, b, 1.f) && can_forward(g, n, a)) return a;
        break;
      case EwFn::pow_scalar:
        if (n.p0 == 1.f && can_forward(g, n, a)) return a;
        break;
      case EwFn::neg: {
        const Node& in = g.node(a);
        if (in.op == Op::elementwise && in.fn == EwFn::neg && can_forward(g, n, in.inputs[0])) return in.inputs[0];
        break;
      }
      default: break;
    }
  }
  // (as_quantized is a reshape to the same shape that attaches int8 quantisation: not an identity)
  if (n.op == Op::reshape && g.node(n.inputs[0]).shape == n.shape && g.node(n.inputs[0]).quant == n.quant)
    return n.inputs[0];
  if (n.op == Op::permute) {
    bool ident = true;
    for (int i = 0; i < n.shape.rank(); ++i)
      if (n.perm[i] != i) ident = false;
    if (ident) return n.inputs[0];
  }
  return id;
}

}  // namespace detail

/// Algebraic simplification: x*1, x+0, x-0, x/1, pow(x,1), neg(neg x), identity permute and
/// reshape, and composition of consecutive permutes and reshapes. Returns rewrites made.
constexpr int simplify_algebra(Graph& g) {
  int rewrites = 0;
  for (int i = 0; i < g.size(); ++i) {
    Node& n = g.node(i);
    // reshape(reshape(x)) -> reshape(x); permute(permute(x)) -> permute(x) with composed perm.
    if (n.op == Op::reshape && g.node(n.inputs[0]).op == Op::reshape) {
      n.inputs[0] = g.node(n.inputs[0]).inputs[0];
      ++rewrites;
    }
    if (n.op == Op::permute && g.node(n.inputs[0]).op == Op::permute) {
      const Node& inner = g.node(n.inputs[0]);
      std::int8_t composed[kMaxRank]{};
      for (int d = 0; d < n.shape.rank(); ++d) composed[d] = inner.perm[n.perm[d]];
      for (int d = 0; d < kMaxRank; ++d) n.perm[d] = composed[d];
      n.inputs[0] = inner.inputs[0];
      ++rewrites;
    }
    const int to = detail::identity_of(g, i);
    if (to != i) {
      g.replace_uses(i, to);
      ++rewrites;
    }
  }
  return rewrites;
}

/// Constant folding. Every non-leaf node whose inputs are all constants or scalars is computed
/// once by `eval` (the runtime's eager executor) and becomes a constant (or a scalar when it
/// has one element). `eval(const Graph&, int id) -> const float*` returns storage that outlives
/// the graph, or nullptr to leave the node alone. Returns the number of nodes folded.
template <class Evaluator>
constexpr int fold_constants(Graph& g, Evaluator&& eval) {
  int folded = 0;
  int uses[kMaxNodes]{};
  g.count_uses(uses);
  for (int i = 0; i < g.size(); ++i) {
    Node& n = g.node(i);
    if (n.is_leaf() || uses[i] == 0) continue;
    bool all_const = true;
    for (int k = 0; k < n.num_inputs; ++k) {
      const Op op = g.node(n.inputs[k]).op;
      if (op != Op::constant && op != Op::scalar) all_const = false;
    }
    // Views of constants cost nothing at run time and keep weights in place (flash): a
    // transposed weight is better read through strides than copied.
    if (!all_const || n.is_view()) continue;
    const float* value = eval(static_cast<const Graph&>(g), i);
    if (!value) continue;
    const QuantParams quant = n.quant;  // a folded i8 value keeps its quantisation
    if (n.shape.numel() == 1 && n.shape.rank() == 0 && n.dtype == DType::f32) {
      const float v = value[0];
      n = Node();
      n.op = Op::scalar;
      n.p0 = v;
    } else {
      const Shape s = n.shape;
      const DType t = n.dtype;
      n = Node();
      n.op = Op::constant;
      n.shape = s;
      n.dtype = t;
      n.data = value;
      n.quant = quant;
      n.index = -1;  // owned by the compiled model, not a captured tensor
    }
    ++folded;
  }
  return folded;
}

}  // namespace kiln::passes
