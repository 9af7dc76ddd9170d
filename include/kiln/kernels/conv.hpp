// kiln/kernels/conv.hpp — 2-D convolution, NHWC input, OHWI weight [out_c, kh, kw, in_c/groups].
//
// Three algorithms, chosen from the geometry alone (conv_algorithm):
//  - pointwise: a 1x1, stride-1, unpadded conv over NHWC *is* a matmul of the [N*H*W, C] input
//    by the weight's transpose; the GEMM reads the input where it lies.
//  - depthwise (groups == in_c, any channel multiplier): direct, vectorised over output channels
//    with the weight transposed to [kh][kw][out_c]; a GEMM would have depth kh*kw and waste
//    its register tile.
//  - im2col (implicit): everything else, as a GEMM whose A is the im2col matrix (one row per
//    output pixel, columns (kh, kw, c) in the order of an OHWI weight's rows) without ever
//    materialising it: the GEMM micro-kernel's A operand is MR pointers into the input, one per
//    output pixel, walked tap by tap (a window row of a stride-1 conv is one contiguous run of
//    kw * C floats). Only tiles whose windows touch the padding gather their MR rows into a small
//    buffer first. This saves the im2col copy and the A packing, both as large as the FMAs'
//    own memory traffic when the output has few channels.
// Both GEMM paths keep the weight as the GEMM's B operand: an OHWI weight is exactly a linear
// layer's [out, in] matrix, so it is prepacked once like one (conv_pack_weights).
//
// The epilogue is the GEMM's: bias and clamp in registers, then `tail` on each finished block
// with coordinates over the whole [rows, out_c] output (the chunking and groups are hidden).
// No heap: all scratch is the caller's workspace (conv_workspace_floats, 64-byte aligned).
#pragma once

#include <cstring>

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

/// How one im2col row is laid out in memory from a pixel's first tap: `outer` runs (kernel rows)
/// `outer_step` floats apart, each of `inner` runs (kernel columns) `inner_step` apart, each a
/// contiguous run of `run` floats (channels). k = (outer, inner, run) is the OHWI order.
struct TapWalk {
  int outer = 1, inner = 1;
  index_t outer_step = 0, inner_step = 0, run = 0;
};

/// C[0:m, 0:n] = epilogue(A B) for one MR x NR tile: A row i is walked from a[i] by `t`; B is a
/// packed K x NR panel. The GEMM micro-kernel's loop, with the A panel replaced by pointers.
inline void direct_micro_kernel(const float* const* a, const TapWalk& t, const float* KILN_CONV_RESTRICT b,
                                float* KILN_CONV_RESTRICT c, index_t ldc, index_t m, index_t n, int flags,
                                const float* bias, float lo, float hi) {
  using namespace gemm_detail;
  vec acc[kMR][kNV];
  KILN_WINDOW_UNROLL
  for (int i = 0; i < kMR; ++i) {
    KILN_WINDOW_UNROLL
    for (int v = 0; v < kNV; ++v) acc[i][v] = vsplat(0.f);
  }
  for (int o = 0; o < t.outer; ++o)
    for (int q = 0; q < t.inner; ++q) {
      const index_t off = o * t.outer_step + q * t.inner_step;
      const float* ap[kMR];
      KILN_WINDOW_UNROLL
      for (int i = 0; i < kMR; ++i) ap[i] = a[i] + off;
      for (index_t r = 0; r < t.run; ++r) {
        vec bv[kNV];
        KILN_WINDOW_UNROLL
        for (int v = 0; v < kNV; ++v) bv[v] = vload(b + v * kLanes);
        KILN_WINDOW_UNROLL
        for (int i = 0; i < kMR; ++i) {
          const vec av = vsplat(ap[i][r]);
          KILN_WINDOW_UNROLL
          for (int v = 0; v < kNV; ++v) acc[i][v] = vfma(av, bv[v], acc[i][v]);
        }
        b += kNR;
      }
    }
  KILN_WINDOW_UNROLL
  for (int i = 0; i < kMR; ++i)
    if (i < m) finish_row<kNV>(acc[i], c + i * ldc, n, flags, bias, lo, hi);
}

/// Whether output pixel (oh, ow)'s whole window lies inside the input (no padding taps).
inline bool window_inside(const WindowGeometry& g, index_t oh, index_t ow) {
  const index_t ih = oh * g.stride_h - g.pad_top, iw = ow * g.stride_w - g.pad_left;
  return ih >= 0 && iw >= 0 && ih + static_cast<index_t>(g.kernel_h - 1) * g.dilation_h < g.in_h &&
         iw + static_cast<index_t>(g.kernel_w - 1) * g.dilation_w < g.in_w;
}

