// kiln/kernels/conv.hpp — 2-D convolution, NHWC input, OHWI weight [out_c, kh, kw, in_c/groups].
//
// Three algorithms, chosen from the geometry alone (conv_algorithm):
//  - pointwise: a 1x1, stride-1, unpadded conv over NHWC *is* a matmul of the [N*H*W, C] input
//    by the weight's transpose; the GEMM reads the input where it lies.
//  - depthwise (groups == in_c, any channel multiplier): direct, vectorised over output channels
//    with the weight transposed to [kh][kw][out_c]; a GEMM would have depth kh*kw and waste
//    its register tile. 3-wide windows of stride 1 or 2 (MobileNet's) stream along rows
//    (DepthwiseStream3, DepthwiseStream3Stride2), everything else goes through register blocks
//    of pixels.
//  - im2col (implicit): everything else, as a GEMM whose A is the im2col matrix (one row per
//    output pixel, columns (kh, kw, c) in the order of an OHWI weight's rows) without ever
//    materialising it: the GEMM micro-kernel's A operand is MR pointers into the input, one per
//    output pixel, walked tap by tap (a window row of a stride-1 conv is one contiguous run of
//    kw * C floats). Tiles whose windows touch the padding walk tap by tap, a padding tap reading
//    a run of zeros (TileWalk; kernels above 7x7 gather those tiles into a small buffer). This
//    saves the im2col copy and the A packing, both as large as the FMAs' own memory traffic when
//    the output has few channels.
// Both GEMM paths keep the weight as the GEMM's B operand: an OHWI weight is exactly a linear
// layer's [out, in] matrix, so it is prepacked once like one (conv_pack_weights).
//
// The epilogue is the GEMM's: bias and clamp in registers, then `tail` on each finished block
// with coordinates over the whole [rows, out_c] output (the chunking and groups are hidden).
// No heap: all scratch is the caller's workspace (conv_workspace_floats, 64-byte aligned).
#pragma once

#include <cstring>
#include <limits>

#include "gemm.hpp"
#include "window.hpp"

