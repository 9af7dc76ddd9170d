// kiln/kernels/reduce.hpp — reductions and softmax along one axis, with fused producers.
//
// The problem is viewed as [outer, axis, inner] (outer and inner dims coalesced where the
// operands allow). The values come from an elementwise producer program evaluated tile by
// tile with EwTileEval, so a chain like sum(exp(x - m)) never materialises its input; a
// producer that only passes a unit-stride operand through is skipped (rows read directly).
//   inner == 1: each output reduces one strided row; four vector accumulators per tile, tiles
//               combined with a compensated (Neumaier) sum.
//   inner  > 1: a tile of the innermost dim is reduced across the axis with vector ops on an
//               accumulator tile (sums: a partial tile per 32 rows, partials added to the total
//               with Neumaier compensation).
//
// NaN: max/min and softmax propagate it (once NaN, stays NaN). Empty axis: sum 0, mean NaN,
// max -inf, min +inf (the identities of each fold; softmax of an empty axis writes nothing).
// softmax of a row of all -inf (or with +inf or NaN) is NaN, like PyTorch.
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

/// softmax rows of at most this many chunks (kEwTile values, or kDirectChunk when read directly)
/// keep exp(x - running max) in the output from pass 1, with each chunk's max, and pass 2 only
/// rescales: one exp per element. Longer rows, and log_softmax, evaluate the producer again.
inline constexpr int kSoftmaxKeptTiles = 64;

namespace detail {

/// load r0 = in[0]; store 0 = r0 — the producer used when the caller passes none.
inline const EwProgram& identity_program() {
  static constexpr EwInstr kCode[2] = {{EwKind::load, EwFn::identity, 0, 0, 0, 0, 0.f, 0.f},
                                       {EwKind::store, EwFn::identity, 0, 0, 0, 0, 0.f, 0.f}};
  static constexpr EwProgram kProg{kCode, 2, 1};
  return kProg;
}

/// d = fn(a, b) through ew_apply, so reductions reuse its loops instead of instantiating more.
inline void apply_fn(EwFn fn, const float* a, const float* b, float* d, int n, float p0 = 0.f) {
  EwInstr ins;
  ins.fn = fn;
  ins.p0 = p0;
  ew_apply(ins, a, b, b, d, n);
}

/// abs and select for either twin (float / fbatch), for lambdas written once for both.
inline float twin_abs(float x) { return std::fabs(x); }
inline float twin_select(bool m, float a, float b) { return m ? a : b; }
#if KILN_SIMD
inline fbatch twin_abs(fbatch x) { return xsimd::abs(x); }
inline fbatch twin_select(fmask m, fbatch a, fbatch b) { return xsimd::select(m, a, b); }
#endif

/// inner > 1 sums add rows into a partial tile; every kSumBlockRows rows the partial goes into
/// the total with Neumaier compensation, so the error is ~kSumBlockRows ulp whatever the length.
inline constexpr int kSumBlockRows = 32;

/// total += part elementwise with Neumaier compensation kept in comp.
inline void compensated_add(float* total, float* comp, const float* part, int n) {
  using ewm::detail::map3;
  // comp first (it needs the old total), then the total itself.
  map3(total, part, comp, comp, n, [](auto s, auto x, auto c) {
    const auto t = s + x;
    const auto big = twin_abs(s) >= twin_abs(x);
    return c + twin_select(big, (s - t) + x, (x - t) + s);
  });
  apply_fn(EwFn::add, total, part, total, n);
}

/// total + comp, except where the total is inf or NaN (the compensation is then meaningless).
inline void compensated_finish(float* total, const float* comp, int n) {
  ewm::detail::map2(total, comp, total, n, [](auto s, auto c) { return twin_select((s - s) == decltype(s)(0.f), s + c, s); });
}

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

/// o[i] = exp(v[i] - m) for i in [0, n); returns their sum. A ragged end is padded with -inf
/// (exp adds 0) and run through the same loop, so exp is expanded once.
inline float exp_store_sum(const float* v, float m, float* o, int n) {
#if KILN_SIMD
  const fbatch mb(m);
  fbatch acc(0.f);
  int i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const fbatch e = ewm::exp(fbatch::load_unaligned(v + i) - mb);
    e.store_unaligned(o + i);
    acc += e;
  }
  float s = xsimd::hadd(acc);
  if (i < n) {
    float t[kLanes], e[kLanes];
    for (int l = 0; l < kLanes; ++l) t[l] = i + l < n ? v[i + l] : -std::numeric_limits<float>::infinity();
    s += exp_store_sum(t, m, e, kLanes);
    for (int l = 0; l < n - i; ++l) o[i + l] = e[l];
  }
  return s;
#else
  float s = 0.f;
  for (int i = 0; i < n; ++i) {
    o[i] = std::exp(v[i] - m);
    s += o[i];
  }
  return s;
#endif
}

