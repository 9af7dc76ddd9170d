// kiln/kernels/int8/conv2d_pairs.hpp — int8 CONV_2D for cores without vector units (Cortex-M):
// two output pixels x two output channels per inner loop, the CMSIS-NN shape.
//
// Each output pixel's window (conv2d.hpp's patch, or the input itself for 1x1 windows) is
// widened once into an int16 column with the input offset added, its bytes reordered per group
// of four as (0, 2, 1, 3): exactly the order in which SXTB16 and SXTB16-ROR8 unpack a word of
// weights, so an int8 weight word feeds two SMLADs per column without any repacking. Per four
// weight bytes and two channels x two pixels (16 multiply-accumulates): 2 weight loads, 4
// unpacks, 4 column loads, 8 SMLADs. The column is widened once per pixel and used by every
// output channel; the weights stay int8 in flash (no pre-expanded copy). The multiplier and
// shift of a channel are loaded once for both pixels. Odd channel or pixel counts run the last
// one twice (duplicate row/column) and drop the copy. The requantisation constants of every
// channel are precomputed once per call (requant.hpp's ChannelRequant) when they fit its form. Sums are exact int32: the same bits as
// every other path. Without the DSP extension dsp.hpp's plain C does the same operations.
#pragma once

#include <cstdint>
#include <cstring>

#include "../../core/config.hpp"
#include "dsp.hpp"
#include "requant.hpp"
#include "window.hpp"

#ifndef KILN_INT8_CONV_COLUMN
/// int16 elements of one widened window column (two on the stack); larger windows use conv2d's
/// general path. 640 covers 3x3x64 and 1x1x640.
#define KILN_INT8_CONV_COLUMN 640
#endif

