// kiln/kernels/window.hpp — what the NHWC sliding-window kernels (conv, pool, pad, upsample) share:
// the window geometry, a strided NHWC input, and channel-vector helpers with a scalar twin.
//
// NHWC puts channels innermost, so every window kernel vectorises over channels: one tap of a
// window is a contiguous run of C floats. Inputs may be views with any N/H/W strides, but their
// channel stride must be 1 (the runtime makes a dense copy first otherwise).
#pragma once

#include "../core/config.hpp"
#include "simd.hpp"

// Register arrays (acc[v]) stay in registers only when their loops are fully unrolled.
#if defined(__GNUC__) || defined(__clang__)
#define KILN_WINDOW_INLINE inline __attribute__((always_inline))
#define KILN_WINDOW_UNROLL _Pragma("GCC unroll 32")
#else
#define KILN_WINDOW_INLINE inline
#define KILN_WINDOW_UNROLL
#endif

namespace kiln::kernels {

/// A sliding window over an NHWC input: input extents, output extents, kernel, stride, the padding
/// before each spatial axis (the padding after it is implied by the output extents), dilation and
/// groups (conv only). Pooling uses out_c == in_c and groups == 1.
struct WindowGeometry {
  index_t batch = 1, in_h = 1, in_w = 1, in_c = 1;
  index_t out_h = 1, out_w = 1, out_c = 1;
  int kernel_h = 1, kernel_w = 1;
  int stride_h = 1, stride_w = 1;
  int pad_top = 0, pad_left = 0;
  int dilation_h = 1, dilation_w = 1;
  int groups = 1;

  constexpr index_t in_c_group() const { return in_c / groups; }
  constexpr index_t out_c_group() const { return out_c / groups; }
  /// Rows of the implicit im2col matrix: one per output pixel.
  constexpr index_t rows() const { return batch * out_h * out_w; }
  /// Its columns per group: (kh, kw, c) with c fastest, the order of an OHWI weight's rows.
  constexpr index_t depth() const { return static_cast<index_t>(kernel_h) * kernel_w * in_c_group(); }
};

/// A read-only NHWC tensor with element strides for N, H and W; channels are contiguous.
struct NhwcIn {
  const float* data = nullptr;
  index_t sn = 0, sh = 0, sw = 0;

  const float* at(index_t n, index_t h, index_t w) const { return data + n * sn + h * sh + w * sw; }
};

/// Dense NHWC strides of an [N, H, W, C] tensor.
inline NhwcIn dense_nhwc(const float* data, index_t h, index_t w, index_t c) { return NhwcIn{data, h * w * c, w * c, c}; }

namespace window_detail {

// Channel vectors: an xsimd batch, or one float in the scalar twin (same code either way).
#if KILN_SIMD
using vec = fbatch;
KILN_WINDOW_INLINE vec vload(const float* p) { return vec::load_unaligned(p); }
KILN_WINDOW_INLINE void vstore(float* p, const vec& x) { x.store_unaligned(p); }
KILN_WINDOW_INLINE vec vsplat(float x) { return vec(x); }
KILN_WINDOW_INLINE vec vfma(const vec& a, const vec& b, const vec& c) { return xsimd::fma(a, b, c); }
KILN_WINDOW_INLINE vec vadd(const vec& a, const vec& b) { return a + b; }
KILN_WINDOW_INLINE vec vmul(const vec& a, const vec& b) { return a * b; }
// select-based: the same NaN behaviour on every ISA (x86 max drops a NaN in one operand only).
KILN_WINDOW_INLINE vec vmax(const vec& a, const vec& b) { return xsimd::select(b > a, b, a); }
KILN_WINDOW_INLINE vec vclamp(const vec& x, const vec& lo, const vec& hi) {
  return xsimd::select(x < lo, lo, xsimd::select(x > hi, hi, x));
}
#else
struct vec {
  float v;
};
KILN_WINDOW_INLINE vec vload(const float* p) { return vec{*p}; }
KILN_WINDOW_INLINE void vstore(float* p, const vec& x) { *p = x.v; }
KILN_WINDOW_INLINE vec vsplat(float x) { return vec{x}; }
KILN_WINDOW_INLINE vec vfma(const vec& a, const vec& b, const vec& c) { return vec{a.v * b.v + c.v}; }
KILN_WINDOW_INLINE vec vadd(const vec& a, const vec& b) { return vec{a.v + b.v}; }
KILN_WINDOW_INLINE vec vmul(const vec& a, const vec& b) { return vec{a.v * b.v}; }
KILN_WINDOW_INLINE vec vmax(const vec& a, const vec& b) { return vec{b.v > a.v ? b.v : a.v}; }
KILN_WINDOW_INLINE vec vclamp(const vec& x, const vec& lo, const vec& hi) {
  return vec{x.v < lo.v ? lo.v : (x.v > hi.v ? hi.v : x.v)};
}
#endif

/// First input coordinate of output position `o` and the range [t0, t1) of kernel taps that fall
/// inside [0, extent): taps outside are padding.
struct TapRange {
  index_t origin;
  int t0, t1;
};
inline TapRange taps(index_t o, int stride, int pad, int kernel, int dilation, index_t extent) {
  const index_t origin = o * stride - pad;
  int t0 = 0, t1 = kernel;
  while (t0 < kernel && origin + static_cast<index_t>(t0) * dilation < 0) ++t0;
  while (t1 > t0 && origin + static_cast<index_t>(t1 - 1) * dilation >= extent) --t1;
  return {origin, t0, t1};
}

}  // namespace window_detail
}  // namespace kiln::kernels