/// o[i] *= c for i in [0, n).
inline void scale_inplace(float* o, float c, int n) {
  int i = 0;
#if KILN_SIMD
  const fbatch cb(c);
  for (; i + kLanes <= n; i += kLanes) (fbatch::load_unaligned(o + i) * cb).store_unaligned(o + i);
#endif
  for (; i < n; ++i) o[i] *= c;
}

/// Online softmax statistics across the axis, per element of a tile: after all rows, m[i] is the
/// max and s[i] the sum of exp(x - m[i]). An all -inf prefix contributes nothing (instead of
/// exp(-inf - -inf) = NaN), so a later finite value still gives a proper distribution.
inline void online_softmax_step(float* m, float* s, const float* v, int n) {
#if KILN_SIMD
  const fbatch ninf(-std::numeric_limits<float>::infinity()), one(1.f), zero(0.f);
  int i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const fbatch mo = fbatch::load_unaligned(m + i), so = fbatch::load_unaligned(s + i);
    const fbatch x = fbatch::load_unaligned(v + i);
    const fbatch mn = ewm::maximum(mo, x);
    const fmask same = mo == mn;
    // The running max rarely changes after the first rows: skip the rescale exp when it did not.
    const fbatch scale = xsimd::all(same) ? one : xsimd::select(same, one, ewm::exp(mo - mn));
    const fbatch term = xsimd::select(mn == ninf, zero, ewm::exp(x - mn));
    mn.store_unaligned(m + i);
    xsimd::fma(so, scale, term).store_unaligned(s + i);
  }
  if (i < n) {  // ragged end: padded copies through the same loop
    float tm[kLanes] = {}, ts[kLanes] = {}, tv[kLanes] = {};
    for (int l = 0; l < n - i; ++l) tm[l] = m[i + l], ts[l] = s[i + l], tv[l] = v[i + l];
    online_softmax_step(tm, ts, tv, kLanes);
    for (int l = 0; l < n - i; ++l) m[i + l] = tm[l], s[i + l] = ts[l];
  }
#else
  for (int i = 0; i < n; ++i) {
    const float mn = ewm::maximum(m[i], v[i]);
    const float scale = m[i] == mn ? 1.f : std::exp(m[i] - mn);
    const float term = mn == -std::numeric_limits<float>::infinity() ? 0.f : std::exp(v[i] - mn);
    s[i] = s[i] * scale + term;
    m[i] = mn;
  }
#endif
}