/// The general conv as an implicit GEMM over packed weights (one conv_pack_weights block per
/// group); `tile` holds MR * depth() floats for tiles that touch the padding.
inline void implicit_gemm(const WindowGeometry& g, NhwcIn x, const float* packed, float* out, index_t ldc,
                          const GemmEpilogue& ep, float* tile) {
  using gemm_detail::kMR;
  using gemm_detail::kNR;
  const index_t rows = g.rows(), depth = g.depth(), cg = g.in_c_group(), ng = g.out_c_group();
  const std::size_t per_group = packed_b_size(depth, ng);
  const int flags = (ep.bias ? gemm_detail::kBias : 0) | (ep.clamp ? gemm_detail::kClamp : 0);
  // Interior pixels: a window row is one run of kw * C floats when its taps are adjacent and the
  // group spans every channel, else kw runs of C / groups.
  TapWalk inside;
  inside.outer = g.kernel_h;
  inside.outer_step = g.dilation_h * x.sh;
  if (g.dilation_w == 1 && g.groups == 1) {
    inside.run = g.kernel_w * cg;
  } else {
    inside.inner = g.kernel_w;
    inside.inner_step = g.dilation_w * x.sw;
    inside.run = cg;
  }
  // x.sw == C is needed for the merged run (pixels adjacent in memory).
  if (inside.inner == 1 && g.kernel_w > 1 && x.sw != g.in_c) {
    inside.inner = g.kernel_w;
    inside.inner_step = x.sw;
    inside.run = cg;
  }
  TapWalk gathered;  // an im2col row in `tile`
  gathered.run = depth;
  for (int grp = 0; grp < g.groups; ++grp) {
    const float* bg = packed + grp * per_group;
    for (index_t r0 = 0; r0 < rows; r0 += kTailRows) {
      const index_t block = kTailRows < rows - r0 ? kTailRows : rows - r0;
      for (index_t r = r0; r < r0 + block; r += kMR) {
        const index_t m = kMR < r0 + block - r ? kMR : r0 + block - r;
        const float* a[kMR];
        index_t pn[kMR], ph[kMR], pw[kMR];  // the tile's output pixels
        bool interior = true;
        index_t ow = r % g.out_w, oh = (r / g.out_w) % g.out_h, n = r / (g.out_w * g.out_h);
        for (index_t i = 0; i < m; ++i) {
          interior = interior && window_inside(g, oh, ow);
          pn[i] = n, ph[i] = oh, pw[i] = ow;
          if (++ow == g.out_w) {
            ow = 0;
            if (++oh == g.out_h) {
              oh = 0;
              ++n;
            }
          }
        }
        if (interior) {
          for (index_t i = 0; i < m; ++i)
            a[i] = x.at(pn[i], ph[i] * g.stride_h - g.pad_top, pw[i] * g.stride_w - g.pad_left) + grp * cg;
        } else {
          im2col_rows(g, x, grp, r, m, tile);
          for (index_t i = 0; i < m; ++i) a[i] = tile + i * depth;
        }
        for (index_t i = m; i < kMR; ++i) a[i] = a[0];  // rows past the end: computed, not stored
        const TapWalk& walk = interior ? inside : gathered;
        for (index_t j = 0; j < ng; j += kNR) {
          const index_t col = grp * ng + j;
          direct_micro_kernel(a, walk, bg + (j / kNR) * depth * kNR, out + r * ldc + col, ldc, m,
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

/// kRowPixels adjacent output pixels of a 3-wide, stride-1, undilated window inside the input
/// along W, channels [o0, o0 + kLanes), multiplier 1. Neighbouring pixels share input columns:
/// each of the kRowPixels + 2 input vectors of a row is loaded once and feeds up to three
/// accumulators, and the row's three weight vectors stay in registers, so a row costs 13 loads
/// for 24 FMAs (the generic block above: 1.25 loads per FMA, load-bound).
inline constexpr int kRowPixels = 8;
KILN_WINDOW_INLINE void depthwise_row3(const WindowGeometry& g, NhwcIn x, index_t n, const window_detail::TapRange& th,
                                       index_t iw0, const float* wt, index_t o0, const float* bias, bool clamp,
                                       float lo, float hi, float* out, index_t ldc) {
  using namespace window_detail;
  constexpr int P = kRowPixels;
  vec acc[P];
  KILN_WINDOW_UNROLL
  for (int p = 0; p < P; ++p) acc[p] = bias ? vload(bias + o0) : vsplat(0.f);
  for (int kh = th.t0; kh < th.t1; ++kh) {
    const float* xrow = x.at(n, th.origin + static_cast<index_t>(kh) * g.dilation_h, iw0) + o0;
    const float* wrow = wt + static_cast<index_t>(kh) * 3 * g.out_c + o0;
    const vec w0 = vload(wrow), w1 = vload(wrow + g.out_c), w2 = vload(wrow + 2 * g.out_c);
    KILN_WINDOW_UNROLL
    for (int j = 0; j < P + 2; ++j) {  // input column j feeds pixels j, j - 1, j - 2 (taps 0, 1, 2)
      const vec xv = vload(xrow + j * x.sw);
      if (j < P) acc[j] = vfma(xv, w0, acc[j]);
      if (j >= 1 && j - 1 < P) acc[j - 1] = vfma(xv, w1, acc[j - 1]);
      if (j >= 2) acc[j - 2] = vfma(xv, w2, acc[j - 2]);
    }
  }
  const vec vlo = vsplat(lo), vhi = vsplat(hi);
  KILN_WINDOW_UNROLL
  for (int p = 0; p < P; ++p) vstore(out + p * ldc + o0, clamp ? vclamp(acc[p], vlo, vhi) : acc[p]);
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
      const bool row3 = mult == 1 && C >= L && g.kernel_w == 3 && g.stride_w == 1 && g.dilation_w == 1;
      for (index_t ow = 0; ow < g.out_w;) {
        // 3-wide stride-1 windows (the common depthwise): kRowPixels pixels sharing input columns.
        if (row3 && ow + kRowPixels <= g.out_w) {
          const index_t iw0 = ow - g.pad_left;
          if (iw0 >= 0 && iw0 + kRowPixels + 1 < g.in_w) {
            float* o = orow + ow * ldc;
            index_t c = 0;
            for (; c + L <= C; c += L)
              depthwise_row3(g, x, n, th, iw0, wt, c, ep.bias, ep.clamp, ep.lo, ep.hi, o, ldc);
            for (index_t p = 0; p < kRowPixels; ++p) scalar_channels(ow + p, c);
            ow += kRowPixels;
            continue;
          }
        }
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
  // The implicit GEMM: one gathered tile, and the packed weights when they are not prepacked.
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
