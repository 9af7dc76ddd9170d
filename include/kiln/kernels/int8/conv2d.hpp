// kiln/kernels/int8/conv2d.hpp — TFLite int8 CONV_2D (per-channel weights).
//
//   out[b, oy, ox, oc] = requant( bias[oc] + sum_{ky, kx, ic}
//       (in[b, oy*sh - pt + ky*dh, ox*sw - pl + kx*dw, ic] + input_offset) * w[oc, ky, kx, ic], oc )
//
// NHWC activations, OHWI weights [out_c, kh, kw, in_c] (TFLite's layout). Taps in the
// padding are skipped (they would read the input zero point and add zero).
// The inner product runs over contiguous spans: with dilation_w == 1 the valid taps of
// one window row are (kx1 - kx0) * in_c consecutive bytes in both the input (NHWC) and
// the weights (OHWI), so a 3x3 conv on 3 channels is 3 spans of 9, not 9 spans of 3.
#pragma once

#include <cstdint>

#include "../../core/config.hpp"
#include "../../core/shape.hpp"
#include "../../core/status.hpp"
#include "dot.hpp"
#include "requant.hpp"
#include "window.hpp"

namespace kiln::kernels::int8 {

struct Conv2DParams {
  Window2D window;
  std::int32_t input_offset = 0;  ///< -input_zero_point
  OutputStage output;
};

inline Status conv2d(const Conv2DParams& p, const Shape& input_shape, const std::int8_t* input,
                     const Shape& filter_shape, const std::int8_t* filter, const std::int32_t* bias,
                     const Shape& output_shape, std::int8_t* output) {
  if (Status s = detail::check_nhwc("conv2d", input_shape, output_shape); !s) return s;
  if (filter_shape.rank() != 4 || !filter_shape.valid() || filter_shape[3] != input_shape[3] ||
      filter_shape[0] != output_shape[3] || filter_shape[1] < 1 || filter_shape[2] < 1)
    return Status(Errc::shape_mismatch)
           << "conv2d: filter " << filter_shape << " must be [out_c, kh, kw, in_c] for input "
           << input_shape << " and output " << output_shape;
  const index_t kh = filter_shape[1], kw = filter_shape[2];
  if (Status s = detail::check_window("conv2d", p.window, kh, kw, input_shape, output_shape); !s)
    return s;
  const index_t out_c = output_shape[3];
  if (Status s = detail::check_output_stage("conv2d", p.output, out_c, p.input_offset); !s) return s;

  const index_t batches = input_shape[0], in_h = input_shape[1], in_w = input_shape[2],
                in_c = input_shape[3];
  const index_t out_h = output_shape[1], out_w = output_shape[2];
  const Window2D& w = p.window;
  const index_t filter_row = kw * in_c;  // one ky row of one output channel's weights

  for (index_t b = 0; b < batches; ++b) {
    const std::int8_t* in_b = input + b * in_h * in_w * in_c;
    for (index_t oy = 0; oy < out_h; ++oy) {
      const index_t y0 = oy * w.stride_h - w.pad_top;
      const detail::TapRange ry = detail::valid_taps(y0, kh, w.dilation_h, in_h);
      for (index_t ox = 0; ox < out_w; ++ox) {
        const index_t x0 = ox * w.stride_w - w.pad_left;
        const detail::TapRange rx = detail::valid_taps(x0, kw, w.dilation_w, in_w);
        std::int8_t* y = output + ((b * out_h + oy) * out_w + ox) * out_c;
        for (index_t oc = 0; oc < out_c; ++oc) {
          const std::int8_t* f_oc = filter + oc * kh * filter_row;
          DotAccumulator acc(p.input_offset, bias ? bias[oc] : 0);
          for (index_t ky = ry.t0; ky < ry.t1; ++ky) {
            const std::int8_t* in_row = in_b + (y0 + ky * w.dilation_h) * in_w * in_c;
            const std::int8_t* f_row = f_oc + ky * filter_row;
            if (w.dilation_w == 1) {
              acc.add(in_row + (x0 + rx.t0) * in_c, f_row + rx.t0 * in_c, (rx.t1 - rx.t0) * in_c);
            } else {
              for (index_t kx = rx.t0; kx < rx.t1; ++kx)
                acc.add(in_row + (x0 + kx * w.dilation_w) * in_c, f_row + kx * in_c, in_c);
            }
          }
          y[oc] = p.output.apply(acc.value(), oc);
        }
      }
    }
  }
  return Status();
}

}  // namespace kiln::kernels::int8