/// Pass 2 of softmax for one tile: o = exp(x - m) * s (s = 1/sum), or for log_softmax
/// o = (x - m) - s (s = log(sum)); subtracting separately keeps the result accurate when |m| is
/// large (m + log(sum) rounded first would carry an error of ulp(m)).
inline void softmax_write(bool log, const float* x, const float* m, const float* s, float* o, int n) {
  if (log) {
    apply_fn(EwFn::sub, x, m, o, n);
    apply_fn(EwFn::sub, o, s, o, n);
  } else {
    ewm::detail::map3(x, m, s, o, n, [](auto v, auto mx, auto inv) { return ewm::exp(v - mx) * inv; });
  }
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

/// Longest chunk a row is read in when it needs no evaluation (RowReader::direct).
inline constexpr int kDirectChunk = 4096;

/// The values along one row, chunk by chunk: evaluated tile by tile through the producer, or,
/// when the producer only passes a unit-stride f32 operand through, read straight from memory in
/// chunks of kDirectChunk (no per-tile dispatch).
struct RowReader {
  EwTileEval& ev;
  const EwRowIn* rin;
  const float* direct = nullptr;
  RowReader(EwTileEval& e, const EwRowIn* r) : ev(e), rin(r) {
    const int k = e.passthrough_operand();
    if (k >= 0 && r[k].dtype == DType::f32 && r[k].stride == 1) direct = static_cast<const float*>(r[k].data);
  }
  index_t chunk() const { return direct ? kDirectChunk : kEwTile; }
  int length(index_t pos, index_t len) const {
    return static_cast<int>(len - pos < chunk() ? len - pos : chunk());
  }
  const float* read(index_t pos, int n) {
    if (direct) return direct + pos;
    ev.run(rin, nullptr, pos, n);
    return ev.stored_values();
  }
};

/// Reduces one row of `len` values (producer evaluated along the axis).
inline float reduce_row(ReduceKind kind, EwTileEval& ev, const EwRowIn* rin, index_t len) {
  CompensatedSum sum;
  float ext = kind == ReduceKind::max ? -std::numeric_limits<float>::infinity()
                                      : std::numeric_limits<float>::infinity();
  RowReader row(ev, rin);
  for (index_t pos = 0; pos < len; pos += row.chunk()) {
    const int n = row.length(pos, len);
    const float* v = row.read(pos, n);
    switch (kind) {
      case ReduceKind::sum:
      case ReduceKind::mean:  // tiles of kEwTile: few additions per lane, compensated across tiles
        for (int j = 0; j < n; j += kEwTile) sum.add(sum_tile(v + j, n - j < kEwTile ? n - j : kEwTile));
        break;
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

inline bool check_reduce_args(const char* who, const EwProgram* producer, int n_in, const Shape& shape, int axis) {
  if (n_in < (producer ? 0 : 1) || n_in > kEwMaxOperands || axis < 0 || axis >= shape.rank()) {
    fail(Status(Errc::invalid_argument) << who << ": bad axis or more than kEwMaxOperands inputs");
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
  if (!detail::check_reduce_args("reduce_run", producer, n_in, shape, axis)) return;
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
  alignas(64) float acc[kEwTile], part[kEwTile], comp[kEwTile];
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
            if (is_sum) {
              std::memset(part, 0, sizeof part);
              std::memset(comp, 0, sizeof comp);
            }
            continue;
          }
          switch (kind) {
            case ReduceKind::sum:
            case ReduceKind::mean:
              detail::apply_fn(EwFn::add, part, v, part, n);
              if (t % detail::kSumBlockRows == 0 || t + 1 == L.len) {
                detail::compensated_add(acc, comp, part, n);
                std::memset(part, 0, sizeof part);
              }
              break;
            case ReduceKind::max: detail::apply_fn(EwFn::maximum, acc, v, acc, n); break;
            case ReduceKind::min: detail::apply_fn(EwFn::minimum, acc, v, acc, n); break;
          }
        }
        if (is_sum && L.len > 1) detail::compensated_finish(acc, comp, n);
        if (kind == ReduceKind::mean) {
          for (int i = 0; i < n; ++i) part[i] = static_cast<float>(L.len);
          detail::apply_fn(EwFn::div, acc, part, acc, n);
        }
        std::memcpy(out + pos, acc, static_cast<std::size_t>(n) * sizeof(float));
      }
      out += L.row_len;
    } while (detail::next_index(L.inner, iidx, inner_rows));
  } while (detail::next_index(L.outer, oidx, L.outer.nd));
}

