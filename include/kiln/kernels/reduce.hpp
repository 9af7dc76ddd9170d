// kiln/kernels/reduce.hpp — reductions and softmax along one axis, with fused producers.
//
// The problem is viewed as [outer, axis, inner] (outer and inner dims coalesced where the
// operands allow). The values come from an elementwise producer program evaluated tile by
// tile with EwTileEval, so a chain like sum(exp(x - m)) never materialises its input.
//   inner == 1: each output reduces one strided row; vector accumulators over a tile, tiles
//               combined with a compensated (Neumaier) sum.
//   inner  > 1: a tile of the innermost dim is reduced across the axis with vector ops on an
//               accumulator tile (sums blocked in two levels for accuracy).
//
// NaN: max/min and softmax propagate it (once NaN, stays NaN). Empty axis: sum 0, mean NaN,
// max -inf, min +inf (the identities of each fold; softmax of an empty axis writes nothing).
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

#include "../core/config.hpp"
#include "../core/ewfn.hpp"
#include "../core/shape.hpp"
#include "elementwise.hpp"
#include "ew_math.hpp"
#include "ew_program.hpp"

namespace kiln::kernels {
namespace detail {

/// load r0 = in[0]; store 0 = r0 — the producer used when the caller passes none.
inline const EwProgram& identity_program() {
  static constexpr EwInstr kCode[2] = {{EwKind::load, EwFn::identity, 0, 0, 0, 0, 0.f, 0.f},
                                       {EwKind::store, EwFn::identity, 0, 0, 0, 0, 0.f, 0.f}};
  static constexpr EwProgram kProg{kCode, 2, 1};
  return kProg;
}

/// Rows of the sums along the axis: inner > 1 sums are accumulated in blocks of this many rows,
/// then added to the total, so rounding error grows with ~(block + len / block), not len.
inline constexpr int kSumBlockRows = 32;

/// Sum with a running compensation term (Neumaier): exact-ish across many tile sums.
struct CompensatedSum {
  float sum = 0.f, comp = 0.f;
  void add(float x) {
    const float t = sum + x;
    comp += std::fabs(sum) >= std::fabs(x) ? (sum - t) + x : (x - t) + sum;
    sum = t;
  }
  /// Once the sum is inf or NaN the compensation is meaningless (inf - inf): return the sum.
  float value() const { return std::isfinite(sum) ? sum + comp : sum; }
};

inline float nan_sticky_max(float a, float b) { return ewm::maximum(a, b); }
inline float nan_sticky_min(float a, float b) { return ewm::minimum(a, b); }

/// Sum of v[0..n) with four independent vector accumulators (latency hiding, and a shallower
/// addition tree than one running sum).
inline float sum_tile(const float* v, int n) {
  int i = 0;
#if KILN_SIMD
  fbatch a0(0.f), a1(0.f), a2(0.f), a3(0.f);
  for (; i + 4 * kLanes <= n; i += 4 * kLanes) {
    a0 += fbatch::load_unaligned(v + i);
    a1 += fbatch::load_unaligned(v + i + kLanes);
    a2 += fbatch::load_unaligned(v + i + 2 * kLanes);
    a3 += fbatch::load_unaligned(v + i + 3 * kLanes);
  }
  for (; i + kLanes <= n; i += kLanes) a0 += fbatch::load_unaligned(v + i);
  float s = xsimd::hadd((a0 + a1) + (a2 + a3));
#else
  float a0 = 0.f, a1 = 0.f, a2 = 0.f, a3 = 0.f;
  for (; i + 4 <= n; i += 4) {
    a0 += v[i];
    a1 += v[i + 1];
    a2 += v[i + 2];
    a3 += v[i + 3];
  }
  float s = (a0 + a1) + (a2 + a3);
#endif
  for (; i < n; ++i) s += v[i];
  return s;
}

/// NaN-propagating max (kMax) or min of v[0..n), n >= 1.
template <bool kMax>
inline float extremum_tile(const float* v, int n) {
  const auto pick = [](auto a, auto b) { return kMax ? ewm::maximum(a, b) : ewm::minimum(a, b); };
  int i = 0;
  float m = v[0];
#if KILN_SIMD
  if (n >= kLanes) {
    fbatch acc = fbatch::load_unaligned(v);
    for (i = kLanes; i + kLanes <= n; i += kLanes) acc = pick(acc, fbatch::load_unaligned(v + i));
    alignas(64) float lanes[kLanes];
    acc.store_aligned(lanes);
    m = lanes[0];
    for (int l = 1; l < kLanes; ++l) m = pick(m, lanes[l]);
  }
#endif
  for (; i < n; ++i) m = pick(m, v[i]);
  return m;
}

/// Sum of exp(v[i] - m) over v[0..n).
inline float sum_exp_tile(const float* v, int n, float m) {
  int i = 0;
  float s = 0.f;
#if KILN_SIMD
  const fbatch mb(m);
  fbatch a0(0.f), a1(0.f);
  for (; i + 2 * kLanes <= n; i += 2 * kLanes) {
    a0 += ewm::exp(fbatch::load_unaligned(v + i) - mb);
    a1 += ewm::exp(fbatch::load_unaligned(v + i + kLanes) - mb);
  }
  for (; i + kLanes <= n; i += kLanes) a0 += ewm::exp(fbatch::load_unaligned(v + i) - mb);
  if (i < n) {  // padded with -inf, whose exp adds 0
    alignas(64) float t[kLanes];
    for (int l = 0; l < kLanes; ++l) t[l] = i + l < n ? v[i + l] : -std::numeric_limits<float>::infinity();
    a1 += ewm::exp(fbatch::load_aligned(t) - mb);
    i = n;
  }
  s = xsimd::hadd(a0 + a1);
#endif
  for (; i < n; ++i) s += std::exp(v[i] - m);
  return s;
}

/// Online softmax statistics across the axis, per element of a tile: after all rows, m[i] is the
/// max and s[i] the sum of exp(x - m[i]). An all -inf prefix contributes nothing (instead of
/// exp(-inf - -inf) = NaN), so a later finite value still gives a proper distribution.
inline void online_softmax_step(float* m, float* s, const float* v, int n) {
  int i = 0;
#if KILN_SIMD
  const fbatch ninf(-std::numeric_limits<float>::infinity()), one(1.f), zero(0.f);
  auto step = [&](float* mp, float* sp, const float* vp, bool aligned_tmp) {
    const fbatch mo = aligned_tmp ? fbatch::load_aligned(mp) : fbatch::load_unaligned(mp);
    const fbatch so = aligned_tmp ? fbatch::load_aligned(sp) : fbatch::load_unaligned(sp);
    const fbatch x = aligned_tmp ? fbatch::load_aligned(vp) : fbatch::load_unaligned(vp);
    const fbatch mn = ewm::maximum(mo, x);
    const fmask same = mo == mn;
    // The running max rarely changes after the first rows: skip the rescale exp when it did not.
    const fbatch scale = xsimd::all(same) ? one : xsimd::select(same, one, ewm::exp(mo - mn));
    const fbatch term = xsimd::select(mn == ninf, zero, ewm::exp(x - mn));
    const fbatch sn = xsimd::fma(so, scale, term);
    if (aligned_tmp) {
      mn.store_aligned(mp);
      sn.store_aligned(sp);
    } else {
      mn.store_unaligned(mp);
      sn.store_unaligned(sp);
    }
  };
  for (; i + kLanes <= n; i += kLanes) step(m + i, s + i, v + i, false);
  if (i < n) {
    alignas(64) float tm[kLanes] = {}, ts[kLanes] = {}, tv[kLanes] = {};
    for (int l = 0; l < n - i; ++l) tm[l] = m[i + l], ts[l] = s[i + l], tv[l] = v[i + l];
    step(tm, ts, tv, true);
    for (int l = 0; l < n - i; ++l) m[i + l] = tm[l], s[i + l] = ts[l];
  }
#else
  for (; i < n; ++i) {
    const float mn = ewm::maximum(m[i], v[i]);
    const float scale = m[i] == mn ? 1.f : std::exp(m[i] - mn);
    const float term = mn == -std::numeric_limits<float>::infinity() ? 0.f : std::exp(v[i] - mn);
    s[i] = s[i] * scale + term;
    m[i] = mn;
  }
#endif
}

/// The [outer, axis, inner] view of a reduction or softmax, with outer and inner dims coalesced.
struct AxisLoop {
  LoopDims outer, inner;
  index_t len = 0;          // axis extent
  index_t inner_numel = 1;  // product of the dims after the axis
  index_t row_len = 1;      // extent of the innermost coalesced inner dim (1 if none)
};

inline AxisLoop make_axis_loop(const EwOperand* in, int n_in, const Shape& shape, int axis) {
  AxisLoop L;
  const auto stride_of = [&](int k, int d) { return in[k].strides[d]; };
  L.outer = coalesce_dims(shape, 0, axis, n_in, stride_of);
  L.inner = coalesce_dims(shape, axis + 1, shape.rank(), n_in, stride_of);
  L.len = shape[axis];
  for (int d = axis + 1; d < shape.rank(); ++d) L.inner_numel *= shape[d];
  L.row_len = L.inner.nd > 0 ? L.inner.ext[L.inner.nd - 1] : 1;
  return L;
}

inline float empty_reduction(ReduceKind kind) {
  switch (kind) {
    case ReduceKind::sum: return 0.f;
    case ReduceKind::mean: return std::numeric_limits<float>::quiet_NaN();
    case ReduceKind::max: return -std::numeric_limits<float>::infinity();
    case ReduceKind::min: return std::numeric_limits<float>::infinity();
  }
  return 0.f;
}

/// Reduces one row of `len` values (producer evaluated along the axis).
inline float reduce_row(ReduceKind kind, EwTileEval& ev, const EwRowIn* rin, index_t len) {
  CompensatedSum sum;
  float ext = kind == ReduceKind::max ? -std::numeric_limits<float>::infinity()
                                      : std::numeric_limits<float>::infinity();
  for (index_t pos = 0; pos < len; pos += kEwTile) {
    const int n = static_cast<int>(len - pos < kEwTile ? len - pos : kEwTile);
    ev.run(rin, nullptr, pos, n);
    const float* v = ev.stored_values();
    switch (kind) {
      case ReduceKind::sum:
      case ReduceKind::mean: sum.add(sum_tile(v, n)); break;
      case ReduceKind::max: ext = nan_sticky_max(ext, extremum_tile<true>(v, n)); break;
      case ReduceKind::min: ext = nan_sticky_min(ext, extremum_tile<false>(v, n)); break;
    }
  }
  switch (kind) {
    case ReduceKind::sum: return sum.value();
    case ReduceKind::mean: return sum.value() / static_cast<float>(len);
    default: return ext;
  }
}

/// Points rin[k] at the operand position given by the outer index, axis position t and inner
/// row index (all dims of `inner` but its last), along the stride `along`.
inline void point_rows(EwRowIn* rin, const EwOperand* in, int n_in, const AxisLoop& L, const index_t* oidx,
                       const index_t* iidx, index_t t, int axis, bool along_axis) {
  const int inner_rows = L.inner.nd > 0 ? L.inner.nd - 1 : 0;
  for (int k = 0; k < n_in; ++k) {
    const Strides& st = in[k].strides;
    const index_t off = loop_offset(L.outer, oidx, L.outer.nd, st) + t * st[axis] +
                        (along_axis ? 0 : loop_offset(L.inner, iidx, inner_rows, st));
    rin[k].data = static_cast<const char*>(in[k].data) + off * dtype_size(in[k].dtype);
    rin[k].dtype = in[k].dtype;
    rin[k].stride = along_axis ? st[axis] : (L.inner.nd > 0 ? st[L.inner.src[L.inner.nd - 1]] : 0);
  }
}

inline bool check_reduce_args(const char* who, int n_in, const Shape& shape, int axis) {
  if (n_in < 0 || n_in > kEwMaxOperands || axis < 0 || axis >= shape.rank()) {
    fail(Status(Errc::invalid_argument) << who << ": " << n_in << " inputs, axis " << axis << " of shape "
                                        << shape);
    return false;
  }
  return true;
}

}  // namespace detail

/// Reduces axis `axis` of `shape`. Values come from `producer` (a program whose single store has
/// dst 0) evaluated over `in` (element strides over `shape`), or from in[0] when producer is null.
/// `out` is contiguous with `shape` minus that axis (same memory as keepdim). mean = sum / len.
/// max/min propagate NaN. Empty axis: sum 0, mean NaN, max -inf, min +inf.
inline void reduce_run(ReduceKind kind, const EwProgram* producer, const EwOperand* in, int n_in,
                       const Shape& shape, int axis, float* out) {
  if (!detail::check_reduce_args("reduce_run", n_in, shape, axis)) return;
  const EwProgram& prog = producer ? *producer : detail::identity_program();
  const detail::AxisLoop L = detail::make_axis_loop(in, n_in, shape, axis);
  index_t n_out = 1;
  for (int d = 0; d < shape.rank(); ++d)
    if (d != axis) n_out *= shape[d];
  if (n_out == 0) return;
  if (L.len == 0) {
    const float v = detail::empty_reduction(kind);
    for (index_t i = 0; i < n_out; ++i) out[i] = v;
    return;
  }

  EwTileEval ev(prog);
  EwRowIn rin[kEwMaxOperands];
  index_t oidx[kMaxRank] = {};
  const bool is_sum = kind == ReduceKind::sum || kind == ReduceKind::mean;
  if (L.inner_numel == 1) {
    do {
      detail::point_rows(rin, in, n_in, L, oidx, nullptr, 0, axis, true);
      *out++ = detail::reduce_row(kind, ev, rin, L.len);
    } while (detail::next_index(L.outer, oidx, L.outer.nd));
    return;
  }

  const int inner_rows = L.inner.nd - 1;
  alignas(64) float acc[kEwTile], part[kEwTile];
  do {
    index_t iidx[kMaxRank] = {};
    do {
      detail::point_rows(rin, in, n_in, L, oidx, iidx, 0, axis, false);
      const char* row0[kEwMaxOperands];
      for (int k = 0; k < n_in; ++k) row0[k] = static_cast<const char*>(rin[k].data);
      for (index_t pos = 0; pos < L.row_len; pos += kEwTile) {
        const int n = static_cast<int>(L.row_len - pos < kEwTile ? L.row_len - pos : kEwTile);
        for (index_t t = 0; t < L.len; ++t) {
          for (int k = 0; k < n_in; ++k)
            rin[k].data = row0[k] + t * in[k].strides[axis] * dtype_size(in[k].dtype);
          ev.run(rin, nullptr, pos, n);
          const float* v = ev.stored_values();
          if (t == 0) {
            std::memcpy(acc, v, static_cast<std::size_t>(n) * sizeof(float));
            if (is_sum) std::memset(part, 0, sizeof part);
            continue;
          }
          using ewm::detail::map2;
          switch (kind) {
            case ReduceKind::sum:
            case ReduceKind::mean:
              map2(part, v, part, n, [](auto a, auto b) { return a + b; });
              if (t % detail::kSumBlockRows == 0 || t + 1 == L.len) {
                map2(acc, part, acc, n, [](auto a, auto b) { return a + b; });
                std::memset(part, 0, sizeof part);
              }
              break;
            case ReduceKind::max: map2(acc, v, acc, n, [](auto a, auto b) { return ewm::maximum(a, b); }); break;
            case ReduceKind::min: map2(acc, v, acc, n, [](auto a, auto b) { return ewm::minimum(a, b); }); break;
          }
        }
        if (kind == ReduceKind::mean) {
          const float len = static_cast<float>(L.len);
          ewm::detail::map1(acc, acc, n, [len](auto a) { return a / decltype(a)(len); });
        }
        std::memcpy(out + pos, acc, static_cast<std::size_t>(n) * sizeof(float));
      }
      out += L.row_len;
    } while (detail::next_index(L.inner, iidx, inner_rows));
  } while (detail::next_index(L.outer, oidx, L.outer.nd));
}

/// softmax (or log_softmax when `log`) along `axis`, numerically stable: pass 1 keeps an online
/// max and sum of exp(x - max), pass 2 writes; the producer is evaluated twice, the data read
/// twice. `out` is contiguous with `shape`. A row of all -inf (or containing NaN or +inf) gives
/// NaN, like PyTorch; never a crash.
inline void softmax_run(bool log, const EwProgram* producer, const EwOperand* in, int n_in, const Shape& shape,
                        int axis, float* out) {
  if (!detail::check_reduce_args("softmax_run", n_in, shape, axis)) return;
  if (shape.numel() == 0) return;
  const EwProgram& prog = producer ? *producer : detail::identity_program();
  const detail::AxisLoop L = detail::make_axis_loop(in, n_in, shape, axis);
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  using ewm::detail::map1;
  using ewm::detail::map2;
  using ewm::detail::map3;

  EwTileEval ev(prog);
  EwRowIn rin[kEwMaxOperands];
  index_t oidx[kMaxRank] = {};
  if (L.inner_numel == 1) {
    do {
      detail::point_rows(rin, in, n_in, L, oidx, nullptr, 0, axis, true);
      float m = kNegInf, s = 0.f;
      for (index_t pos = 0; pos < L.len; pos += kEwTile) {
        const int n = static_cast<int>(L.len - pos < kEwTile ? L.len - pos : kEwTile);
        ev.run(rin, nullptr, pos, n);
        const float* v = ev.stored_values();
        const float mn = detail::nan_sticky_max(m, detail::extremum_tile<true>(v, n));
        if (mn == kNegInf) continue;  // all -inf so far: nothing to add yet
        s = s * (m == mn ? 1.f : std::exp(m - mn)) + detail::sum_exp_tile(v, n, mn);
        m = mn;
      }
      const float inv_s = 1.f / s, shift = m + std::log(s);
      for (index_t pos = 0; pos < L.len; pos += kEwTile) {
        const int n = static_cast<int>(L.len - pos < kEwTile ? L.len - pos : kEwTile);
        ev.run(rin, nullptr, pos, n);
        const float* v = ev.stored_values();
        if (log)
          map1(v, out + pos, n, [shift](auto x) { return x - decltype(x)(shift); });
        else
          map1(v, out + pos, n, [m, inv_s](auto x) { return ewm::exp(x - decltype(x)(m)) * decltype(x)(inv_s); });
      }
      out += L.len;
    } while (detail::next_index(L.outer, oidx, L.outer.nd));
    return;
  }

  const int inner_rows = L.inner.nd - 1;
  const index_t slab = L.len * L.inner_numel;  // output floats per outer index
  alignas(64) float m[kEwTile], s[kEwTile];
  index_t outer_lin = 0;
  do {
    index_t iidx[kMaxRank] = {};
    index_t inner_off = 0;
    do {
      detail::point_rows(rin, in, n_in, L, oidx, iidx, 0, axis, false);
      const char* row0[kEwMaxOperands];
      for (int k = 0; k < n_in; ++k) row0[k] = static_cast<const char*>(rin[k].data);
      const auto point_at = [&](index_t t) {
        for (int k = 0; k < n_in; ++k) rin[k].data = row0[k] + t * in[k].strides[axis] * dtype_size(in[k].dtype);
      };
      for (index_t pos = 0; pos < L.row_len; pos += kEwTile) {
        const int n = static_cast<int>(L.row_len - pos < kEwTile ? L.row_len - pos : kEwTile);
        for (int i = 0; i < n; ++i) m[i] = kNegInf, s[i] = 0.f;
        for (index_t t = 0; t < L.len; ++t) {
          point_at(t);
          ev.run(rin, nullptr, pos, n);
          detail::online_softmax_step(m, s, ev.stored_values(), n);
        }
        // Turn (m, s) into what pass 2 needs per element: shift (log) or m and 1/s.
        if (log)
          map2(m, s, m, n, [](auto mx, auto sx) { return mx + ewm::log(sx); });
        else
          map1(s, s, n, [](auto sx) { return decltype(sx)(1.f) / sx; });
        float* o = out + outer_lin * slab + inner_off + pos;
        for (index_t t = 0; t < L.len; ++t, o += L.inner_numel) {
          point_at(t);
          ev.run(rin, nullptr, pos, n);
          const float* v = ev.stored_values();
          if (log)
            map2(v, m, o, n, [](auto x, auto q) { return x - q; });
          else
            map3(v, m, s, o, n, [](auto x, auto mx, auto inv) { return ewm::exp(x - mx) * inv; });
        }
      }
      inner_off += L.row_len;
    } while (detail::next_index(L.inner, iidx, inner_rows));
    ++outer_lin;
  } while (detail::next_index(L.outer, oidx, L.outer.nd));
}

}  // namespace kiln::kernels
