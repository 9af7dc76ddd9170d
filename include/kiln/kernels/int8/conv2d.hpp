// kiln/kernels/int8/conv2d.hpp — TFLite int8 CONV_2D (per-channel weights).
//
//   out[b, oy, ox, oc] = requant( bias[oc] + sum_{ky, kx, ic}
//       (in[b, oy*sh - pt + ky*dh, ox*sw - pl + kx*dw, ic] + input_offset) * w[oc, ky, kx, ic], oc )
//
// NHWC activations, OHWI weights [out_c, kh, kw, in_c] (TFLite's layout). Taps in the
// padding are skipped (they would read the input zero point and add zero).
// Per output pixel the window is gathered into a contiguous patch (im2col of one pixel, on
// the stack, padded taps filled with the input zero point so they add exactly zero); the
// OHWI weights of one output channel are contiguous in the same order, so every output
// channel is one dot product of patch_len = kh*kw*in_c bytes, computed four channels at a
// time (dot4_with_offset). A 1-row window that lies inside the input (1x1 convs) is used in
// place. Windows larger than KILN_INT8_CONV_PATCH_BYTES fall back to dot products over the
// valid spans of each window row ((kx1 - kx0) * in_c consecutive bytes when dilation_w == 1).
// Without vector units (Cortex-M, KILN_NO_SIMD) windows up to KILN_INT8_CONV_COLUMN bytes run
// conv2d_pairs.hpp instead (two pixels x two channels on int16 columns, SMLAD on DSP cores).
#pragma once

#include <cstdint>
#include <cstring>

#include "../../core/config.hpp"
#include "../../core/shape.hpp"
#include "../../core/status.hpp"
#include "conv2d_pairs.hpp"
#include "dot.hpp"
#include "requant.hpp"
#include "window.hpp"

#ifndef KILN_INT8_CONV_PATCH_BYTES
/// Stack bytes for one im2col patch of conv2d (kh*kw*in_c); firmware may lower it.
#define KILN_INT8_CONV_PATCH_BYTES 2048
#endif

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

  // Without vector units (Cortex-M, KILN_NO_SIMD): two pixels x two channels on widened columns.
  if (!(KILN_INT8_AVX2 || KILN_INT8_SSE41 || KILN_INT8_NEON) && kh * kw * input_shape[3] <= KILN_INT8_CONV_COLUMN) {
    detail::conv2d_pairs(p.window, p.input_offset, p.output, input_shape, input, kh, kw, filter, bias, output_shape,
                         output);
    return Status();
  }
  const index_t batches = input_shape[0], in_h = input_shape[1], in_w = input_shape[2],
                in_c = input_shape[3];
  const index_t out_h = output_shape[1], out_w = output_shape[2];
  const Window2D& w = p.window;
  const index_t filter_row = kw * in_c;  // one ky row of one output channel's weights

  const index_t patch_len = kh * filter_row;
  const bool use_patch = patch_len <= KILN_INT8_CONV_PATCH_BYTES;
  // The input zero point: a padded tap holding it contributes (zp + input_offset) * w = 0.
  const std::int8_t zero_point = static_cast<std::int8_t>(-p.input_offset);
  alignas(64) std::int8_t patch[KILN_INT8_CONV_PATCH_BYTES];

  for (index_t b = 0; b < batches; ++b) {
    const std::int8_t* in_b = input + b * in_h * in_w * in_c;
    for (index_t oy = 0; oy < out_h; ++oy) {
      const index_t y0 = oy * w.stride_h - w.pad_top;
      const detail::TapRange ry = detail::valid_taps(y0, kh, w.dilation_h, in_h);
      for (index_t ox = 0; ox < out_w; ++ox) {
        const index_t x0 = ox * w.stride_w - w.pad_left;
        const detail::TapRange rx = detail::valid_taps(x0, kw, w.dilation_w, in_w);
        std::int8_t* y = output + ((b * out_h + oy) * out_w + ox) * out_c;
        if (use_patch) {
          const std::int8_t* px = detail::window_patch(in_b, in_w, in_c, kh, kw, w, y0, x0, ry, rx, zero_point, patch);
          index_t oc = 0;
          for (; oc + 8 <= out_c; oc += 8) {
            std::int32_t acc[8];
            for (int r = 0; r < 8; ++r) acc[r] = bias ? bias[oc + r] : 0;
            dot4_with_offset(px, filter + oc * patch_len, patch_len, patch_len, p.input_offset, acc);
            dot4_with_offset(px, filter + (oc + 4) * patch_len, patch_len, patch_len, p.input_offset, acc + 4);
            requantize8(acc, oc, p.output, y + oc);
          }
          for (; oc + 4 <= out_c; oc += 4) {
            std::int32_t acc[4];
            for (int r = 0; r < 4; ++r) acc[r] = bias ? bias[oc + r] : 0;
            dot4_with_offset(px, filter + oc * patch_len, patch_len, patch_len, p.input_offset, acc);
            for (int r = 0; r < 4; ++r) y[oc + r] = p.output.apply(acc[r], oc + r);
          }
          for (; oc < out_c; ++oc) {
            DotAccumulator acc(p.input_offset, bias ? bias[oc] : 0);
            acc.add(px, filter + oc * patch_len, patch_len);
            y[oc] = p.output.apply(acc.value(), oc);
          }
          continue;
        }
        for (index_t oc = 0; oc < out_c; ++oc) {
          const std::int8_t* f_oc = filter + oc * patch_len;
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
