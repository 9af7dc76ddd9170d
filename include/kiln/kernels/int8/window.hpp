// kiln/kernels/int8/window.hpp — sliding-window geometry shared by conv, depthwise conv, pooling.
//
// Padding is explicit (top, bottom, left, right), so the output size is determined:
//   out = (in + pad_before + pad_after - ((k - 1) * dilation + 1)) / stride + 1
// Input position of output o, tap t:  o * stride - pad_before + t * dilation; taps that fall
// outside the input read the input zero point (they add nothing), as in TFLite.
// same_padding() reproduces TFLite's Padding::SAME (odd total padding: the extra row/column
// goes after), valid padding is all zeros.
#pragma once

#include <cstdint>
#include <cstring>

#include "../../core/config.hpp"
#include "../../core/shape.hpp"
#include "../../core/status.hpp"

namespace kiln::kernels::int8 {

struct Window2D {
  index_t stride_h = 1, stride_w = 1;
  index_t dilation_h = 1, dilation_w = 1;
  index_t pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
};

/// Output extent of one spatial dimension (0 or negative when the window does not fit).
constexpr index_t window_output_size(index_t in, index_t k, index_t stride, index_t dilation,
                                     index_t pad_before, index_t pad_after) {
  const index_t span = in + pad_before + pad_after - ((k - 1) * dilation + 1);
  return span < 0 ? 0 : span / stride + 1;
}

struct PaddingPair {
  index_t before = 0, after = 0;
};

/// TFLite's SAME padding for one dimension: out = ceil(in / stride), total padding
/// max((out - 1) * stride + effective_k - in, 0), before = total / 2.
constexpr PaddingPair same_padding(index_t in, index_t k, index_t stride, index_t dilation) {
  const index_t out = (in + stride - 1) / stride;
  const index_t eff_k = (k - 1) * dilation + 1;
  index_t total = (out - 1) * stride + eff_k - in;
  total = total < 0 ? 0 : total;
  return {total / 2, total - total / 2};
}

/// A Window2D with TFLite SAME padding for an input of in_h x in_w and a kh x kw window.
constexpr Window2D same_window(index_t in_h, index_t in_w, index_t kh, index_t kw, index_t stride_h,
                               index_t stride_w, index_t dilation_h = 1, index_t dilation_w = 1) {
  const PaddingPair ph = same_padding(in_h, kh, stride_h, dilation_h);
  const PaddingPair pw = same_padding(in_w, kw, stride_w, dilation_w);
  return {stride_h, stride_w, dilation_h, dilation_w, ph.before, ph.after, pw.before, pw.after};
}

namespace detail {

// Valid tap range [t0, t1) of a window starting at `origin` (may be negative).
struct TapRange {
  index_t t0, t1;
};
constexpr TapRange valid_taps(index_t origin, index_t taps, index_t dilation, index_t extent) {
  // First t with origin + t*d >= 0, first t with origin + t*d >= extent.
  index_t t0 = origin >= 0 ? 0 : (-origin + dilation - 1) / dilation;
  index_t t1 = extent - origin <= 0 ? 0 : (extent - origin + dilation - 1) / dilation;
  t1 = t1 < taps ? t1 : taps;
  t0 = t0 < t1 ? t0 : t1;
  return {t0, t1};
}

/// Validates the window against a kh x kw filter and the NHWC input/output extents.
inline Status check_window(const char* op, const Window2D& w, index_t kh, index_t kw,
                           const Shape& input, const Shape& output) {
  if (w.stride_h < 1 || w.stride_w < 1 || w.dilation_h < 1 || w.dilation_w < 1 || w.pad_top < 0 ||
      w.pad_bottom < 0 || w.pad_left < 0 || w.pad_right < 0)
    return Status(Errc::invalid_argument)
           << op << ": stride " << w.stride_h << "x" << w.stride_w << ", dilation " << w.dilation_h
           << "x" << w.dilation_w << " must be >= 1 and padding >= 0";
  const index_t oh = window_output_size(input[1], kh, w.stride_h, w.dilation_h, w.pad_top, w.pad_bottom);
  const index_t ow = window_output_size(input[2], kw, w.stride_w, w.dilation_w, w.pad_left, w.pad_right);
  if (oh != output[1] || ow != output[2])
    return Status(Errc::shape_mismatch)
           << op << ": input " << input << " with a " << kh << "x" << kw << " window, stride "
           << w.stride_h << "x" << w.stride_w << ", dilation " << w.dilation_h << "x"
           << w.dilation_w << " and padding gives " << oh << "x" << ow << ", output is " << output;
  return Status();
}

/// Both shapes NHWC (rank 4, same batch).
inline Status check_nhwc(const char* op, const Shape& input, const Shape& output) {
  if (input.rank() != 4 || output.rank() != 4 || !input.valid() || !output.valid() ||
      input[0] != output[0])
    return Status(Errc::shape_mismatch)
           << op << ": input " << input << " and output " << output
           << " must be NHWC with the same batch";
  return Status();
}

/// The window of one output pixel as patch_len = kh*kw*in_c contiguous bytes in the weights'
/// order (im2col of one pixel): the input itself when the window is one contiguous span (1x1
/// convs), else gathered into `patch` with padded taps holding the input zero point (they add
/// exactly zero).
inline const std::int8_t* window_patch(const std::int8_t* in_b, index_t in_w, index_t in_c, index_t kh,
                                       index_t kw, const Window2D& w, index_t y0, index_t x0, TapRange ry,
                                       TapRange rx, std::int8_t zero_point, std::int8_t* patch) {
  if (kh == 1 && ry.t0 == 0 && ry.t1 == 1 && rx.t0 == 0 && rx.t1 == kw && (w.dilation_w == 1 || kw == 1))
    return in_b + (y0 * in_w + x0) * in_c;
  const index_t filter_row = kw * in_c;
  for (index_t ky = 0; ky < kh; ++ky) {
    std::int8_t* dst = patch + ky * filter_row;
    if (ky < ry.t0 || ky >= ry.t1) {
      std::memset(dst, zero_point, static_cast<std::size_t>(filter_row));
      continue;
    }
    const std::int8_t* in_row = in_b + (y0 + ky * w.dilation_h) * in_w * in_c;
    std::memset(dst, zero_point, static_cast<std::size_t>(rx.t0 * in_c));
    if (w.dilation_w == 1) {
      std::memcpy(dst + rx.t0 * in_c, in_row + (x0 + rx.t0) * in_c, static_cast<std::size_t>((rx.t1 - rx.t0) * in_c));
    } else {
      for (index_t kx = rx.t0; kx < rx.t1; ++kx)
        std::memcpy(dst + kx * in_c, in_row + (x0 + kx * w.dilation_w) * in_c, static_cast<std::size_t>(in_c));
    }
    std::memset(dst + rx.t1 * in_c, zero_point, static_cast<std::size_t>((kw - rx.t1) * in_c));
  }
  return patch;
}

}  // namespace detail
}  // namespace kiln::kernels::int8