namespace kiln::kernels {

enum class ConvAlgorithm : std::uint8_t { pointwise, depthwise, im2col };

constexpr const char* conv_algorithm_name(ConvAlgorithm a) {
  switch (a) {
    case ConvAlgorithm::pointwise: return "pointwise gemm";
    case ConvAlgorithm::depthwise: return "depthwise direct";
    case ConvAlgorithm::im2col: return "implicit im2col gemm";
  }
  return "?";
}

constexpr ConvAlgorithm conv_algorithm(const WindowGeometry& g) {
  if (g.groups == g.in_c && g.in_c > 1) return ConvAlgorithm::depthwise;
  if (g.kernel_h == 1 && g.kernel_w == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_top == 0 &&
      g.pad_left == 0 && g.out_h == g.in_h && g.out_w == g.in_w)
    return ConvAlgorithm::pointwise;
  return ConvAlgorithm::im2col;
}

#if defined(__GNUC__) || defined(__clang__)
#define KILN_CONV_RESTRICT __restrict__
#else
#define KILN_CONV_RESTRICT
#endif

// The tile walk's loops over MR rows unroll for speed on SIMD targets; the scalar twin (firmware)
// keeps them rolled (fw_static_run_conv on a Cortex-M4: 1.7 KB less .text, 7 % more instructions).
#if KILN_SIMD
#define KILN_CONV_WALK_UNROLL KILN_WINDOW_UNROLL
#else
#define KILN_CONV_WALK_UNROLL
#endif

namespace conv_detail {

/// Output rows per tail call of the implicit GEMM (the GEMM's MC: the block is still in cache).
inline constexpr index_t kTailRows = gemm_detail::kMC;

/// Rows [r0, r0 + count) of group `grp`'s im2col matrix into dst (row stride depth()); taps in the
/// padding are zeros.
inline void im2col_rows(const WindowGeometry& g, NhwcIn x, index_t grp, index_t r0, index_t count, float* dst) {
  const index_t cg = g.in_c_group(), depth = g.depth();
  const std::size_t run = static_cast<std::size_t>(cg) * sizeof(float);
  index_t ow = r0 % g.out_w, oh = (r0 / g.out_w) % g.out_h, n = r0 / (g.out_w * g.out_h);
  for (index_t r = 0; r < count; ++r, dst += depth) {
    float* d = dst;
    for (int kh = 0; kh < g.kernel_h; ++kh) {
      const index_t ih = oh * g.stride_h - g.pad_top + static_cast<index_t>(kh) * g.dilation_h;
      if (ih < 0 || ih >= g.in_h) {
        std::memset(d, 0, run * static_cast<std::size_t>(g.kernel_w));
        d += cg * g.kernel_w;
        continue;
      }
      for (int kw = 0; kw < g.kernel_w; ++kw, d += cg) {
        const index_t iw = ow * g.stride_w - g.pad_left + static_cast<index_t>(kw) * g.dilation_w;
        if (iw < 0 || iw >= g.in_w) std::memset(d, 0, run);
        else std::memcpy(d, x.at(n, ih, iw) + grp * cg, run);
      }
    }
    if (++ow == g.out_w) {
      ow = 0;
      if (++oh == g.out_h) {
        oh = 0;
        ++n;
      }
    }
  }
}

/// Forwards a GEMM's tail call with the block moved by (row0, col0): the caller's tail sees
/// coordinates over the whole conv output.
struct ShiftedTail {
  const GemmEpilogue* user;
  index_t row0, col0;
  static void call(void* ctx, index_t i0, index_t j0, index_t m, index_t n, float* c, index_t ldc) {
    const ShiftedTail& s = *static_cast<const ShiftedTail*>(ctx);
    s.user->tail(s.user->ctx, s.row0 + i0, s.col0 + j0, m, n, c, ldc);
  }
};

inline GemmEpilogue group_epilogue(const GemmEpilogue& ep, ShiftedTail& shift, index_t col0) {
  GemmEpilogue e = ep;
  if (ep.bias) e.bias = ep.bias + col0;
  if (ep.tail) {
    e.tail = &ShiftedTail::call;
    e.ctx = &shift;
  }
  return e;
}

// ---- implicit GEMM ----------------------------------------------------------------------------

/// Most segments one tile's A walk holds: every tap of a kernel up to 7x7. Bigger kernels gather
/// their border tiles with im2col_rows instead.
inline constexpr int kMaxSegments = 49;

/// How the MR rows of one tile of the im2col matrix are read: `count` segments, each `run`
/// contiguous floats per row from a[s][i], times the packed B rows from depth k0[s] on.
/// Interior tiles of a stride-1 conv over all channels walk one segment per kernel row (kw * C
/// adjacent floats); border tiles walk one segment per tap, a tap in the padding reading a run of
/// zeros, and a tap in the padding for every pixel of the tile left out (its products are zero).
/// So no border tile copies its input (a gather cost ~10 % of the 3x3 conv at 32x32).
struct TileWalk {
  int count = 0;
  index_t run = 0;
  index_t k0[kMaxSegments];
  const float* a[kMaxSegments][gemm_detail::kMR];
};

/// C[0:m, 0:n] = epilogue(A B) for one MR x NR tile: A is walked by `t`; B is a packed K x NR
/// panel. The GEMM micro-kernel's loop, with the A panel replaced by pointers.
inline void direct_micro_kernel(const TileWalk& t, const float* KILN_CONV_RESTRICT b, float* KILN_CONV_RESTRICT c,
                                index_t ldc, index_t m, index_t n, int flags, const float* bias, float lo, float hi) {
  using namespace gemm_detail;
  vec acc[kMR][kNV];
  KILN_WINDOW_UNROLL
  for (int i = 0; i < kMR; ++i) {
    KILN_WINDOW_UNROLL
    for (int v = 0; v < kNV; ++v) acc[i][v] = vsplat(0.f);
  }
  for (int s = 0; s < t.count; ++s) {
    const float* ap[kMR];
    KILN_WINDOW_UNROLL
    for (int i = 0; i < kMR; ++i) ap[i] = t.a[s][i];
    const float* bp = b + t.k0[s] * kNR;
    for (index_t r = 0; r < t.run; ++r) {
      vec bv[kNV];
      KILN_WINDOW_UNROLL
      for (int v = 0; v < kNV; ++v) bv[v] = vload(bp + v * kLanes);
      KILN_WINDOW_UNROLL
      for (int i = 0; i < kMR; ++i) {
        const vec av = vsplat(ap[i][r]);
        KILN_WINDOW_UNROLL
        for (int v = 0; v < kNV; ++v) acc[i][v] = vfma(av, bv[v], acc[i][v]);
      }
      bp += kNR;
    }
  }
  KILN_WINDOW_UNROLL
  for (int i = 0; i < kMR; ++i)
    if (i < m) finish_row<kNV>(acc[i], c + i * ldc, n, flags, bias, lo, hi);
}

/// Whether an interior window row is one run of kw * C floats: adjacent taps, every channel in
/// the group, adjacent pixels in memory.
inline bool window_rows_merge(const WindowGeometry& g, NhwcIn x) {
  return g.groups == 1 && (g.kernel_w == 1 || (g.dilation_w == 1 && x.sw == g.in_c));
}

/// Whether border tiles walk per tap (kMaxSegments taps, one bit each in a 64-bit mask) rather
/// than gather into the workspace tile.
inline bool taps_fit_walk(const WindowGeometry& g) {
  return static_cast<index_t>(g.kernel_h) * g.kernel_w <= kMaxSegments;
}

/// The output pixels whose whole window lies inside the input: rows [h0, h1) x columns [w0, w1).
struct InteriorBox {
  index_t h0 = 0, h1 = 0, w0 = 0, w1 = 0;
  bool contains(index_t oh, index_t ow) const { return oh >= h0 && oh < h1 && ow >= w0 && ow < w1; }
};

inline void interior_span(index_t out, int stride, int pad, int kernel, int dilation, index_t extent, index_t& lo,
                          index_t& hi) {
  lo = 0;
  while (lo < out && window_detail::taps(lo, stride, pad, kernel, dilation, extent).t0 > 0) ++lo;
  hi = out;
  while (hi > lo && window_detail::taps(hi - 1, stride, pad, kernel, dilation, extent).t1 < kernel) --hi;
}

inline InteriorBox interior_box(const WindowGeometry& g) {
  InteriorBox b;
  interior_span(g.out_h, g.stride_h, g.pad_top, g.kernel_h, g.dilation_h, g.in_h, b.h0, b.h1);
  interior_span(g.out_w, g.stride_w, g.pad_left, g.kernel_w, g.dilation_w, g.in_w, b.w0, b.w1);
  return b;
}

/// The output pixel a tile starts at, carried from tile to tile (no divisions per tile), with the
/// offset in x of its window's first tap (a tap in the padding is never read).
struct PixelCursor {
  index_t n = 0, oh = 0, ow = 0, off = 0;

