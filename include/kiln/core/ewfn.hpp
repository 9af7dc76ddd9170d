// kiln/core/ewfn.hpp — the elementwise functions, shared by the IR and the kernels.
//
// The graph names an elementwise node by its EwFn; the fused kernels interpret
// programs of EwFn applications. Keeping the list here (core) lets both layers
// speak of the same function without knowing each other.
#pragma once

#include <cstdint>

namespace kiln {

enum class EwFn : std::uint8_t {
  // unary: f(a; p0, p1)
  identity,
  neg,
  abs,
  exp,
  log,
  sqrt,
  rsqrt,
  tanh,
  sigmoid,
  relu,
  relu6,
  leaky_relu,  // p0 = negative slope
  gelu_tanh,
  gelu_erf,
  silu,
  clamp,       // p0 = lo, p1 = hi (NaN stays NaN)
  round,       // to the nearest integer, ties to even (torch.round); no gradient
  floor,       // no gradient
  round_f16,   // to the nearest IEEE binary16 value (ties to even, overflow to inf): f16 storage
  round_bf16,  // to the nearest bfloat16 value (ties to even): bf16 storage
  detach,      // the value unchanged, no gradient (torch.detach): straight-through estimators
  pow_scalar,  // p0 = exponent
  // binary: f(a, b)
  add,
  sub,
  mul,
  div,
  minimum,  // NaN if either is NaN (torch.minimum)
  maximum,  // NaN if either is NaN (torch.maximum)
  gt,       // comparisons give 1 or 0 (boolean tensors in the IR)
  lt,
  ge,
  le,
  eq,
  ne,
  // ternary: a != 0 ? b : c
  where,
};

constexpr int ewfn_arity(EwFn f) {
  if (f <= EwFn::pow_scalar) return 1;
  if (f <= EwFn::ne) return 2;
  return 3;
}
constexpr bool ewfn_is_comparison(EwFn f) { return f >= EwFn::gt && f <= EwFn::ne; }

constexpr const char* ewfn_name(EwFn f) {
  switch (f) {
    case EwFn::identity: return "identity";
    case EwFn::neg: return "neg";
    case EwFn::abs: return "abs";
    case EwFn::exp: return "exp";
    case EwFn::log: return "log";
    case EwFn::sqrt: return "sqrt";
    case EwFn::rsqrt: return "rsqrt";
    case EwFn::tanh: return "tanh";
    case EwFn::sigmoid: return "sigmoid";
    case EwFn::relu: return "relu";
    case EwFn::relu6: return "relu6";
    case EwFn::leaky_relu: return "leaky_relu";
    case EwFn::gelu_tanh: return "gelu_tanh";
    case EwFn::gelu_erf: return "gelu_erf";
    case EwFn::silu: return "silu";
    case EwFn::clamp: return "clamp";
    case EwFn::round: return "round";
    case EwFn::floor: return "floor";
    case EwFn::round_f16: return "round_f16";
    case EwFn::round_bf16: return "round_bf16";
    case EwFn::detach: return "detach";
    case EwFn::pow_scalar: return "pow";
    case EwFn::add: return "add";
    case EwFn::sub: return "sub";
    case EwFn::mul: return "mul";
    case EwFn::div: return "div";
    case EwFn::minimum: return "minimum";
    case EwFn::maximum: return "maximum";
    case EwFn::gt: return "gt";
    case EwFn::lt: return "lt";
    case EwFn::ge: return "ge";
    case EwFn::le: return "le";
    case EwFn::eq: return "eq";
    case EwFn::ne: return "ne";
    case EwFn::where: return "where";
  }
  return "?";
}

/// Reductions over one axis.
enum class ReduceKind : std::uint8_t { sum, mean, max, min };

constexpr const char* reduce_name(ReduceKind k) {
  switch (k) {
    case ReduceKind::sum: return "sum";
    case ReduceKind::mean: return "mean";
    case ReduceKind::max: return "max";
    case ReduceKind::min: return "min";
  }
  return "?";
}

}  // namespace kiln
