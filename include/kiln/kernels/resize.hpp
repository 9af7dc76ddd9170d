// kiln/kernels/resize.hpp — NHWC copies that change H and W: constant padding and
// nearest-neighbour upsampling by integer scales.
//
// Both move whole channel runs (memcpy of C floats, or of a whole row when the input's pixels are
// contiguous) and fill with a splat: they are bandwidth-bound, so there is no separate SIMD twin
// beyond what the C library's memcpy does. Outputs are dense. No heap.
#pragma once

#include <cstring>

#include "window.hpp"

namespace kiln::kernels {

namespace resize_detail {
inline void fill(float* p, index_t n, float v) {
  for (index_t i = 0; i < n; ++i) p[i] = v;
}
}  // namespace resize_detail

/// out[N, H + top + bottom, W + left + right, C]: x in the middle, `value` around it.
inline void pad2d(NhwcIn x, index_t N, index_t H, index_t W, index_t C, int top, int bottom, int left, int right,
                  float value, float* out) {
  const index_t OW = W + left + right, row = OW * C;
  const std::size_t run = static_cast<std::size_t>(C) * sizeof(float);
  for (index_t n = 0; n < N; ++n) {
    resize_detail::fill(out, top * row, value);
    out += top * row;
    for (index_t h = 0; h < H; ++h, out += row) {
      resize_detail::fill(out, left * C, value);
      float* o = out + left * C;
      if (x.sw == C) std::memcpy(o, x.at(n, h, 0), run * static_cast<std::size_t>(W));
      else
        for (index_t w = 0; w < W; ++w) std::memcpy(o + w * C, x.at(n, h, w), run);
      resize_detail::fill(o + W * C, right * C, value);
    }
    resize_detail::fill(out, bottom * row, value);
    out += bottom * row;
  }
}

/// out[N, H * sh, W * sw, C] with out[n, i, j] = x[n, i / sh, j / sw].
inline void upsample_nearest2d(NhwcIn x, index_t N, index_t H, index_t W, index_t C, int sh, int sw, float* out) {
  const index_t row = W * sw * C;
  const std::size_t run = static_cast<std::size_t>(C) * sizeof(float);
  for (index_t n = 0; n < N; ++n)
    for (index_t h = 0; h < H; ++h) {
      // Build one output row, then repeat it sh - 1 times.
      float* first = out;
      for (index_t w = 0; w < W; ++w)
        for (int r = 0; r < sw; ++r, out += C) std::memcpy(out, x.at(n, h, w), run);
      for (int r = 1; r < sh; ++r, out += row) std::memcpy(out, first, run * static_cast<std::size_t>(W * sw));
    }
}

}  // namespace kiln::kernels