  void locate(const WindowGeometry& g, NhwcIn x, index_t grp) {
    off = n * x.sn + (oh * g.stride_h - g.pad_top) * x.sh + (ow * g.stride_w - g.pad_left) * x.sw + grp * g.in_c_group();
  }
  void next(const WindowGeometry& g, NhwcIn x, index_t grp) {
    if (++ow < g.out_w) {
      off += g.stride_w * x.sw;
      return;
    }
    ow = 0;
    if (++oh == g.out_h) {
      oh = 0;
      ++n;
    }
    locate(g, x, grp);
  }
};

/// The walk of group `grp` over the m output pixels from `at` (which moves past them): rows past m
/// repeat the last pixel (computed, never stored). `zeros` holds C / groups zeros; `tile` MR *
/// depth() floats (gather only). Loops run over all MR rows so that they unroll (this runs once
/// per tile for all of N).
inline void tile_walk(const WindowGeometry& g, NhwcIn x, const InteriorBox& box, index_t grp, PixelCursor& at,
                      index_t m, const float* zeros, float* tile, TileWalk& t) {
  using gemm_detail::kMR;
  const index_t cg = g.in_c_group();
  const index_t r = (at.n * g.out_h + at.oh) * g.out_w + at.ow;  // gather only
  index_t ph[kMR], pw[kMR], off[kMR];  // the tile's output pixels
  bool interior = true;
  KILN_CONV_WALK_UNROLL
  for (int i = 0; i < kMR; ++i) {
    if (i == 0 || i < m) {
      ph[i] = at.oh, pw[i] = at.ow, off[i] = at.off;
      interior = interior && box.contains(at.oh, at.ow);
      at.next(g, x, grp);
    } else {
      ph[i] = ph[i - 1], pw[i] = pw[i - 1], off[i] = off[i - 1];
    }
  }
  const index_t row_step = g.dilation_h * x.sh, col_step = g.dilation_w * x.sw;
  if (interior && window_rows_merge(g, x)) {
    t.run = g.kernel_w * cg;
    t.count = g.kernel_h;
    for (int kh = 0; kh < g.kernel_h; ++kh) {
      t.k0[kh] = kh * t.run;
      KILN_CONV_WALK_UNROLL
      for (int i = 0; i < kMR; ++i) t.a[kh][i] = x.data + off[i] + kh * row_step;
    }
  } else if (taps_fit_walk(g)) {
    // Bit kh * kernel_w + kw of valid[i]: that tap of pixel i lies inside the input.
    std::uint64_t valid[kMR], any = 0;
    KILN_CONV_WALK_UNROLL
    for (int i = 0; i < kMR; ++i) {
      const window_detail::TapRange th = window_detail::taps(ph[i], g.stride_h, g.pad_top, g.kernel_h, g.dilation_h, g.in_h);
      const window_detail::TapRange tw = window_detail::taps(pw[i], g.stride_w, g.pad_left, g.kernel_w, g.dilation_w, g.in_w);
      const std::uint64_t cols = (std::uint64_t{1} << tw.t1) - (std::uint64_t{1} << tw.t0);
      valid[i] = 0;
      for (int kh = th.t0; kh < th.t1; ++kh) valid[i] |= cols << (kh * g.kernel_w);
      any |= valid[i];
    }
    t.run = cg;
    t.count = 0;
    int tap = 0;
    for (int kh = 0; kh < g.kernel_h; ++kh)
      for (int kw = 0; kw < g.kernel_w; ++kw, ++tap) {
        if (!((any >> tap) & 1)) continue;  // padding for every pixel: no products to add
        const index_t step = kh * row_step + kw * col_step;
        const float** a = t.a[t.count];
        KILN_CONV_WALK_UNROLL
        for (int i = 0; i < kMR; ++i) a[i] = ((valid[i] >> tap) & 1) ? x.data + off[i] + step : zeros;
        t.k0[t.count++] = tap * cg;
      }
  } else {
    im2col_rows(g, x, grp, r, m, tile);
    t.run = g.depth();
    t.count = 1;
    t.k0[0] = 0;
    KILN_CONV_WALK_UNROLL
    for (int i = 0; i < kMR; ++i) t.a[0][i] = tile + (i < m ? i : m - 1) * t.run;
  }
}

/// The general conv as an implicit GEMM over packed weights (one conv_pack_weights block per
/// group); `tile` holds MR * depth() floats (the gathered border tiles of kernels too big for a
/// per-tap walk, else the zeros that padding taps read).
inline void implicit_gemm(const WindowGeometry& g, NhwcIn x, const float* packed, float* out, index_t ldc,
                          const GemmEpilogue& ep, float* tile) {
  using gemm_detail::kMR;
  using gemm_detail::kNR;
  const index_t rows = g.rows(), depth = g.depth(), ng = g.out_c_group();
  const std::size_t per_group = packed_b_size(depth, ng);
  const int flags = (ep.bias ? gemm_detail::kBias : 0) | (ep.clamp ? gemm_detail::kClamp : 0);
  if (taps_fit_walk(g)) std::memset(tile, 0, static_cast<std::size_t>(g.in_c_group()) * sizeof(float));
  const InteriorBox box = interior_box(g);
  TileWalk walk;
  for (int grp = 0; grp < g.groups; ++grp) {
    const float* bg = packed + grp * per_group;
    PixelCursor at;
    at.locate(g, x, grp);
    for (index_t r0 = 0; r0 < rows; r0 += kTailRows) {
      const index_t block = kTailRows < rows - r0 ? kTailRows : rows - r0;
      for (index_t r = r0; r < r0 + block; r += kMR) {
        const index_t m = kMR < r0 + block - r ? kMR : r0 + block - r;
        tile_walk(g, x, box, grp, at, m, tile, tile, walk);
        for (index_t j = 0; j < ng; j += kNR) {
          const index_t col = grp * ng + j;
          direct_micro_kernel(walk, bg + (j / kNR) * depth * kNR, out + r * ldc + col, ldc, m,
                              kNR < ng - j ? kNR : ng - j, flags, ep.bias ? ep.bias + col : nullptr, ep.lo, ep.hi);
        }
      }
      if (ep.tail) ep.tail(ep.ctx, r0, grp * ng, block, ng, out + r0 * ldc + grp * ng, ldc);
    }
  }
}

// ---- depthwise --------------------------------------------------------------------------------

/// One output pixel, channels [o0, o0 + V*kLanes) with multiplier 1: V vector accumulators held
/// over every tap of the window.
template <int V>
KILN_WINDOW_INLINE void depthwise_pixel(const WindowGeometry& g, NhwcIn x, index_t n, const window_detail::TapRange& th,
                                        const window_detail::TapRange& tw, const float* wt, index_t o0,
                                        const float* bias, bool clamp, float lo, float hi, float* out) {
  using namespace window_detail;
  constexpr int L = kLanes;
  vec acc[V];
  KILN_WINDOW_UNROLL
  for (int v = 0; v < V; ++v) acc[v] = bias ? vload(bias + o0 + v * L) : vsplat(0.f);
  for (int kh = th.t0; kh < th.t1; ++kh) {
    const index_t ih = th.origin + static_cast<index_t>(kh) * g.dilation_h;
    for (int kw = tw.t0; kw < tw.t1; ++kw) {
      const float* xp = x.at(n, ih, tw.origin + static_cast<index_t>(kw) * g.dilation_w) + o0;
      const float* wp = wt + (static_cast<index_t>(kh) * g.kernel_w + kw) * g.out_c + o0;
      KILN_WINDOW_UNROLL
      for (int v = 0; v < V; ++v) acc[v] = vfma(vload(xp + v * L), vload(wp + v * L), acc[v]);
    }
  }
  if (clamp) {
    const vec vlo = vsplat(lo), vhi = vsplat(hi);
    KILN_WINDOW_UNROLL
    for (int v = 0; v < V; ++v) acc[v] = vclamp(acc[v], vlo, vhi);
  }
  KILN_WINDOW_UNROLL
  for (int v = 0; v < V; ++v) vstore(out + o0 + v * L, acc[v]);
}

/// kP adjacent output pixels whose windows lie inside the input along W, channels
/// [o0, o0 + V*kLanes), multiplier 1: each weight vector is loaded once for the kP pixels (one
/// load per pixel per tap would make the loop load-bound at half the FMA rate).
inline constexpr int kDepthwisePixels = 4;
template <int V>
KILN_WINDOW_INLINE void depthwise_pixels(const WindowGeometry& g, NhwcIn x, index_t n,
                                         const window_detail::TapRange& th, index_t iw0, const float* wt,
                                         index_t o0, const float* bias, bool clamp, float lo, float hi, float* out,
                                         index_t ldc) {
  using namespace window_detail;
  constexpr int L = kLanes, P = kDepthwisePixels;
  vec acc[P][V];
  KILN_WINDOW_UNROLL
  for (int p = 0; p < P; ++p) {
    KILN_WINDOW_UNROLL
    for (int v = 0; v < V; ++v) acc[p][v] = bias ? vload(bias + o0 + v * L) : vsplat(0.f);
  }
  const index_t pixel_step = g.stride_w * x.sw;
  for (int kh = th.t0; kh < th.t1; ++kh) {
    const float* xrow = x.at(n, th.origin + static_cast<index_t>(kh) * g.dilation_h, iw0) + o0;
    const float* wrow = wt + static_cast<index_t>(kh) * g.kernel_w * g.out_c + o0;
    for (int kw = 0; kw < g.kernel_w; ++kw) {
      const float* xp = xrow + static_cast<index_t>(kw) * g.dilation_w * x.sw;
      const float* wp = wrow + static_cast<index_t>(kw) * g.out_c;
      vec wv[V];
      KILN_WINDOW_UNROLL
      for (int v = 0; v < V; ++v) wv[v] = vload(wp + v * L);
      KILN_WINDOW_UNROLL
      for (int p = 0; p < P; ++p) {
        KILN_WINDOW_UNROLL
        for (int v = 0; v < V; ++v) acc[p][v] = vfma(vload(xp + p * pixel_step + v * L), wv[v], acc[p][v]);
      }
    }
  }
  const vec vlo = vsplat(lo), vhi = vsplat(hi);
  KILN_WINDOW_UNROLL
  for (int p = 0; p < P; ++p) {
    KILN_WINDOW_UNROLL
    for (int v = 0; v < V; ++v) vstore(out + p * ldc + o0 + v * L, clamp ? vclamp(acc[p][v], vlo, vhi) : acc[p][v]);
  }
}

/// clamp(x, lo, hi) in two instructions where the ISA allows: x86's max/min return their second
/// operand when either is NaN, so max(lo, x) then min(hi, .) passes a NaN x through and treats
/// -0 as the select-based window_detail::vclamp does (x < lo ? lo : x > hi ? hi : x), bit for bit.
/// Elsewhere (NEON max/min differ on -0) the select form.
KILN_WINDOW_INLINE window_detail::vec depthwise_clamp(const window_detail::vec& x, const window_detail::vec& lo,
                                                      const window_detail::vec& hi) {
#if KILN_SIMD && (defined(__SSE2__) || defined(_M_X64))
  return xsimd::min(hi, xsimd::max(lo, x));
#else
  return window_detail::vclamp(x, lo, hi);
#endif
}

/// Output pixels [p0, p1) of Q output rows of a 3-wide, stride-1, undilated depthwise window,
/// multiplier 1, for the channel vector at xr / w / b / o, streamed left to right. Each row sees
/// R kernel rows (1..3, the ones inside the input); row q reads input rows xr[q .. q + R) (Q = 2
/// needs stride_h == dilation_h == 1: the two rows share R - 1 input rows). Each input column is
/// loaded once and feeds the three pixels per output row whose windows hold it (taps 2, 1, 0), so
/// a pixel costs (R + Q - 1) / Q loads and 3R FMAs, the 3R weight vectors stay in registers, and
/// the only address math is one offset and one output pointer stepping by a pixel. Columns
/// outside [0, in_w) are padding: their FMAs are skipped, so border pixels need no separate path.
/// Needs pad_left <= 2 (a pixel's last column is >= 0).
template <int R, int Q>
struct DepthwiseStream3 {
  using vec = window_detail::vec;
  static constexpr int kRows = R + Q - 1;  // input rows read
  static constexpr int kStride = 1;
  vec w[R][3];
  vec b, lo, hi;
  const float* xr[R + Q - 1];  // column 0 of each input row, at this channel vector
  index_t sw, in_w, pad_left, orow;  // orow: floats between the Q output rows

