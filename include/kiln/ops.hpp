// kiln/ops.hpp — the op front-end: one function per op, for real and symbolic tensors.
//
// Each op describes itself as a Node and hands it to apply(): with a SymTensor
// among the arguments the node is appended to the traced graph (concrete
// tensors become constants, numbers become scalars); otherwise it is type
// checked by the same rules and run at once by the eager executor. An op's
// whole front-end story is therefore its Node, its rules in ir/infer.hpp and
// its kernel.
//
// The same functions trace in a constant expression (trace/static_trace.hpp: static shapes,
// weights as TensorViews over static data). Firmware builds (KILN_NO_HEAP) have no eager path:
// there every op is symbolic.
#pragma once

#include <initializer_list>
#include <type_traits>

#include "core/tensor.hpp"
#include "trace/static_error.hpp"
#include "trace/symbolic.hpp"
#ifndef KILN_NO_HEAP
#include <vector>

#include "runtime/engine.hpp"
#include "trace/parameter.hpp"
#endif

namespace kiln {

namespace detail {

template <class T> struct is_sym : std::false_type {};
template <> struct is_sym<SymTensor> : std::true_type {};
template <class T> struct is_concrete : std::false_type {};
template <class U> struct is_concrete<TensorView<U>> : std::true_type {};
#ifndef KILN_NO_HEAP
template <class U> struct is_concrete<Tensor<U>> : std::true_type {};
#endif
template <class T> using bare = std::remove_cv_t<std::remove_reference_t<T>>;
template <class T> inline constexpr bool is_sym_v = is_sym<bare<T>>::value;
template <class T> inline constexpr bool is_concrete_v = is_concrete<bare<T>>::value;
/// A kiln::Parameter: concrete data, but traced as an updatable leaf (never a model input: a
/// Parameter argument is guarded by identity and read through its pointer).
#ifndef KILN_NO_HEAP
template <class T> inline constexpr bool is_param_v = std::is_same_v<bare<T>, Parameter>;
#else
template <class T> inline constexpr bool is_param_v = false;  // Parameters own memory: not in firmware
#endif
template <class T> inline constexpr bool is_tensor_v = is_sym_v<T> || is_concrete_v<T> || is_param_v<T>;
template <class T> inline constexpr bool is_number_v = std::is_arithmetic_v<bare<T>> && !std::is_same_v<bare<T>, bool>;
template <class T> inline constexpr bool is_operand_v = is_tensor_v<T> || is_number_v<T>;

/// Element type of a concrete tensor argument (float for numbers and symbolic tensors).
template <class T, class = void> struct elem { using type = float; };
#ifndef KILN_NO_HEAP
template <class U> struct elem<Tensor<U>> { using type = U; };
#endif
template <class U> struct elem<TensorView<U>> { using type = std::remove_const_t<U>; };
template <class T> using elem_t = typename elem<bare<T>>::type;

/// Result of an op: SymTensor when tracing, Tensor<Out> when eager.
#ifndef KILN_NO_HEAP
template <class Out, class... Args>
using result_t = std::conditional_t<(is_sym_v<Args> || ...), SymTensor, Tensor<Out>>;
#else
template <class Out, class... Args>
using result_t = SymTensor;
template <class T>
inline constexpr bool always_false_v = false;
#endif

/// The recording an op's symbolic arguments belong to: the graph, and its Tracer when the trace
/// happens at run time (none in a compile-time trace).
struct Trace {
  Graph* graph = nullptr;
  Tracer* tracer = nullptr;
};
constexpr Trace trace_of() { return {}; }
template <class A, class... Rest>
constexpr Trace trace_of(const A& a, const Rest&... rest) {
  if constexpr (is_sym_v<A>) {
    if (a.graph()) return Trace{a.graph(), a.tracer()};
  }
  return trace_of(rest...);
}

template <class T> struct is_owning : std::false_type {};
#ifndef KILN_NO_HEAP
template <class U> struct is_owning<Tensor<U>> : std::true_type {};
#endif

/// The node id standing for `a` in the trace (appending a constant or scalar when needed).
template <class A>
constexpr int node_in(const Trace& t, const A& a) {
  Graph& g = *t.graph;
  if constexpr (is_sym_v<A>) {
    if (a.graph() != t.graph) {
      g.set_error(Status(Errc::invalid_argument) << "a symbolic tensor from another trace was used");
      return -1;
    }
    return a.id();
  } else if constexpr (is_param_v<A>) {
    if (a.data() == nullptr) {
      g.set_error(Status(Errc::invalid_argument) << "an empty parameter was used");
      return -1;
    }
    const int found = g.find_parameter(a.data());  // by address: equal contents are not the same
    if (found >= 0) return found;
    Node n;
    n.op = Op::parameter;
    n.shape = a.shape();
    n.data = a.data();
    return g.add(n);
  } else if constexpr (is_concrete_v<A>) {
    constexpr DType dt = dtype_of_v<elem_t<A>>;
    if (a.data() == nullptr) {
      g.set_error(Status(Errc::invalid_argument) << "an empty tensor (shape " << a.shape() << ") was captured");
      return -1;
    }
    const void* data = a.data();
#ifndef KILN_NO_HEAP
    if constexpr (is_owning<bare<A>>::value) {  // possibly a temporary: capture a copy
      if (!t.tracer) {
        g.set_error(Status(Errc::invalid_argument)
                    << "an owning Tensor " << a.shape()
                    << " cannot be captured by a compile-time trace: use a TensorView over static data");
        return -1;
      }
      data = t.tracer->keep(data, static_cast<std::size_t>(a.size()) * sizeof(elem_t<A>));
    }
#endif
    const int found = g.find_constant(data, a.shape(), dt);
    if (found >= 0) return found;
    Node n;
    n.op = Op::constant;
    n.dtype = dt;
    n.shape = a.shape();
    n.data = data;
    if constexpr (dt == DType::f32) {  // typed too: a constant expression cannot read through void*
#ifndef KILN_NO_HEAP
      if constexpr (is_owning<bare<A>>::value) n.f32 = static_cast<const float*>(data);
      else
#endif
        n.f32 = a.data();
    }
    return g.add(n);
  } else {
    Node n;
    n.op = Op::scalar;
    n.p0 = static_cast<float>(a);
    return g.add(n);
  }
}

#ifndef KILN_NO_HEAP
/// node_in for a run-time trace (the Tracer that owns the graph).
template <class A>
int node_in(Tracer& t, const A& a) {
  return node_in(Trace{&t.graph, &t}, a);
}

struct EagerArg {
  const void* data = nullptr;
  Shape shape;
  DType dtype = DType::f32;
  float scalar = 0.f;
};

template <class A>
EagerArg eager_arg(const A& a) {
  EagerArg e;
  if constexpr (is_param_v<A>) {
    e.data = a.data();
    e.shape = a.shape();
  } else if constexpr (is_concrete_v<A>) {
    e.data = a.data();
    e.shape = a.shape();
    e.dtype = dtype_of_v<elem_t<A>>;
  } else {
    e.scalar = static_cast<float>(a);
  }
  return e;
}

/// Runs node `n` at once on dense inputs (the eager path); an empty input (the result of an
/// earlier failed op, already reported) gives an empty result.
template <class Out>
Tensor<Out> run_eager(Node n, const EagerArg* in, bool any_empty) {
  if (any_empty) return Tensor<Out>();
  const void* ptrs[kMaxInputs]{};
  Shape shapes[kMaxInputs];
  DType dtypes[kMaxInputs]{};
  for (int k = 0; k < n.num_inputs; ++k) {
    ptrs[k] = in[k].data ? in[k].data : static_cast<const void*>(&in[k].scalar);
    shapes[k] = in[k].shape;
    dtypes[k] = in[k].dtype;
  }
  const Status s = infer_node(n, shapes, dtypes);
  if (!s.ok()) {
    fail(s);
    return Tensor<Out>();
  }
  if (n.dtype != dtype_of_v<Out>) {
    fail(Status(Errc::dtype_mismatch) << op_name(n.op) << ": result dtype " << n.dtype << " is not the requested "
                                      << dtype_of_v<Out>);
    return Tensor<Out>();
  }
  Tensor<Out> out(n.shape);
  const std::size_t ws = engine::node_workspace_floats(n, shapes);
  std::vector<float> workspace(ws ? ws + kAlignment / sizeof(float) : 0);
  float* wsp = workspace.empty() ? nullptr : align_up(workspace.data());
  engine::run_node(n, ptrs, shapes, dtypes, out.data(), wsp);
  return out;
}

template <class A>
bool is_empty_tensor(const A& a) {
  if constexpr (is_concrete_v<A> || is_param_v<A>) return a.data() == nullptr;
  else return false;
}
#endif  // KILN_NO_HEAP

/// Appends `n` (its inputs already resolved) to the trace. A compile-time trace (no Tracer) stops
/// at the first op that fails, so the compiler's diagnostic names it (trace/static_error.hpp); a
/// run-time trace collects the error and compile() reports it after the trace.
constexpr SymTensor recorded(const Trace& t, const Node& n) {
  bool inputs_ok = true;
  for (int i = 0; i < n.num_inputs; ++i) inputs_ok = inputs_ok && n.inputs[i] >= 0;
  const int id = inputs_ok ? t.graph->add(n) : -1;
  if (!t.tracer) report_static_trace_error(t.graph->status());
  return SymTensor(t.graph, t.tracer, id);
}

/// Records or runs node `n` on `args`.
template <class Out, class... Args>
constexpr result_t<Out, Args...> apply(Node n, const Args&... args) {
  static_assert(sizeof...(Args) <= kMaxInputs, "kiln: too many op inputs");
  n.num_inputs = static_cast<int>(sizeof...(Args));
  if constexpr ((is_sym_v<Args> || ...)) {
    const Trace t = trace_of(args...);
    if (!t.graph) return SymTensor();
    int k = 0;
    ((n.inputs[k++] = node_in(t, args)), ...);
    return recorded(t, n);
  } else {
#ifndef KILN_NO_HEAP
    const EagerArg in[] = {eager_arg(args)...};
    return run_eager<Out>(n, in, (is_empty_tensor(args) || ...));
#else
    static_assert(always_false_v<Out>, "kiln: firmware builds (KILN_NO_HEAP) have no eager ops; trace the model "
                                       "with kiln::plan (trace/static_trace.hpp)");
    return SymTensor();
#endif
  }
}

template <class... Args>
using enable_op = std::enable_if_t<(is_operand_v<Args> && ...) && (is_tensor_v<Args> || ...), int>;

constexpr Node ew_node(EwFn fn, float p0 = 0.f, float p1 = 0.f) {
  Node n;
  n.op = Op::elementwise;
  n.fn = fn;
  n.p0 = p0;
  n.p1 = p1;
  return n;
}

}  // namespace detail

// ---- elementwise ------------------------------------------------------------------------------

#define KILN_UNARY_OP(name, fn)                                       \
  template <class A, detail::enable_op<A> = 0>                        \
  constexpr auto name(const A& a) {                                             \
    return detail::apply<float>(detail::ew_node(EwFn::fn), a);        \
  }
KILN_UNARY_OP(neg, neg)
KILN_UNARY_OP(abs, abs)
KILN_UNARY_OP(exp, exp)
KILN_UNARY_OP(log, log)
KILN_UNARY_OP(sqrt, sqrt)
KILN_UNARY_OP(rsqrt, rsqrt)
KILN_UNARY_OP(tanh, tanh)
KILN_UNARY_OP(sigmoid, sigmoid)
KILN_UNARY_OP(relu, relu)
KILN_UNARY_OP(relu6, relu6)
KILN_UNARY_OP(silu, silu)
KILN_UNARY_OP(round, round)        // ties to even; no gradient
KILN_UNARY_OP(floor, floor)        // no gradient
KILN_UNARY_OP(round_f16, round_f16)    // to the nearest binary16 value: emulates f16 storage
KILN_UNARY_OP(round_bf16, round_bf16)  // to the nearest bfloat16 value
KILN_UNARY_OP(detach, detach)      // same values, no gradient (straight-through estimators)
#undef KILN_UNARY_OP

enum class GeluApprox { none, tanh };

template <class A, detail::enable_op<A> = 0>
constexpr auto gelu(const A& a, GeluApprox approx = GeluApprox::none) {
  return detail::apply<float>(detail::ew_node(approx == GeluApprox::tanh ? EwFn::gelu_tanh : EwFn::gelu_erf), a);
}
template <class A, detail::enable_op<A> = 0>
constexpr auto leaky_relu(const A& a, float negative_slope = 0.01f) {
  return detail::apply<float>(detail::ew_node(EwFn::leaky_relu, negative_slope), a);
}
template <class A, detail::enable_op<A> = 0>
constexpr auto clamp(const A& a, float lo, float hi) {
  return detail::apply<float>(detail::ew_node(EwFn::clamp, lo, hi), a);
}
template <class A, detail::enable_op<A> = 0>
constexpr auto pow(const A& a, float exponent) {
  return detail::apply<float>(detail::ew_node(EwFn::pow_scalar, exponent), a);
}
template <class A, detail::enable_op<A> = 0>
constexpr auto operator-(const A& a) {
  return neg(a);
}

#define KILN_BINARY_OP(name, fn, Out)                                 \
  template <class A, class B, detail::enable_op<A, B> = 0>            \
  constexpr auto name(const A& a, const B& b) {                                 \
    return detail::apply<Out>(detail::ew_node(EwFn::fn), a, b);       \
  }
KILN_BINARY_OP(operator+, add, float)
KILN_BINARY_OP(operator-, sub, float)
KILN_BINARY_OP(operator*, mul, float)
KILN_BINARY_OP(operator/, div, float)
KILN_BINARY_OP(add, add, float)
KILN_BINARY_OP(sub, sub, float)
KILN_BINARY_OP(mul, mul, float)
KILN_BINARY_OP(div, div, float)
KILN_BINARY_OP(minimum, minimum, float)
KILN_BINARY_OP(maximum, maximum, float)
KILN_BINARY_OP(gt, gt, bool)
KILN_BINARY_OP(lt, lt, bool)
KILN_BINARY_OP(ge, ge, bool)
KILN_BINARY_OP(le, le, bool)
KILN_BINARY_OP(eq, eq, bool)
KILN_BINARY_OP(ne, ne, bool)
KILN_BINARY_OP(operator>, gt, bool)
KILN_BINARY_OP(operator<, lt, bool)
KILN_BINARY_OP(operator>=, ge, bool)
KILN_BINARY_OP(operator<=, le, bool)
#undef KILN_BINARY_OP

/// where(cond, a, b): a where cond is true (non-zero), else b; all three broadcast.
template <class C, class A, class B, detail::enable_op<C, A, B> = 0>
constexpr auto where(const C& cond, const A& a, const B& b) {
  return detail::apply<float>(detail::ew_node(EwFn::where), cond, a, b);
}

// ---- reductions -------------------------------------------------------------------------------

namespace detail {
constexpr Node reduce_node(ReduceKind k, int axis, bool keepdim) {
  Node n;
  n.op = Op::reduce;
  n.rk = k;
  n.axis = axis;
  n.keepdim = keepdim;
  return n;
}
}  // namespace detail

#define KILN_REDUCE_OP(name, kind)                                                  \
  template <class A, std::enable_if_t<detail::is_tensor_v<A>, int> = 0>             \
  constexpr auto name(const A& a, int axis, bool keepdim = false) {                           \
    return detail::apply<float>(detail::reduce_node(ReduceKind::kind, axis, keepdim), a); \
  }
KILN_REDUCE_OP(sum, sum)
KILN_REDUCE_OP(mean, mean)
KILN_REDUCE_OP(max, max)
KILN_REDUCE_OP(min, min)
#undef KILN_REDUCE_OP

template <class A, std::enable_if_t<detail::is_tensor_v<A>, int> = 0>
constexpr auto softmax(const A& a, int axis = -1) {
  Node n;
  n.op = Op::softmax;
  n.axis = axis;
  return detail::apply<float>(n, a);
}
template <class A, std::enable_if_t<detail::is_tensor_v<A>, int> = 0>
constexpr auto log_softmax(const A& a, int axis = -1) {
  Node n;
  n.op = Op::log_softmax;
  n.axis = axis;
  return detail::apply<float>(n, a);
}

// ---- matmul -----------------------------------------------------------------------------------

/// a @ b with batch dimensions broadcast (a: [..., M, K] or [K]; b: [..., K, N]).
template <class A, class B, std::enable_if_t<detail::is_tensor_v<A> && detail::is_tensor_v<B>, int> = 0>
constexpr auto matmul(const A& a, const B& b) {
  Node n;
  n.op = Op::matmul;
  return detail::apply<float>(n, a, b);
}
/// x @ weight^T, weight [out, in] (torch.nn.Linear's layout).
template <class X, class W, std::enable_if_t<detail::is_tensor_v<X> && detail::is_tensor_v<W>, int> = 0>
constexpr auto linear(const X& x, const W& weight) {
  Node n;
  n.op = Op::matmul;
  n.trans_b = true;
  return detail::apply<float>(n, x, weight);
}
/// x @ weight^T + bias.
template <class X, class W, class Bi,
          std::enable_if_t<detail::is_tensor_v<X> && detail::is_tensor_v<W> && detail::is_tensor_v<Bi>, int> = 0>
constexpr auto linear(const X& x, const W& weight, const Bi& bias) {
  return linear(x, weight) + bias;
}

// ---- shape ops --------------------------------------------------------------------------------

/// Same elements in a new shape; one extent may be -1. A view when the input is contiguous.
template <class A, std::enable_if_t<detail::is_tensor_v<A>, int> = 0>
constexpr auto reshape(const A& a, const Shape& shape) {
  Node n;
  n.op = Op::reshape;
  n.shape = shape;
  return detail::apply<detail::elem_t<A>>(n, a);
}
/// Merges dimensions start..end (inclusive, negative counts from the back) into one.
template <class A, std::enable_if_t<detail::is_tensor_v<A>, int> = 0>
constexpr auto flatten(const A& a, int start = 0, int end = -1) {
  const Shape& s = a.shape();
  const int r = s.rank();
  const int b = normalize_axis(start, r), e = normalize_axis(end, r);
  if (r == 0) return reshape(a, Shape{1});
  if (b < 0 || e < 0 || b > e) return reshape(a, Shape::of_rank(kMaxRank + 1));  // reports a bad shape
  Shape t;
  for (int i = 0; i < b; ++i) t.push_back(s[i]);
  index_t m = 1;
  for (int i = b; i <= e; ++i) m *= s[i];
  t.push_back(m);
  for (int i = e + 1; i < r; ++i) t.push_back(s[i]);
  return reshape(a, t);
}
/// Reorders dimensions: result dim i is input dim perm[i]. A view (no copy).
template <class A, std::enable_if_t<detail::is_tensor_v<A>, int> = 0>
constexpr auto permute(const A& a, std::initializer_list<int> perm) {
  Node n;
  n.op = Op::permute;
  int i = 0;
  for (int p : perm) {
    if (i < kMaxRank) n.perm[i] = static_cast<std::int8_t>(p);
    ++i;
  }
  if (i != a.shape().rank())  // a wrong-length permutation is reported by the type rules
    for (int k = 0; k < kMaxRank; ++k) n.perm[k] = -1;
  return detail::apply<detail::elem_t<A>>(n, a);
}
/// Swaps two dimensions (negative counts from the back). A view (no copy).
template <class A, std::enable_if_t<detail::is_tensor_v<A>, int> = 0>
constexpr auto transpose(const A& a, int d0 = -2, int d1 = -1) {
  Node n;
  n.op = Op::permute;
  const int r = a.shape().rank();
  const int x = normalize_axis(d0, r), y = normalize_axis(d1, r);
  for (int k = 0; k < kMaxRank; ++k) n.perm[k] = static_cast<std::int8_t>(k);
  if (x < 0 || y < 0) n.perm[0] = -1;
  else {
    n.perm[x] = static_cast<std::int8_t>(y);
    n.perm[y] = static_cast<std::int8_t>(x);
  }
  return detail::apply<detail::elem_t<A>>(n, a);
}
/// Elements [start, stop) with `step` along `axis`, Python-style: negative indices count from the
/// end and out-of-range bounds are clamped. A view (no copy).
template <class A, std::enable_if_t<detail::is_tensor_v<A>, int> = 0>
constexpr auto slice(const A& a, int axis, index_t start, index_t stop, index_t step = 1) {
  Node n;
  n.op = Op::slice;
  n.axis = axis;
  n.step = step;
  const int ax = normalize_axis(axis, a.shape().rank());
  index_t count = -1;
  if (ax >= 0 && step >= 1) {
    const index_t len = a.shape()[ax];
    auto norm = [len](index_t v) { return v < 0 ? (v + len < 0 ? 0 : v + len) : (v > len ? len : v); };
    start = norm(start);
    stop = norm(stop);
    count = stop > start ? (stop - start + step - 1) / step : 0;
  }
  n.start = start;
  n.shape = Shape{count};
  return detail::apply<detail::elem_t<A>>(n, a);
}
/// Broadcasts `a` to `shape` (NumPy rules: missing leading dims and extents of 1 are repeated).
/// A view (stride 0 on the repeated dims), like torch.Tensor.expand.
template <class A, std::enable_if_t<detail::is_tensor_v<A>, int> = 0>
constexpr auto expand(const A& a, const Shape& shape) {
  Node n;
  n.op = Op::expand;
  n.shape = shape;
  return detail::apply<detail::elem_t<A>>(n, a);
}
/// Zero padding along `axis`: `before` zeros, the elements of `a`, `after` zeros
/// (torch.nn.functional.pad with constant 0 on one dimension). Negative amounts are errors.
template <class A, std::enable_if_t<detail::is_tensor_v<A>, int> = 0>
constexpr auto pad(const A& a, int axis, index_t before, index_t after) {
  Node n;
  n.op = Op::unslice;
  n.axis = axis;
  n.start = before;
  n.step = 1;
  const int ax = normalize_axis(axis, a.shape().rank());
  n.shape = Shape{ax >= 0 && after >= 0 ? before + a.shape()[ax] + after : -1};
  return detail::apply<detail::elem_t<A>>(n, a);
}
/// Joins tensors along `axis` (all other extents must match; 1 to kMaxInputs parts).
template <class T, std::enable_if_t<detail::is_tensor_v<T>, int> = 0>
constexpr auto concat(std::initializer_list<T> parts, int axis = 0) {
  Node n;
  n.op = Op::concat;
  n.axis = axis;
  n.num_inputs = static_cast<int>(parts.size());
  if (n.num_inputs < 1 || n.num_inputs > kMaxInputs) {
    fail(Status(Errc::invalid_argument) << "concat: " << n.num_inputs << " inputs (1 to " << kMaxInputs
                                        << " supported)");
    return detail::result_t<detail::elem_t<T>, T>();
  }
  if constexpr (detail::is_sym_v<T>) {
    const detail::Trace t{parts.begin()->graph(), parts.begin()->tracer()};
    if (!t.graph) return SymTensor();
    int k = 0;
    for (const T& p : parts) n.inputs[k++] = detail::node_in(t, p);
    return detail::recorded(t, n);
  } else {
#ifndef KILN_NO_HEAP
    detail::EagerArg in[kMaxInputs];
    bool any_empty = false;
    int k = 0;
    for (const T& p : parts) {
      in[k++] = detail::eager_arg(p);
      any_empty = any_empty || p.data() == nullptr;
    }
    return detail::run_eager<detail::elem_t<T>>(n, in, any_empty);
#else
    static_assert(detail::always_false_v<T>, "kiln: firmware builds (KILN_NO_HEAP) have no eager ops");
    return SymTensor();
#endif
  }
}

}  // namespace kiln