namespace kiln::kernels::int8::detail {

/// acc[2r + p] += column p . weight row r over n elements: column 0 at `c`, column 1 at
/// c + KILN_INT8_CONV_COLUMN (dsp::widen_column's order), rows at w0 and w1. Written with one column
/// pointer and the columns a constant apart so that the loop's state (4 accumulators, 3
/// pointers, the end) nearly fits the M4's registers (unrolling further only adds spills).
inline void dot_2x2(const std::int16_t* c, const std::int8_t* w0, const std::int8_t* w1, index_t n,
                    std::int32_t* acc) {
  constexpr index_t kC1 = KILN_INT8_CONV_COLUMN;
  std::int32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
  const std::int8_t* end4 = w0 + (n & ~index_t{3});
#if KILN_INT8_ARM_DSP && defined(__GNUC__)
  // The same step in assembly: GCC 12 spills and reloads columns in the C loop (about 30
  // instructions per step instead of these 21, measured on the MLPerf Tiny convs).
  if (w0 != end4) {
    std::uint32_t wa, wb, x0, x1, t;
    __asm__ volatile(
        "1:\n\t"
        "ldr %[wa], [%[w0]], #4\n\t"
        "ldr %[wb], [%[w1]], #4\n\t"
        "ldr %[x0], [%[c]]\n\t"
        "ldr %[x1], [%[c], %[o1]]\n\t"
        "sxtb16 %[t], %[wa]\n\t"
        "smlad %[a00], %[t], %[x0], %[a00]\n\t"
        "smlad %[a01], %[t], %[x1], %[a01]\n\t"
        "sxtb16 %[t], %[wb]\n\t"
        "smlad %[a10], %[t], %[x0], %[a10]\n\t"
        "smlad %[a11], %[t], %[x1], %[a11]\n\t"
        "ldr %[x0], [%[c], #4]\n\t"
        "ldr %[x1], [%[c], %[o2]]\n\t"
        "sxtb16 %[t], %[wa], ror #8\n\t"
        "smlad %[a00], %[t], %[x0], %[a00]\n\t"
        "smlad %[a01], %[t], %[x1], %[a01]\n\t"
        "sxtb16 %[t], %[wb], ror #8\n\t"
        "smlad %[a10], %[t], %[x0], %[a10]\n\t"
        "smlad %[a11], %[t], %[x1], %[a11]\n\t"
        "adds %[c], %[c], #8\n\t"
        "cmp %[w0], %[end]\n\t"
        "bne 1b\n\t"
        : [a00] "+r"(a00), [a01] "+r"(a01), [a10] "+r"(a10), [a11] "+r"(a11), [w0] "+r"(w0), [w1] "+r"(w1),
          [c] "+r"(c), [wa] "=&r"(wa), [wb] "=&r"(wb), [x0] "=&r"(x0), [x1] "=&r"(x1), [t] "=&r"(t)
        : [end] "r"(end4), [o1] "n"(2 * kC1), [o2] "n"(2 * kC1 + 4)
        : "cc", "memory");
  }
#else
  // Four weight bytes of both rows against both columns: 16 multiply-accumulates.
  auto step = [&](const std::int16_t* cp, const std::int8_t* p0, const std::int8_t* p1) {
    const std::uint32_t x0a = dsp::load32(cp), x1a = dsp::load32(cp + kC1);
    const std::uint32_t wa = dsp::load32(p0), wb = dsp::load32(p1);
    const std::uint32_t wa02 = dsp::sxtb16(wa), wb02 = dsp::sxtb16(wb);
    a00 = dsp::smlad(wa02, x0a, a00);
    a01 = dsp::smlad(wa02, x1a, a01);
    a10 = dsp::smlad(wb02, x0a, a10);
    a11 = dsp::smlad(wb02, x1a, a11);
    const std::uint32_t x0b = dsp::load32(cp + 2), x1b = dsp::load32(cp + kC1 + 2);
    const std::uint32_t wa13 = dsp::sxtb16_ror8(wa), wb13 = dsp::sxtb16_ror8(wb);
    a00 = dsp::smlad(wa13, x0b, a00);
    a01 = dsp::smlad(wa13, x1b, a01);
    a10 = dsp::smlad(wb13, x0b, a10);
    a11 = dsp::smlad(wb13, x1b, a11);
  };
  while (w0 != end4) {
    step(c, w0, w1);
    c += 4;
    w0 += 4;
    w1 += 4;
  }
#endif
  for (index_t i = 0; i < (n & 3); ++i) {
    a00 += c[i] * w0[i];
    a01 += c[kC1 + i] * w0[i];
    a10 += c[i] * w1[i];
    a11 += c[kC1 + i] * w1[i];
  }
  acc[0] = a00;
  acc[1] = a01;
  acc[2] = a10;
  acc[3] = a11;
}

/// conv2d (shapes already checked by conv2d.hpp) when patch_len <= KILN_INT8_CONV_COLUMN.
inline void conv2d_pairs(const Window2D& w, std::int32_t input_offset, const OutputStage& out,
                         const Shape& input_shape, const std::int8_t* input, index_t kh, index_t kw,
                         const std::int8_t* filter, const std::int32_t* bias, const Shape& output_shape,
                         std::int8_t* output) {
  const index_t in_h = input_shape[1], in_w = input_shape[2], in_c = input_shape[3];
  const index_t out_h = output_shape[1], out_w = output_shape[2], out_c = output_shape[3];
  const index_t patch_len = kh * kw * in_c;
  const index_t pixels = output_shape[0] * out_h * out_w;
  const std::int8_t zero_point = static_cast<std::int8_t>(-input_offset);
  alignas(4) std::int16_t cols[2][KILN_INT8_CONV_COLUMN];
  alignas(4) std::int8_t patch[KILN_INT8_CONV_COLUMN];
  ChannelRequant rq[KILN_INT8_REQUANT_CHANNELS];  // bias and both roundings in one record per channel
  const bool fast = channel_requant(out, out_c, rq, bias);
  const std::int32_t out_offset = out.output_offset, act_min = out.act_min, act_max = out.act_max;
  // Widens output pixel q's window into cols[slot]. A pointwise conv (1x1, stride 1, no padding:
  // the MobileNet/DS-CNN expansions) reads pixel q's channels in place, no window arithmetic.
  const bool pointwise = kh == 1 && kw == 1 && w.stride_h == 1 && w.stride_w == 1 && w.pad_top == 0 &&
                         w.pad_left == 0 && out_h == in_h && out_w == in_w;
  auto load_column = [&](index_t q, int slot) {
    if (pointwise) {
      dsp::widen_column(input + q * in_c, in_c, input_offset, cols[slot]);
      return;
    }
    const index_t b = q / (out_h * out_w), oy = q / out_w % out_h, ox = q % out_w;
    const index_t y0 = oy * w.stride_h - w.pad_top, x0 = ox * w.stride_w - w.pad_left;
    const std::int8_t* px = window_patch(input + b * in_h * in_w * in_c, in_w, in_c, kh, kw, w, y0, x0,
                                         valid_taps(y0, kh, w.dilation_h, in_h),
                                         valid_taps(x0, kw, w.dilation_w, in_w), zero_point, patch);
    dsp::widen_column(px, patch_len, input_offset, cols[slot]);
  };
  for (index_t q = 0; q < pixels; q += 2) {
    const bool two = q + 1 < pixels;
    load_column(q, 0);
    if (two) load_column(q + 1, 1);
    else std::memcpy(cols[1], cols[0], static_cast<std::size_t>(patch_len) * sizeof(std::int16_t));
    std::int8_t* y0 = output + q * out_c;
    std::int8_t* y1 = two ? y0 + out_c : y0;  // a lone last pixel writes its outputs twice
    if (fast) {
      // Pointers advance with the channel pair; the record holds bias and constants (few loads).
      const ChannelRequant* r = rq;
      const std::int8_t* wp = filter;
      for (index_t oc = 0; oc < out_c; oc += 2, r += 2, wp += 2 * patch_len) {
        const index_t d = oc + 1 < out_c ? 1 : 0;  // a lone last channel is computed twice
        std::int32_t acc[4] = {r[0].bias, r[0].bias, r[d].bias, r[d].bias};
        dot_2x2(cols[0], wp, wp + d * patch_len, patch_len, acc);
        y0[oc] = apply_channel(acc[0], r[0], out_offset, act_min, act_max);
        y1[oc] = apply_channel(acc[1], r[0], out_offset, act_min, act_max);
        y0[oc + d] = apply_channel(acc[2], r[d], out_offset, act_min, act_max);
        y1[oc + d] = apply_channel(acc[3], r[d], out_offset, act_min, act_max);
      }
      continue;
    }
    for (index_t oc = 0; oc < out_c; oc += 2) {
      const index_t od = oc + 1 < out_c ? oc + 1 : oc;
      std::int32_t acc[4];
      acc[0] = acc[1] = bias ? bias[oc] : 0;
      acc[2] = acc[3] = bias ? bias[od] : 0;
      dot_2x2(cols[0], filter + oc * patch_len, filter + od * patch_len, patch_len, acc);
      const index_t kc = out.per_channel ? oc : 0, kd = out.per_channel ? od : 0;
      const std::int32_t mc = out.multiplier[kc], sc = out.shift[kc];
      const std::int32_t md = out.multiplier[kd], sd = out.shift[kd];
      y0[oc] = out.apply_with(acc[0], mc, sc);
      y1[oc] = out.apply_with(acc[1], mc, sc);
      y0[od] = out.apply_with(acc[2], md, sd);
      y1[od] = out.apply_with(acc[3], md, sd);
    }
  }
}

}  // namespace kiln::kernels::int8::detail
