// kiln/kernels/pool.hpp — NHWC max and average pooling, vectorised over channels.
//
// Each output pixel walks only the taps inside the input (window_detail::taps), so padding costs
// nothing: max ignores it (as if it were -inf) and the average divides either by the whole
// kernel area (count_include_pad, padding counted as zeros) or by the taps that were read.
// Outputs are dense [N, OH, OW, C]. No heap.
#pragma once

#include <type_traits>

#include "window.hpp"

namespace kiln::kernels {

namespace pool_detail {

template <bool Max>
KILN_WINDOW_INLINE void pool_pixel(const WindowGeometry& g, NhwcIn x, index_t n, const window_detail::TapRange& th,
                                   const window_detail::TapRange& tw, float scale, float* out) {
  using namespace window_detail;
  constexpr index_t L = kLanes;
  const index_t C = g.in_c;
  index_t c = 0;
  // Max starts from -inf (every window holds at least one input tap), the sum from 0.
  const float init = Max ? -__builtin_huge_valf() : 0.f;
  auto one = [&](auto V, index_t c0) {
    constexpr int nv = decltype(V)::value;
    vec acc[nv];
    KILN_WINDOW_UNROLL
    for (int v = 0; v < nv; ++v) acc[v] = vsplat(init);
    for (int kh = th.t0; kh < th.t1; ++kh)
      for (int kw = tw.t0; kw < tw.t1; ++kw) {
        const float* xp = x.at(n, th.origin + kh, tw.origin + kw) + c0;
        KILN_WINDOW_UNROLL
        for (int v = 0; v < nv; ++v) {
          const vec xv = vload(xp + v * L);
          acc[v] = Max ? vmax(acc[v], xv) : vadd(acc[v], xv);
        }
      }
    KILN_WINDOW_UNROLL
    for (int v = 0; v < nv; ++v) vstore(out + c0 + v * L, Max ? acc[v] : vmul(acc[v], vsplat(scale)));
  };
  for (; c + 4 * L <= C; c += 4 * L) one(std::integral_constant<int, 4>{}, c);
  for (; c + L <= C; c += L) one(std::integral_constant<int, 1>{}, c);
  for (; c < C; ++c) {
    float acc = init;
    for (int kh = th.t0; kh < th.t1; ++kh)
      for (int kw = tw.t0; kw < tw.t1; ++kw) {
        const float v = x.at(n, th.origin + kh, tw.origin + kw)[c];
        acc = Max ? (v > acc ? v : acc) : acc + v;
      }
    out[c] = Max ? acc : acc * scale;
  }
}

template <bool Max>
inline void pool(const WindowGeometry& g, NhwcIn x, bool count_include_pad, float* out) {
  using namespace window_detail;
  for (index_t n = 0; n < g.batch; ++n)
    for (index_t oh = 0; oh < g.out_h; ++oh) {
      const TapRange th = taps(oh, g.stride_h, g.pad_top, g.kernel_h, 1, g.in_h);
      for (index_t ow = 0; ow < g.out_w; ++ow, out += g.in_c) {
        const TapRange tw = taps(ow, g.stride_w, g.pad_left, g.kernel_w, 1, g.in_w);
        const int count = count_include_pad ? g.kernel_h * g.kernel_w : (th.t1 - th.t0) * (tw.t1 - tw.t0);
        pool_pixel<Max>(g, x, n, th, tw, 1.f / static_cast<float>(count), out);
      }
    }
}

}  // namespace pool_detail

/// out[N, OH, OW, C] = max over each window (taps in the padding are skipped). Every window
/// must hold at least one input tap (padding smaller than the kernel guarantees it).
inline void max_pool2d(const WindowGeometry& g, NhwcIn x, float* out) { pool_detail::pool<true>(g, x, false, out); }

/// out[N, OH, OW, C] = mean over each window: divided by kernel_h * kernel_w when
/// count_include_pad (padding counts as zeros), else by the taps inside the input.
inline void avg_pool2d(const WindowGeometry& g, NhwcIn x, bool count_include_pad, float* out) {
  pool_detail::pool<false>(g, x, count_include_pad, out);
}

}  // namespace kiln::kernels