  /// Column at `off` (inside the input) completes a0 (tap 2), advances a1 (tap 1), starts a2 (tap 0).
  KILN_WINDOW_INLINE void column(index_t off, vec (&a0)[Q], vec (&a1)[Q], vec (&a2)[Q]) const {
    using namespace window_detail;
    KILN_WINDOW_UNROLL
    for (int q = 0; q < Q; ++q) a2[q] = b;
    KILN_WINDOW_UNROLL
    for (int i = 0; i < R + Q - 1; ++i) {
      const vec xv = vload(xr[i] + off);
      KILN_WINDOW_UNROLL
      for (int q = 0; q < Q; ++q) {
        const int r = i - q;  // kernel row of input row i in output row q
        if (r < 0 || r >= R) continue;
        a0[q] = vfma(xv, w[r][2], a0[q]);
        a1[q] = vfma(xv, w[r][1], a1[q]);
        a2[q] = vfma(xv, w[r][0], a2[q]);
      }
    }
  }
  KILN_WINDOW_INLINE void store(float* o, const vec (&a)[Q]) const {
    KILN_WINDOW_UNROLL
    for (int q = 0; q < Q; ++q) window_detail::vstore(o + q * orow, depthwise_clamp(a[q], lo, hi));
  }

  KILN_WINDOW_INLINE void pixels(index_t p0, index_t p1, float* o, index_t ldc) const {
    using namespace window_detail;
    // Before pixel p0: a0 holds its taps 0-1 (columns j0, j0 + 1), a1 tap 0 of pixel p0 + 1.
    vec a0[Q], a1[Q], a2[Q];
    KILN_WINDOW_UNROLL
    for (int q = 0; q < Q; ++q) a0[q] = a1[q] = a2[q] = b;
    const index_t j0 = p0 - pad_left;
    for (index_t j = j0; j < j0 + 2; ++j) {
      if (j < 0 || j >= in_w) continue;
      KILN_WINDOW_UNROLL
      for (int i = 0; i < R + Q - 1; ++i) {
        const vec xv = vload(xr[i] + j * sw);
        KILN_WINDOW_UNROLL
        for (int q = 0; q < Q; ++q) {
          const int r = i - q;
          if (r < 0 || r >= R) continue;
          if (j == j0) {
            a0[q] = vfma(xv, w[r][0], a0[q]);
          } else {
            a0[q] = vfma(xv, w[r][1], a0[q]);
            a1[q] = vfma(xv, w[r][0], a1[q]);
          }
        }
      }
    }
    // Pixel p reads column p - pad + 2 last: inside the input for p < in_w + pad - 2.
    index_t inner = in_w + pad_left - 2;
    inner = inner < p0 ? p0 : (inner > p1 ? p1 : inner);
    index_t p = p0, off = (j0 + 2) * sw;
    // Three pixels per trip, so the accumulators rotate by renaming instead of moves.
    for (; p + 3 <= inner; p += 3, off += 3 * sw, o += 3 * ldc) {
      column(off, a0, a1, a2);
      store(o, a0);
      column(off + sw, a1, a2, a0);
      store(o + ldc, a1);
      column(off + 2 * sw, a2, a0, a1);
      store(o + 2 * ldc, a2);
    }
    for (; p < p1; ++p, off += sw, o += ldc) {
      if (p < inner) {
        column(off, a0, a1, a2);
      } else {  // the column is right padding: nothing to add
        KILN_WINDOW_UNROLL
        for (int q = 0; q < Q; ++q) a2[q] = b;
      }
      store(o, a0);
      KILN_WINDOW_UNROLL
      for (int q = 0; q < Q; ++q) {
        a0[q] = a1[q];
        a1[q] = a2[q];
      }
    }
  }
};

/// DepthwiseStream3 for stride 2 along W: pixel p reads input columns 2p - pad .. 2p - pad + 2, so
/// its first column is the previous pixel's last. Streaming loads each column once per kernel row
/// (2 loads per pixel and row instead of 3) and keeps two accumulators per output row: the pixel
/// in progress (a) and the next one (nx), started by the shared column. Rows as DepthwiseStream3,
/// except that Q = 2 needs stride_h 2 (row q reads input rows 2q .. 2q + 2: the two share one).
template <int R, int Q>
struct DepthwiseStream3Stride2 {
  using vec = window_detail::vec;
  static constexpr int kRows = R + 2 * (Q - 1);
  static constexpr int kStride = 2;
  vec w[R][3];
  vec b, lo, hi;
  const float* xr[kRows];  // column 0 of each input row, at this channel vector
  index_t sw, in_w, pad_left, orow;