/// softmax (or log_softmax when `log`) along `axis`, numerically stable: pass 1 keeps an online
/// max and sum of exp(x - max), pass 2 writes. Rows (softmax over the innermost dim) of up to
/// kSoftmaxKeptTiles tiles keep the exponentials in `out` from pass 1, so pass 2 only rescales
/// them; otherwise pass 2 evaluates the producer again. `out` is contiguous with `shape`. A row of all -inf (or containing NaN or +inf) gives
/// NaN, like PyTorch; never a crash.
inline void softmax_run(bool log, const EwProgram* producer, const EwOperand* in, int n_in, const Shape& shape,
                        int axis, float* out) {
  if (!detail::check_reduce_args("softmax_run", producer, n_in, shape, axis)) return;
  if (shape.numel() == 0) return;
  const EwProgram& prog = producer ? *producer : detail::identity_program();
  const detail::AxisLoop L = detail::make_axis_loop(in, n_in, shape, axis);
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();

  EwTileEval ev(prog);
  EwRowIn rin[kEwMaxOperands];
  index_t oidx[kMaxRank] = {};
  alignas(64) float m[kEwTile], s[kEwTile];  // per element of a tile: max, then log(sum) or 1/sum
  if (L.inner_numel == 1) {
    float chunk_max[kSoftmaxKeptTiles];
    do {
      detail::point_rows(rin, in, n_in, L, oidx, nullptr, 0, axis, true);
      detail::RowReader row(ev, rin);
      const bool keep = !log && (L.len + row.chunk() - 1) / row.chunk() <= kSoftmaxKeptTiles;
      float mx = kNegInf, sum = 0.f;
      for (index_t pos = 0, t = 0; pos < L.len; pos += row.chunk(), ++t) {
        const int n = row.length(pos, L.len);
        const float* v = row.read(pos, n);
        const float mn = detail::nan_sticky_max(mx, detail::extremum_tile<true>(v, n));
        if (keep) chunk_max[t] = mn;
        if (mn == kNegInf) {  // all -inf so far: nothing to add yet (pass 2 makes these 0, or NaN)
          if (keep) std::memset(out + pos, 0, static_cast<std::size_t>(n) * sizeof(float));
          continue;
        }
        // kEwTile values at a time, compensated across them (a chunk can be kDirectChunk long);
        // without `keep` only the sum is needed and the exponentials go to the s tile.
        detail::CompensatedSum part;
        for (int j = 0; j < n; j += kEwTile)
          part.add(detail::exp_store_sum(v + j, mn, keep ? out + pos + j : s, n - j < kEwTile ? n - j : kEwTile));
        sum = sum * (mx == mn ? 1.f : std::exp(mx - mn)) + part.value();
        mx = mn;
      }
      if (keep) {  // out holds exp(x - chunk max): scale by exp(chunk max - max) / sum
        const float inv = 1.f / sum;
        for (index_t pos = 0, t = 0; pos < L.len; pos += row.chunk(), ++t) {
          const float scale = (chunk_max[t] == mx ? 1.f : std::exp(chunk_max[t] - mx)) * inv;
          detail::scale_inplace(out + pos, scale, row.length(pos, L.len));
        }
      } else {
        const float scale = log ? std::log(sum) : 1.f / sum;
        for (int i = 0; i < kEwTile; ++i) m[i] = mx, s[i] = scale;
        for (index_t pos = 0; pos < L.len; pos += kEwTile) {
          const int n = static_cast<int>(L.len - pos < kEwTile ? L.len - pos : kEwTile);
          const float* v = row.direct ? row.direct + pos : (ev.run(rin, nullptr, pos, n), ev.stored_values());
          detail::softmax_write(log, v, m, s, out + pos, n);
        }
      }
      out += L.len;
    } while (detail::next_index(L.outer, oidx, L.outer.nd));
    return;
  }

  const int inner_rows = L.inner.nd - 1;
  const index_t slab = L.len * L.inner_numel;  // output floats per outer index
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
        // Turn s into what pass 2 needs per element: log(s) or 1/s.
        detail::apply_fn(log ? EwFn::log : EwFn::pow_scalar, s, s, s, n, -1.f);
        float* o = out + outer_lin * slab + inner_off + pos;
        for (index_t t = 0; t < L.len; ++t, o += L.inner_numel) {
          point_at(t);
          ev.run(rin, nullptr, pos, n);
          detail::softmax_write(log, ev.stored_values(), m, s, o, n);
        }
      }
      inner_off += L.row_len;
    } while (detail::next_index(L.inner, iidx, inner_rows));
    ++outer_lin;
  } while (detail::next_index(L.outer, oidx, L.outer.nd));
}

}  // namespace kiln::kernels
