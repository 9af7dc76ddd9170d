// kiln/kernels/int8/mean.hpp — TFLite int8 MEAN over any set of axes.
//
// TFLite Micro's int8 MEAN (reduce_common.cc EvalIntegerMean -> reference_ops::QuantizedMeanOrSum):
//   Prepare: (m, s) = QuantizeMultiplier(input_scale / output_scale) in double;
//   the 1/n of the mean is folded into it: k = min(floor(log2 n), 32, 31 + s),
//     m' = (int64(m) << k) / n (truncating), s' = s - k;
//   y = clamp(MultiplyByQuantizedMultiplier(sum(q) - input_zero_point * n, m', s')
//             + output_zero_point, -128, 127)
// with the sum in int32. (TFLite's own CPU kernel has other paths, e.g. a float one when the
// input and output quantisation are equal; kiln follows TFLM's, the microcontroller reference.)
#pragma once

#include <cstdint>

#include "../../core/config.hpp"
#include "../../core/shape.hpp"
#include "../../core/status.hpp"
#include "../../quant/fixed_point.hpp"
#include "../../quant/multiplier.hpp"
#include "../../quant/params.hpp"

namespace kiln::kernels::int8 {

struct MeanParams {
  std::uint32_t axes = 0;  ///< bit d set: input dimension d is averaged
  std::int32_t input_zero_point = 0, output_zero_point = 0;
  std::int32_t multiplier = 0;  ///< with 1/count folded in
  int shift = 0;
  std::int32_t count = 1;  ///< elements averaged per output
};

/// TFLite's Prepare plus the per-count adjustment of QuantizedMeanOrSum.
constexpr MeanParams make_mean_params(quant::TensorQuant in, quant::TensorQuant out, std::uint32_t axes,
                                      std::int32_t count) {
  MeanParams p;
  p.axes = axes;
  p.input_zero_point = in.zero_point;
  p.output_zero_point = out.zero_point;
  p.count = count;
  const quant::QuantizedMultiplier m =
      quant::quantize_multiplier(static_cast<double>(in.scale) / static_cast<double>(out.scale));
  int k = count > 0 ? 31 - quant::count_leading_zeros(static_cast<std::uint32_t>(count)) : 0;  // floor(log2 n)
  k = k < 32 ? k : 32;
  k = k < 31 + m.shift ? k : 31 + m.shift;
  p.multiplier = static_cast<std::int32_t>((static_cast<std::int64_t>(m.multiplier) << k) / (count > 0 ? count : 1));
  p.shift = m.shift - k;
  return p;
}

/// Averages x (shape xs) over p.axes into y (the kept dimensions in order; keep_dims only
/// changes the shape, not the bytes).
inline Status mean(const MeanParams& p, const Shape& xs, const std::int8_t* x, std::int8_t* y) {
  if (p.shift < -31 || p.shift > 31 || p.count < 1)
    return Status(Errc::invalid_argument) << "mean (int8): shift " << p.shift << " outside [-31, 31] or no elements ("
                                          << xs << ')';
  const int r = xs.rank();
  const Strides st = contiguous_strides(xs);
  index_t kept[kMaxRank], kept_stride[kMaxRank], red[kMaxRank], red_stride[kMaxRank];
  int nk = 0, nr = 0;
  index_t outputs = 1;
  for (int d = 0; d < r; ++d) {
    if (p.axes >> d & 1u) {
      red[nr] = xs[d];
      red_stride[nr++] = st[d];
    } else {
      kept[nk] = xs[d];
      kept_stride[nk++] = st[d];
      outputs *= xs[d];
    }
  }
  index_t ko[kMaxRank]{};
  for (index_t o = 0; o < outputs; ++o) {
    index_t base = 0;
    for (int k = 0; k < nk; ++k) base += ko[k] * kept_stride[k];
    std::int32_t sum = 0;
    index_t ro[kMaxRank]{};
    for (std::int32_t e = 0; e < p.count; ++e) {
      index_t off = base;
      for (int k = 0; k < nr; ++k) off += ro[k] * red_stride[k];
      sum += x[off];
      for (int k = nr - 1; k >= 0; --k) {
        if (++ro[k] < red[k]) break;
        ro[k] = 0;
      }
    }
    std::int32_t v = quant::multiply_by_quantized_multiplier(static_cast<std::int32_t>(static_cast<std::uint32_t>(
                                                                 sum - std::int64_t{p.input_zero_point} * p.count)),
                                                             p.multiplier, p.shift) +
                     p.output_zero_point;
    y[o] = static_cast<std::int8_t>(v < -128 ? -128 : v > 127 ? 127 : v);
    for (int k = nk - 1; k >= 0; --k) {
      if (++ko[k] < kept[k]) break;
      ko[k] = 0;
    }
  }
  return Status();
}

}  // namespace kiln::kernels::int8