  /// The column at `off`: tap 1 of a (Shared false), or tap 2 of a and tap 0 of nx (Shared true:
  /// the column two pixels share).
  template <bool Shared>
  KILN_WINDOW_INLINE void column(index_t off, vec (&a)[Q], vec (&nx)[Q]) const {
    using namespace window_detail;
    KILN_WINDOW_UNROLL
    for (int i = 0; i < kRows; ++i) {
      const vec xv = vload(xr[i] + off);
      KILN_WINDOW_UNROLL
      for (int q = 0; q < Q; ++q) {
        const int r = i - 2 * q;  // kernel row of input row i in output row q
        if (r < 0 || r >= R) continue;
        if constexpr (Shared) {
          a[q] = vfma(xv, w[r][2], a[q]);
          nx[q] = vfma(xv, w[r][0], nx[q]);
        } else {
          a[q] = vfma(xv, w[r][1], a[q]);
        }
      }
    }
  }
  KILN_WINDOW_INLINE void store(float* o, const vec (&a)[Q]) const {
    KILN_WINDOW_UNROLL
    for (int q = 0; q < Q; ++q) window_detail::vstore(o + q * orow, depthwise_clamp(a[q], lo, hi));
  }
  /// Pixel whose first column is j, any of its columns possibly padding; a becomes the next pixel.
  KILN_WINDOW_INLINE void edge_pixel(index_t j, float* o, vec (&a)[Q]) const {
    vec nx[Q];
    KILN_WINDOW_UNROLL
    for (int q = 0; q < Q; ++q) nx[q] = b;
    if (j + 1 >= 0 && j + 1 < in_w) column<false>((j + 1) * sw, a, nx);
    if (j + 2 >= 0 && j + 2 < in_w) column<true>((j + 2) * sw, a, nx);
    store(o, a);
    KILN_WINDOW_UNROLL
    for (int q = 0; q < Q; ++q) a[q] = nx[q];
  }

