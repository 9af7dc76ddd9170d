// kiln/kernels/int8/depthwise_conv2d.hpp — TFLite int8 DEPTHWISE_CONV_2D (per-channel weights).
//
//   out[b, oy, ox, ic*dm + m] = requant( bias[oc] + sum_{ky, kx}
//       (in[b, oy*sh - pt + ky*dh, ox*sw - pl + kx*dw, ic] + input_offset) * w[0, ky, kx, ic*dm + m], oc )
//
// Weights [1, kh, kw, out_c] with out_c = in_c * depth_multiplier (TFLite's layout).
// Channels are independent, so the loop keeps a block of int32 accumulators (one per
// output channel, on the stack) and walks the window taps outside, the channels inside:
// the channel loop is a unit-stride widening multiply-add the compiler vectorises, and
// the products are exact in int32 so the order does not change the result.
#pragma once

#include <cstdint>

#include "../../core/config.hpp"
#include "../../core/shape.hpp"
#include "../../core/status.hpp"
#include "requant.hpp"
#include "window.hpp"

namespace kiln::kernels::int8 {

struct DepthwiseConv2DParams {
  Window2D window;
  index_t depth_multiplier = 1;
  std::int32_t input_offset = 0;  ///< -input_zero_point
  OutputStage output;
};

inline Status depthwise_conv2d(const DepthwiseConv2DParams& p, const Shape& input_shape,
                               const std::int8_t* input, const Shape& filter_shape,
                               const std::int8_t* filter, const std::int32_t* bias,
                               const Shape& output_shape, std::int8_t* output) {
  if (Status s = detail::check_nhwc("depthwise_conv2d", input_shape, output_shape); !s) return s;
  const index_t dm = p.depth_multiplier;
  if (dm < 1 || filter_shape.rank() != 4 || !filter_shape.valid() || filter_shape[0] != 1 ||
      filter_shape[3] != output_shape[3] || output_shape[3] != input_shape[3] * dm ||
      filter_shape[1] < 1 || filter_shape[2] < 1)
    return Status(Errc::shape_mismatch)
           << "depthwise_conv2d: filter " << filter_shape << " must be [1, kh, kw, in_c * "
           << dm << "] for input " << input_shape << " and output " << output_shape;
  const index_t kh = filter_shape[1], kw = filter_shape[2];
  if (Status s = detail::check_window("depthwise_conv2d", p.window, kh, kw, input_shape, output_shape); !s)
    return s;
  const index_t out_c = output_shape[3];
  if (Status s = detail::check_output_stage("depthwise_conv2d", p.output, out_c, p.input_offset); !s)
    return s;

  const index_t batches = input_shape[0], in_h = input_shape[1], in_w = input_shape[2],
                in_c = input_shape[3];
  const index_t out_h = output_shape[1], out_w = output_shape[2];
  const Window2D& w = p.window;
  const std::int32_t in_off = p.input_offset;

  // Output channels handled per pass; 64 int32 accumulators = 256 bytes of stack.
  constexpr index_t kBlock = 64;
  for (index_t b = 0; b < batches; ++b) {
    const std::int8_t* in_b = input + b * in_h * in_w * in_c;
    for (index_t oy = 0; oy < out_h; ++oy) {
      const index_t y0 = oy * w.stride_h - w.pad_top;
      const detail::TapRange ry = detail::valid_taps(y0, kh, w.dilation_h, in_h);
      for (index_t ox = 0; ox < out_w; ++ox) {
        const index_t x0 = ox * w.stride_w - w.pad_left;
        const detail::TapRange rx = detail::valid_taps(x0, kw, w.dilation_w, in_w);
        std::int8_t* y = output + ((b * out_h + oy) * out_w + ox) * out_c;
        for (index_t c0 = 0; c0 < out_c; c0 += kBlock) {
          const index_t nc = out_c - c0 < kBlock ? out_c - c0 : kBlock;
          std::int32_t acc[kBlock];
          for (index_t c = 0; c < nc; ++c) acc[c] = bias ? bias[c0 + c] : 0;
          for (index_t ky = ry.t0; ky < ry.t1; ++ky) {
            for (index_t kx = rx.t0; kx < rx.t1; ++kx) {
              const std::int8_t* px =
                  in_b + ((y0 + ky * w.dilation_h) * in_w + (x0 + kx * w.dilation_w)) * in_c;
              const std::int8_t* f = filter + (ky * kw + kx) * out_c + c0;
              if (dm == 1) {
                const std::int8_t* xc = px + c0;
                for (index_t c = 0; c < nc; ++c)
                  acc[c] += static_cast<std::int32_t>(static_cast<std::int16_t>(xc[c] + in_off) * f[c]);
              } else {
                for (index_t c = 0; c < nc; ++c)
                  acc[c] += (static_cast<std::int32_t>(px[(c0 + c) / dm]) + in_off) * f[c];
              }
            }
          }
          for (index_t c = 0; c < nc; ++c) y[c0 + c] = p.output.apply(acc[c], c0 + c);
        }
      }
    }
  }
  return Status();
}

}  // namespace kiln::kernels::int8
