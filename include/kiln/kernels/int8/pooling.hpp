// kiln/kernels/int8/pooling.hpp — TFLite int8 MAX_POOL_2D and AVERAGE_POOL_2D.
//
// Input and output share scale and zero point (TFLite requires it), so there is no
// requantisation: only the fused activation clamp [act_min, act_max].
//   max: the largest valid element of the window (padding is ignored, not zero).
//   avg: sum / count over the valid elements only (count excludes padding, as TFLite),
//        rounded half away from zero: (sum +- count/2) / count with C++'s truncating
//        division. A window lying entirely in the padding is an error (TFLite fails too).
// NHWC; dilation must be 1 (TFLite pooling has none).
#pragma once

#include <cstdint>

#include "../../core/config.hpp"
#include "../../core/shape.hpp"
#include "../../core/status.hpp"
#include "window.hpp"

namespace kiln::kernels::int8 {

struct Pool2DParams {
  index_t filter_h = 1, filter_w = 1;
  Window2D window;  ///< stride and padding; dilation must stay 1
  std::int32_t act_min = -128;
  std::int32_t act_max = 127;
};

namespace detail {

inline Status check_pool(const char* op, const Pool2DParams& p, const Shape& input,
                         const Shape& output) {
  if (Status s = check_nhwc(op, input, output); !s) return s;
  if (input[3] != output[3] || p.filter_h < 1 || p.filter_w < 1)
    return Status(Errc::shape_mismatch) << op << ": input " << input << ", output " << output
                                        << ", filter " << p.filter_h << "x" << p.filter_w
                                        << " (channels must match, filter >= 1)";
  if (p.window.dilation_h != 1 || p.window.dilation_w != 1)
    return Status(Errc::not_supported) << op << ": pooling has no dilation";
  if (p.act_min < -128 || p.act_max > 127 || p.act_min > p.act_max)
    return Status(Errc::invalid_argument)
           << op << ": activation range [" << p.act_min << ", " << p.act_max << "] is not an int8 range";
  if (Status s = check_window(op, p.window, p.filter_h, p.filter_w, input, output); !s) return s;
  // A window with no valid tap (padding >= filter) has no max and no average.
  for (index_t oy = 0; oy < output[1]; ++oy) {
    const TapRange r = valid_taps(oy * p.window.stride_h - p.window.pad_top, p.filter_h, 1, input[1]);
    if (r.t0 == r.t1)
      return Status(Errc::invalid_argument) << op << ": output row " << oy << " of " << output
                                            << " pools only padding (input " << input << ")";
  }
  for (index_t ox = 0; ox < output[2]; ++ox) {
    const TapRange r = valid_taps(ox * p.window.stride_w - p.window.pad_left, p.filter_w, 1, input[2]);
    if (r.t0 == r.t1)
      return Status(Errc::invalid_argument) << op << ": output column " << ox << " of " << output
                                            << " pools only padding (input " << input << ")";
  }
  return Status();
}

// Calls f(y, x_row_start, tap ranges) for every output pixel; shared loop of both pools.
template <class PerPixel>
inline void pool_loop(const Pool2DParams& p, const Shape& input, const Shape& output,
                      PerPixel&& per_pixel) {
  for (index_t b = 0; b < input[0]; ++b)
    for (index_t oy = 0; oy < output[1]; ++oy) {
      const index_t y0 = oy * p.window.stride_h - p.window.pad_top;
      const TapRange ry = valid_taps(y0, p.filter_h, 1, input[1]);
      for (index_t ox = 0; ox < output[2]; ++ox) {
        const index_t x0 = ox * p.window.stride_w - p.window.pad_left;
        const TapRange rx = valid_taps(x0, p.filter_w, 1, input[2]);
        per_pixel(b, oy, ox, y0 + ry.t0, y0 + ry.t1, x0 + rx.t0, x0 + rx.t1);
      }
    }
}

}  // namespace detail

inline Status max_pool2d(const Pool2DParams& p, const Shape& input_shape, const std::int8_t* input,
                         const Shape& output_shape, std::int8_t* output) {
  if (Status s = detail::check_pool("max_pool2d", p, input_shape, output_shape); !s) return s;
  const index_t in_h = input_shape[1], in_w = input_shape[2], ch = input_shape[3];
  const index_t out_h = output_shape[1], out_w = output_shape[2];
  constexpr index_t kBlock = 64;
  detail::pool_loop(p, input_shape, output_shape,
                    [&](index_t b, index_t oy, index_t ox, index_t iy0, index_t iy1, index_t ix0, index_t ix1) {
                      std::int8_t* y = output + ((b * out_h + oy) * out_w + ox) * ch;
                      for (index_t c0 = 0; c0 < ch; c0 += kBlock) {
                        const index_t nc = ch - c0 < kBlock ? ch - c0 : kBlock;
                        std::int8_t m[kBlock];
                        for (index_t c = 0; c < nc; ++c) m[c] = -128;
                        for (index_t iy = iy0; iy < iy1; ++iy)
                          for (index_t ix = ix0; ix < ix1; ++ix) {
                            const std::int8_t* px = input + ((b * in_h + iy) * in_w + ix) * ch + c0;
                            for (index_t c = 0; c < nc; ++c) m[c] = px[c] > m[c] ? px[c] : m[c];
                          }
                        for (index_t c = 0; c < nc; ++c) {
                          std::int32_t v = m[c];
                          v = v < p.act_min ? p.act_min : (v > p.act_max ? p.act_max : v);
                          y[c0 + c] = static_cast<std::int8_t>(v);
                        }
                      }
                    });
  return Status();
}

inline Status avg_pool2d(const Pool2DParams& p, const Shape& input_shape, const std::int8_t* input,
                         const Shape& output_shape, std::int8_t* output) {
  if (Status s = detail::check_pool("avg_pool2d", p, input_shape, output_shape); !s) return s;
  const index_t in_h = input_shape[1], in_w = input_shape[2], ch = input_shape[3];
  const index_t out_h = output_shape[1], out_w = output_shape[2];
  constexpr index_t kBlock = 64;
  detail::pool_loop(p, input_shape, output_shape,
                    [&](index_t b, index_t oy, index_t ox, index_t iy0, index_t iy1, index_t ix0, index_t ix1) {
                      std::int8_t* y = output + ((b * out_h + oy) * out_w + ox) * ch;
                      const std::int32_t count = static_cast<std::int32_t>((iy1 - iy0) * (ix1 - ix0));
                      for (index_t c0 = 0; c0 < ch; c0 += kBlock) {
                        const index_t nc = ch - c0 < kBlock ? ch - c0 : kBlock;
                        std::int32_t sum[kBlock];
                        for (index_t c = 0; c < nc; ++c) sum[c] = 0;
                        for (index_t iy = iy0; iy < iy1; ++iy)
                          for (index_t ix = ix0; ix < ix1; ++ix) {
                            const std::int8_t* px = input + ((b * in_h + iy) * in_w + ix) * ch + c0;
                            for (index_t c = 0; c < nc; ++c) sum[c] += px[c];
                          }
                        for (index_t c = 0; c < nc; ++c) {
                          const std::int32_t s = sum[c];
                          // Round half away from zero (TFLite's "round to the closest integer").
                          std::int32_t v = s > 0 ? (s + count / 2) / count : (s - count / 2) / count;
                          v = v < p.act_min ? p.act_min : (v > p.act_max ? p.act_max : v);
                          y[c0 + c] = static_cast<std::int8_t>(v);
                        }
                      }
                    });
  return Status();
}

}  // namespace kiln::kernels::int8