  KILN_WINDOW_INLINE void pixels(index_t p0, index_t p1, float* o, index_t ldc) const {
    using namespace window_detail;
    vec a[Q], nx[Q];
    KILN_WINDOW_UNROLL
    for (int q = 0; q < Q; ++q) a[q] = b;
    index_t j = 2 * p0 - pad_left;  // first column of pixel p
    if (j >= 0 && j < in_w) {       // tap 0 of pixel p0
      KILN_WINDOW_UNROLL
      for (int q = 0; q < Q; ++q) nx[q] = b;
      column<true>(j * sw, nx, a);  // (nx: a throwaway tap 2 of the pixel before p0)
    }
    index_t p = p0;
    for (; p < p1 && j + 1 < 0; ++p, j += 2, o += ldc) edge_pixel(j, o, a);
    // Pixel p's last column 2p - pad + 2 is inside the input for p <= (in_w + pad - 3) / 2.
    index_t inner = in_w + pad_left - 3 >= 0 ? (in_w + pad_left - 3) / 2 + 1 : p;
    inner = inner < p ? p : (inner > p1 ? p1 : inner);
    index_t off = j * sw;
    // Two pixels per trip, so the accumulators rotate by renaming instead of moves.
    for (; p + 2 <= inner; p += 2, j += 4, off += 4 * sw, o += 2 * ldc) {
      KILN_WINDOW_UNROLL
      for (int q = 0; q < Q; ++q) nx[q] = b;
      column<false>(off + sw, a, nx);
      column<true>(off + 2 * sw, a, nx);
      store(o, a);
      KILN_WINDOW_UNROLL
      for (int q = 0; q < Q; ++q) a[q] = b;
      column<false>(off + 3 * sw, nx, a);
      column<true>(off + 4 * sw, nx, a);
      store(o + ldc, nx);
    }
    for (; p < p1; ++p, j += 2, o += ldc) edge_pixel(j, o, a);
  }
};

/// Whether DepthwiseStream3 (stride_w 1) or DepthwiseStream3Stride2 (stride_w 2) handles g
/// (multiplier 1 and at least one full vector of channels).
/// Stride 2 and 3-4-row groups of stride 1 stream only up to this many channels (pixels of
/// 512 B): a stream walks pixels C floats apart, and from 1 KB pixels on their lines fall into
/// 4 or fewer of the L1's 64 sets (measured: 14x14x512 and 28x28x256 were 7-54 % slower than
/// the register-block path at stride 2 and than row pairs at stride 1).
inline constexpr index_t kDepthwiseLongStreamChannels = 128;

constexpr bool depthwise_streams3(const WindowGeometry& g) {
  return g.out_c == g.in_c && g.out_c >= kLanes && g.kernel_w == 3 &&
         (g.stride_w == 1 || (g.stride_w == 2 && g.in_c <= kDepthwiseLongStreamChannels)) && g.dilation_w == 1 &&
         g.kernel_h <= 3 && g.pad_left >= 0 && g.pad_left <= 2;
}

/// Pixels per DepthwiseStream3 run. A run touches one channel vector in each pixel of its R + Q - 1
/// input and Q output rows, and the next channel vector reads the rest of the same cache lines, so
/// they should still be in L1 then. With a pixel stride of a power-of-two number of lines those
/// lines fall into few of the L1's sets (stride 256 B: 16 of 64), and whole 56-pixel rows overflowed
/// them (cachegrind: twice the D1 misses of 16-pixel runs; 20-45 % slower at 56x56x64 and
/// 28x28x128). Runs are sized to fill about 3/4 of the ways of the sets they use, for an L1 of 64
/// sets x 8 ways (32 KiB: x86 and most ARM cores, whose fewer ways only shorten the runs' reach);
/// the cost is a 2-column prologue per run.
inline index_t depthwise_run_pixels(index_t pixel_stride_floats, int lines_per_pixel) {
  index_t stride_lines = pixel_stride_floats * static_cast<index_t>(sizeof(float)) / 64, sets = 64;
  if (stride_lines < 1) stride_lines = 1;
  while (sets > 1 && stride_lines % 2 == 0) {  // 64 / gcd(stride_lines, 64) sets are reachable
    sets /= 2;
    stride_lines /= 2;
  }
  const index_t run = 6 * sets / lines_per_pixel;
  return run < 4 ? 4 : (run > 64 ? 64 : run);
}

/// Q output rows (from output row oh, tap range th of the first) through Stream<R, Q>
/// (DepthwiseStream3 or DepthwiseStream3Stride2): chunks of pixels, every channel vector of a
/// chunk in turn (its 3R weight vectors loaded once per chunk). A channel count that is not a
/// multiple of the vector width ends with one vector overlapping the previous one (the same
/// values written twice).
template <template <int, int> class Stream, int R, int Q>
inline void depthwise_stream3_rows(const WindowGeometry& g, NhwcIn x, index_t n, const window_detail::TapRange& th,
                                   const float* wt, float* orow, index_t ldc, const GemmEpilogue& ep) {
  using namespace window_detail;
  using S = Stream<R, Q>;
  constexpr index_t L = kLanes;
  const index_t C = g.out_c;
  S s;
  s.sw = x.sw;
  s.in_w = g.in_w;
  s.pad_left = g.pad_left;
  s.orow = g.out_w * ldc;
  // Without a clamp the bounds are infinite: clamping then returns x exactly (NaN and -0
  // included, see depthwise_clamp), and the stream has no branch per pixel.
  s.lo = vsplat(ep.clamp ? ep.lo : -std::numeric_limits<float>::infinity());
  s.hi = vsplat(ep.clamp ? ep.hi : std::numeric_limits<float>::infinity());
  const float* rows[S::kRows];
  const float* wrow = wt + static_cast<index_t>(th.t0) * 3 * C;
  KILN_WINDOW_UNROLL
  for (int i = 0; i < S::kRows; ++i) rows[i] = x.at(n, th.origin + static_cast<index_t>(th.t0 + i) * g.dilation_h, 0);
  // Groups of 3-4 rows take whole rows (up to 64 pixels): their 2-column prologue and 9 weight
  // loads per run cost more than the L1 misses of long runs (measured at 56x56x64 and 28x28x128).
  // A stride-2 pixel touches two input pixels per input row.
  index_t run = Q >= 3 ? 64 : depthwise_run_pixels(x.sw, S::kStride * S::kRows + Q);
  const index_t runs = (g.out_w + run - 1) / run;
  run = (g.out_w + runs - 1) / runs;  // equal runs, no short last one
  for (index_t p0 = 0; p0 < g.out_w; p0 += run) {
    const index_t p1 = p0 + run < g.out_w ? p0 + run : g.out_w;
    for (index_t c0 = 0; c0 < C; c0 += L) {
      const index_t c = c0 + L <= C ? c0 : C - L;
      KILN_WINDOW_UNROLL
      for (int i = 0; i < S::kRows; ++i) s.xr[i] = rows[i] + c;
      KILN_WINDOW_UNROLL
      for (int r = 0; r < R; ++r) {
        KILN_WINDOW_UNROLL
        for (int k = 0; k < 3; ++k) s.w[r][k] = vload(wrow + (r * 3 + k) * C + c);
      }
      s.b = ep.bias ? vload(ep.bias + c) : vsplat(0.f);
      s.pixels(p0, p1, orow + p0 * ldc + c, ldc);
    }
  }
}

/// One output row through Stream<R, 1>, R = the kernel rows inside the input (1..3).
template <template <int, int> class Stream>
inline void depthwise_stream3_row(const WindowGeometry& g, NhwcIn x, index_t n, const window_detail::TapRange& th,
                                  const float* wt, float* orow, index_t ldc, const GemmEpilogue& ep) {
  if (th.t1 - th.t0 == 3) depthwise_stream3_rows<Stream, 3, 1>(g, x, n, th, wt, orow, ldc, ep);
  else if (th.t1 - th.t0 == 2) depthwise_stream3_rows<Stream, 2, 1>(g, x, n, th, wt, orow, ldc, ep);
  else depthwise_stream3_rows<Stream, 1, 1>(g, x, n, th, wt, orow, ldc, ep);
}

/// Up to kDepthwiseRowGroup output rows from row oh (tap range th) through DepthwiseStream3
/// (stride_w 1) or DepthwiseStream3Stride2 (stride_w 2); returns how many. Stride 1: rows are
/// grouped while each sees all three kernel rows (stride and dilation 1 along H): Q rows read
/// Q + 2 input rows, so each input row is loaded (Q + 2) / Q times per channel vector instead of
/// 3 (Q = 4: 1.5), and each loaded column feeds 3Q FMAs. Q = 4 needs 9 weight + 12 accumulator
/// + 3 constant vectors, so it is used with 32 vector registers (AVX-512VL, aarch64); with 16
/// (AVX2, SSE, armv7) it spilled (callgrind, -mavx2: 1.4x the loads of Q = 2), so groups stop at
/// two rows there. Stride 2 (both axes): pairs of rows, which share one of their five input rows.
#if KILN_SIMD && defined(__AVX512VL__)
inline constexpr index_t kDepthwiseRowGroup = 4;  // 8-lane vectors in ymm0-31 (AVX-512 capped at AVX2 width)
#else
inline constexpr index_t kDepthwiseRowGroup = kVectorRegs >= 32 ? 4 : 2;
#endif
inline index_t depthwise_stream3_group(const WindowGeometry& g, NhwcIn x, index_t n, index_t oh,
                                       const window_detail::TapRange& th, const float* wt, float* orow, index_t ldc,
                                       const GemmEpilogue& ep) {
  const bool full = g.kernel_h == 3 && g.dilation_h == 1 && th.t0 == 0 && th.t1 == 3;
  if (g.stride_w == 2) {
    // Rows oh and oh + 1 read input rows th.origin .. th.origin + 4.
    if (full && g.stride_h == 2 && oh + 1 < g.out_h && th.origin + 4 < g.in_h) {
      depthwise_stream3_rows<DepthwiseStream3Stride2, 3, 2>(g, x, n, th, wt, orow, ldc, ep);
      return 2;
    }
    depthwise_stream3_row<DepthwiseStream3Stride2>(g, x, n, th, wt, orow, ldc, ep);
    return 1;
  }
  index_t group = 1;
  if (full && g.stride_h == 1) {
    // Rows oh .. oh + group - 1 read input rows th.origin .. th.origin + group + 1.
    group = g.out_h - oh;
    if (g.in_h - th.origin - 2 < group) group = g.in_h - th.origin - 2;
    const index_t most = g.in_c <= kDepthwiseLongStreamChannels ? kDepthwiseRowGroup : 2;
    if (group > most) group = most;
  }
  if constexpr (kDepthwiseRowGroup >= 4) {
    if (group == 4) {
      depthwise_stream3_rows<DepthwiseStream3, 3, 4>(g, x, n, th, wt, orow, ldc, ep);
      return 4;
    }
    if (group == 3) {
      depthwise_stream3_rows<DepthwiseStream3, 3, 3>(g, x, n, th, wt, orow, ldc, ep);
      return 3;
    }
  }
  if (group >= 2) {
    depthwise_stream3_rows<DepthwiseStream3, 3, 2>(g, x, n, th, wt, orow, ldc, ep);
    return 2;
  }
  depthwise_stream3_row<DepthwiseStream3>(g, x, n, th, wt, orow, ldc, ep);
  return 1;
}

/// Depthwise conv, weight transposed to wt[kh][kw][out_c]; output rows of ldc floats.
inline void depthwise(const WindowGeometry& g, NhwcIn x, const float* wt, float* out, index_t ldc,
                      const GemmEpilogue& ep) {
  using namespace window_detail;
  constexpr index_t L = kLanes;
  const index_t C = g.out_c, mult = g.out_c / g.in_c;
  for (index_t n = 0; n < g.batch; ++n)
    for (index_t oh = 0; oh < g.out_h; ++oh) {
      const TapRange th = taps(oh, g.stride_h, g.pad_top, g.kernel_h, g.dilation_h, g.in_h);
      const index_t row0 = (n * g.out_h + oh) * g.out_w;
      float* orow = out + row0 * ldc;
      if (depthwise_streams3(g) && th.t1 - th.t0 >= 1) {
        const index_t rows = depthwise_stream3_group(g, x, n, oh, th, wt, orow, ldc, ep);
        if (ep.tail) ep.tail(ep.ctx, row0, 0, rows * g.out_w, C, orow, ldc);
        oh += rows - 1;
        continue;
      }
      // Channels [c0, C) of pixel ow one at a time: the tail of the vectors, and every channel
      // when the multiplier is > 1 (output channel o reads input channel o / mult).
      auto scalar_channels = [&](index_t ow, index_t c0) {
        if (c0 >= C) return;  // no tail channels (C a multiple of the vector): skip the tap setup
        const TapRange tw = taps(ow, g.stride_w, g.pad_left, g.kernel_w, g.dilation_w, g.in_w);
        float* o = orow + ow * ldc;
        for (index_t c = c0; c < C; ++c) {
          float acc = ep.bias ? ep.bias[c] : 0.f;
          for (int kh = th.t0; kh < th.t1; ++kh) {
            const index_t ih = th.origin + static_cast<index_t>(kh) * g.dilation_h;
            for (int kw = tw.t0; kw < tw.t1; ++kw) {
              const float xv = x.at(n, ih, tw.origin + static_cast<index_t>(kw) * g.dilation_w)[c / mult];
              acc += xv * wt[(static_cast<index_t>(kh) * g.kernel_w + kw) * C + c];
            }
          }
          if (ep.clamp) acc = acc < ep.lo ? ep.lo : (acc > ep.hi ? ep.hi : acc);
          o[c] = acc;
        }
      };
      for (index_t ow = 0; ow < g.out_w;) {
        // Blocks of kDepthwisePixels pixels whose windows are inside the input along W.
        if (mult == 1 && C >= L && ow + kDepthwisePixels <= g.out_w) {
          const index_t last = ow + kDepthwisePixels - 1;
          const index_t iw0 = ow * g.stride_w - g.pad_left;
          if (iw0 >= 0 && last * g.stride_w - g.pad_left + static_cast<index_t>(g.kernel_w - 1) * g.dilation_w < g.in_w) {
            float* o = orow + ow * ldc;
            index_t c = 0;
            for (; c + 2 * L <= C; c += 2 * L)
              depthwise_pixels<2>(g, x, n, th, iw0, wt, c, ep.bias, ep.clamp, ep.lo, ep.hi, o, ldc);
            for (; c + L <= C; c += L)
              depthwise_pixels<1>(g, x, n, th, iw0, wt, c, ep.bias, ep.clamp, ep.lo, ep.hi, o, ldc);
            for (index_t p = 0; p < kDepthwisePixels; ++p) scalar_channels(ow + p, c);
            ow += kDepthwisePixels;
            continue;
          }
        }
        const TapRange tw = taps(ow, g.stride_w, g.pad_left, g.kernel_w, g.dilation_w, g.in_w);
        float* o = orow + ow * ldc;
        index_t c = 0;
        if (mult == 1) {
          for (; c + 4 * L <= C; c += 4 * L) depthwise_pixel<4>(g, x, n, th, tw, wt, c, ep.bias, ep.clamp, ep.lo, ep.hi, o);
          for (; c + L <= C; c += L) depthwise_pixel<1>(g, x, n, th, tw, wt, c, ep.bias, ep.clamp, ep.lo, ep.hi, o);
        }
        scalar_channels(ow, c);
        ++ow;
      }
      if (ep.tail) ep.tail(ep.ctx, row0, 0, g.out_w, C, orow, ldc);
    }
}

}  // namespace conv_detail

/// Floats of the prepacked weight (conv_pack_weights): one packed GEMM B per group, or the
/// [kh][kw][out_c] transpose for depthwise.
constexpr std::size_t conv_packed_weight_floats(const WindowGeometry& g) {
  if (conv_algorithm(g) == ConvAlgorithm::depthwise)
    return static_cast<std::size_t>(g.kernel_h) * g.kernel_w * g.out_c;
  return static_cast<std::size_t>(g.groups) * packed_b_size(g.depth(), g.out_c_group());
}

/// Packs an OHWI weight once for repeated conv2d calls.
inline void conv_pack_weights(const WindowGeometry& g, const float* w_ohwi, float* packed) {
  const index_t taps = static_cast<index_t>(g.kernel_h) * g.kernel_w;
  if (conv_algorithm(g) == ConvAlgorithm::depthwise) {
    // OHWI with one input channel per group: w[o][t] -> packed[t][o].
    for (index_t o = 0; o < g.out_c; ++o)
      for (index_t t = 0; t < taps; ++t) packed[t * g.out_c + o] = w_ohwi[o * taps + t];
    return;
  }
  const index_t depth = g.depth(), ng = g.out_c_group();
  const std::size_t per_group = packed_b_size(depth, ng);
  for (int grp = 0; grp < g.groups; ++grp)
    pack_b(depth, ng, MatrixRef{w_ohwi + grp * ng * depth, 1, depth}, packed + grp * per_group);
}

/// Scratch floats conv2d needs: the im2col chunk and the GEMM's packing buffers, or the
/// transposed depthwise weight when it is not prepacked.
constexpr std::size_t conv_workspace_floats(const WindowGeometry& g, bool prepacked) {
  const ConvAlgorithm a = conv_algorithm(g);
  if (a == ConvAlgorithm::depthwise) return prepacked ? 0 : conv_packed_weight_floats(g);
  const index_t depth = g.depth();  // in_c_group() for pointwise
  if (a == ConvAlgorithm::pointwise) return gemm_workspace_size(g.rows(), g.out_c_group(), depth, prepacked);
  // The implicit GEMM: one tile (zeros for padding taps, or a gathered tile), and the packed
  // weights when they are not prepacked.
  const std::size_t tile = align_up(static_cast<std::size_t>(gemm_detail::kMR * depth), kAlignment / sizeof(float));
  return tile + (prepacked ? 0 : conv_packed_weight_floats(g));
}

/// out[rows, out_c] (row stride ldc) = epilogue(conv(x, w)). Either w_ohwi (the weight as the
/// model holds it) or packed (conv_pack_weights) is used: packed when non-null. workspace:
/// conv_workspace_floats(g, packed != nullptr) floats, 64-byte aligned. `out` must not alias x.
/// Pointwise convs read x as a matrix: its pixels must be evenly strided (x.sh == in_w * x.sw and
/// x.sn == in_h * x.sh, true of any dense tensor).
inline void conv2d(const WindowGeometry& g, NhwcIn x, const float* w_ohwi, const float* packed, float* out,
                   index_t ldc, const GemmEpilogue& ep, float* workspace) {
  const ConvAlgorithm algo = conv_algorithm(g);
  if (g.rows() <= 0 || g.out_c <= 0) return;
  if (algo == ConvAlgorithm::depthwise) {
    const float* wt = packed;
    if (!wt) {
      conv_pack_weights(g, w_ohwi, workspace);
      wt = workspace;
    }
    conv_detail::depthwise(g, x, wt, out, ldc, ep);
    return;
  }
  const index_t ng = g.out_c_group();
  const index_t depth = g.depth();
  const std::size_t per_group = packed_b_size(depth, ng);
  auto weight = [&](int grp) { return MatrixRef{w_ohwi ? w_ohwi + grp * ng * depth : nullptr, 1, depth}; };
  auto packed_of = [&](int grp) { return packed ? packed + grp * per_group : nullptr; };
  if (algo == ConvAlgorithm::pointwise) {  // the input is the GEMM's A (see the precondition)
    for (int grp = 0; grp < g.groups; ++grp) {
      conv_detail::ShiftedTail shift{&ep, 0, grp * ng};
      const GemmEpilogue e = conv_detail::group_epilogue(ep, shift, grp * ng);
      gemm(g.rows(), ng, depth, MatrixRef{x.data + grp * depth, x.sw, 1}, weight(grp), packed_of(grp), out + grp * ng,
           ldc, e, workspace);
    }
    return;
  }
  // The implicit GEMM needs packed weights: pack them into the workspace when not prepacked.
  float* tile = workspace;
  const std::size_t tile_floats =
      align_up(static_cast<std::size_t>(gemm_detail::kMR * depth), kAlignment / sizeof(float));
  if (!packed) {
    float* wp = workspace + tile_floats;
    conv_pack_weights(g, w_ohwi, wp);
    packed = wp;
  }
  conv_detail::implicit_gemm(g, x, packed, out, ldc, ep, tile);
}

}  // namespace kiln::kernels

#undef KILN_CONV_RESTRICT
#undef KILN_CONV_WALK_UNROLL
