// kiln/passes/grad_builder.hpp — appends the nodes of a backward pass (autodiff's node factory).
#pragma once

#include "../ir/graph.hpp"

namespace kiln::passes::detail {

/// Appends backward nodes; every helper returns the new node's id, or -1 once the graph has an
/// error (the first error sticks, so a chain of helpers needs no checks in between).
class GradBuilder {
 public:
  constexpr explicit GradBuilder(Graph& g) : g_(g) {}

  constexpr const Node& node(int id) const { return g_.node(id); }
  constexpr const Shape& shape(int id) const { return g_.node(id).shape; }
  constexpr bool ok() const { return g_.ok(); }

  constexpr int scalar(float v) {
    Node n;
    n.op = Op::scalar;
    n.p0 = v;
    return g_.add(n);
  }
  constexpr int ew(EwFn fn, int a, int b = -1, int c = -1, float p0 = 0.f, float p1 = 0.f) {
    Node n;
    n.op = Op::elementwise;
    n.fn = fn;
    n.p0 = p0;
    n.p1 = p1;
    n.inputs[0] = a;
    n.inputs[1] = b;
    n.inputs[2] = c;
    n.num_inputs = ewfn_arity(fn);
    return add(n);
  }
  constexpr int mul_s(int a, float v) { return ew(EwFn::mul, a, scalar(v)); }
  constexpr int add_s(int a, float v) { return ew(EwFn::add, a, scalar(v)); }
  constexpr int rsub_s(float v, int a) { return ew(EwFn::sub, scalar(v), a); }  // v - a
  constexpr int mask(EwFn cmp, int a, float v) { return ew(cmp, a, scalar(v)); }
  constexpr int select(int cond, int a, int b) { return ew(EwFn::where, cond, a, b); }
  /// where(cond, a, 0)
  constexpr int keep_where(int cond, int a) { return select(cond, a, scalar(0.f)); }

  constexpr int reduce_sum(int a, int axis, bool keepdim) {
    Node n;
    n.op = Op::reduce;
    n.rk = ReduceKind::sum;
    n.axis = axis;
    n.keepdim = keepdim;
    n.inputs[0] = a;
    n.num_inputs = 1;
    return add(n);
  }
  constexpr int reshape(int a, const Shape& s) {
    if (a >= 0 && shape(a) == s) return a;
    Node n;
    n.op = Op::reshape;
    n.shape = s;
    n.inputs[0] = a;
    n.num_inputs = 1;
    return add(n);
  }
  constexpr int expand(int a, const Shape& s) {
    if (a >= 0 && shape(a) == s) return a;
    Node n;
    n.op = Op::expand;
    n.shape = s;
    n.inputs[0] = a;
    n.num_inputs = 1;
    return add(n);
  }
  constexpr int zeros(const Shape& s) { return expand(scalar(0.f), s); }
  constexpr int permute(int a, const std::int8_t* perm) {
    Node n;
    n.op = Op::permute;
    for (int d = 0; d < kMaxRank; ++d) n.perm[d] = perm[d];
    n.inputs[0] = a;
    n.num_inputs = 1;
    return add(n);
  }
  /// Swaps the last two dimensions.
  constexpr int transpose_last(int a) {
    if (a < 0) return -1;
    std::int8_t perm[kMaxRank]{};
    const int r = shape(a).rank();
    for (int d = 0; d < kMaxRank; ++d) perm[d] = static_cast<std::int8_t>(d);
    perm[r - 2] = static_cast<std::int8_t>(r - 1);
    perm[r - 1] = static_cast<std::int8_t>(r - 2);
    return permute(a, perm);
  }
  constexpr int slice(int a, int axis, index_t start, index_t count, index_t step) {
    Node n;
    n.op = Op::slice;
    n.axis = axis;
    n.start = start;
    n.step = step;
    n.shape = Shape{count};
    n.inputs[0] = a;
    n.num_inputs = 1;
    return add(n);
  }
  constexpr int pad(int a, int axis, index_t start, index_t step, index_t extent) {
    Node n;
    n.op = Op::unslice;
    n.axis = axis;
    n.start = start;
    n.step = step;
    n.shape = Shape{extent};
    n.inputs[0] = a;
    n.num_inputs = 1;
    return add(n);
  }
  /// Records `s` as the graph's error (the first error sticks); returns -1 like a failed helper.
  constexpr int fail(const Status& s) {
    if (g_.ok()) g_.set_error(s);
    return -1;
  }
  /// Appends any node (its inputs checked like every helper's).
  constexpr int append(const Node& n) { return add(n); }
  constexpr int matmul(int a, int b, bool trans_b) {
    Node n;
    n.op = Op::matmul;
    n.trans_b = trans_b;
    n.inputs[0] = a;
    n.inputs[1] = b;
    n.num_inputs = 2;
    return add(n);
  }

  /// Sums `a` (shape broadcast from `target` by NumPy rules) back to `target`: the gradient of
  /// an operand that was broadcast.
  constexpr int sum_to(int a, const Shape& target) {
    if (a < 0) return -1;
    const Shape s = shape(a);
    if (s == target) return a;
    const int lead = s.rank() - target.rank();
    int v = a;
    for (int d = 0; d < s.rank(); ++d) {
      const bool broadcast = d < lead || (target[d - lead] == 1 && s[d] != 1);
      if (broadcast) v = reduce_sum(v, d, true);
    }
    return reshape(v, target);
  }

 private:
  constexpr int add(const Node& n) {
    for (int k = 0; k < n.num_inputs; ++k)
      if (n.inputs[k] < 0) {
        if (g_.ok()) g_.set_error(Status(Errc::invalid_argument) << "autodiff: missing operand (internal error)");
        return -1;
      }
    return g_.add(n);
  }
  Graph& g_;
};

}  // namespace kiln::passes::detail
