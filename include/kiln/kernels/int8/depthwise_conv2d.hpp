// kiln/kernels/int8/depthwise_conv2d.hpp — TFLite int8 DEPTHWISE_CONV_2D (per-channel weights).
//
//   out[b, oy, ox, ic*dm + m] = requant( bias[oc] + sum_{ky, kx}
//       (in[b, oy*sh - pt + ky*dh, ox*sw - pl + kx*dw, ic] + input_offset) * w[0, ky, kx, ic*dm + m], oc )
//
// Weights [1, kh, kw, out_c] with out_c = in_c * depth_multiplier (TFLite's layout).
// Channels are independent, so the loop keeps a block of int32 accumulators (one per
// output channel) and walks the window taps outside, the channels inside. With depth
// multiplier 1 (every MLPerf Tiny model) the channel loop is explicit SIMD, 16 (AVX2) or
// 8 (SSE4.1, NEON) channels in registers, or without a vector unit 4 channels as packed int16
// halves (dsp.hpp: SXTAB16 + SMLABB/SMLATT on Cortex-M DSP cores); other channels and depth
// multipliers use the scalar block (int32 accumulators on the stack). Integer sums: any order gives the same bits.
#pragma once

#include <cstdint>

#include "../../core/config.hpp"
#include "../../core/shape.hpp"
#include "../../core/status.hpp"
#include "dot.hpp"
#include "dsp.hpp"
#include "isa.hpp"
#include "requant.hpp"
#include "window.hpp"

namespace kiln::kernels::int8 {

struct DepthwiseConv2DParams {
  Window2D window;
  index_t depth_multiplier = 1;
  std::int32_t input_offset = 0;  ///< -input_zero_point
  OutputStage output;
};

namespace detail {

// One output pixel of a depth-multiplier-1 depthwise conv, vector (or packed int16) channels
// only: returns how many leading channels it wrote (a multiple of the vector width); rq: the
// channels' ChannelRequant (scalar path) or null. The accumulators stay in registers across all
// taps. (x + offset) * w is at most 255 * 128 in magnitude, so the int16 product (vpmullw /
// vmull) is exact before widening to int32.
inline index_t depthwise_pixel_simd(const std::int8_t* in_b, const std::int8_t* filter,
                                    const std::int32_t* bias, const DepthwiseConv2DParams& p,
                                    const ChannelRequant* rq,
                                    index_t in_w, index_t channels, index_t kw, index_t y0,
                                    index_t x0, TapRange ry, TapRange rx, std::int8_t* y) {
  const Window2D& w = p.window;
  index_t c = 0;
  (void)rq;  // the vector paths requantise with requantize8
#if KILN_INT8_AVX2
  const __m256i off = _mm256_set1_epi16(static_cast<short>(p.input_offset));
  for (; c + 16 <= channels; c += 16) {
    __m256i a0 = bias ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bias + c)) : _mm256_setzero_si256();
    __m256i a1 = bias ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bias + c + 8)) : _mm256_setzero_si256();
    for (index_t ky = ry.t0; ky < ry.t1; ++ky)
      for (index_t kx = rx.t0; kx < rx.t1; ++kx) {
        const std::int8_t* px = in_b + ((y0 + ky * w.dilation_h) * in_w + (x0 + kx * w.dilation_w)) * channels + c;
        const std::int8_t* f = filter + (ky * kw + kx) * channels + c;
        const __m256i xv = _mm256_add_epi16(dot_detail::widen16(px), off);
        const __m256i prod = _mm256_mullo_epi16(xv, dot_detail::widen16(f));
        a0 = _mm256_add_epi32(a0, _mm256_cvtepi16_epi32(_mm256_castsi256_si128(prod)));
        a1 = _mm256_add_epi32(a1, _mm256_cvtepi16_epi32(_mm256_extracti128_si256(prod, 1)));
      }
    alignas(32) std::int32_t acc[16];
    _mm256_store_si256(reinterpret_cast<__m256i*>(acc), a0);
    _mm256_store_si256(reinterpret_cast<__m256i*>(acc + 8), a1);
    requantize8(acc, c, p.output, y + c);
    requantize8(acc + 8, c + 8, p.output, y + c + 8);
  }
#elif KILN_INT8_SSE41
  const __m128i off = _mm_set1_epi16(static_cast<short>(p.input_offset));
  for (; c + 8 <= channels; c += 8) {
    __m128i a0 = bias ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(bias + c)) : _mm_setzero_si128();
    __m128i a1 = bias ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(bias + c + 4)) : _mm_setzero_si128();
    for (index_t ky = ry.t0; ky < ry.t1; ++ky)
      for (index_t kx = rx.t0; kx < rx.t1; ++kx) {
        const std::int8_t* px = in_b + ((y0 + ky * w.dilation_h) * in_w + (x0 + kx * w.dilation_w)) * channels + c;
        const std::int8_t* f = filter + (ky * kw + kx) * channels + c;
        const __m128i prod = _mm_mullo_epi16(_mm_add_epi16(dot_detail::widen8(px), off), dot_detail::widen8(f));
        a0 = _mm_add_epi32(a0, _mm_cvtepi16_epi32(prod));
        a1 = _mm_add_epi32(a1, _mm_cvtepi16_epi32(_mm_srli_si128(prod, 8)));
      }
    alignas(16) std::int32_t acc[8];
    _mm_store_si128(reinterpret_cast<__m128i*>(acc), a0);
    _mm_store_si128(reinterpret_cast<__m128i*>(acc + 4), a1);
    for (int i = 0; i < 8; ++i) y[c + i] = p.output.apply(acc[i], c + i);
  }
#elif KILN_INT8_NEON
  const int16x8_t off = vdupq_n_s16(static_cast<std::int16_t>(p.input_offset));
  for (; c + 8 <= channels; c += 8) {
    int32x4_t a0 = bias ? vld1q_s32(bias + c) : vdupq_n_s32(0);
    int32x4_t a1 = bias ? vld1q_s32(bias + c + 4) : vdupq_n_s32(0);
    for (index_t ky = ry.t0; ky < ry.t1; ++ky)
      for (index_t kx = rx.t0; kx < rx.t1; ++kx) {
        const std::int8_t* px = in_b + ((y0 + ky * w.dilation_h) * in_w + (x0 + kx * w.dilation_w)) * channels + c;
        const std::int8_t* f = filter + (ky * kw + kx) * channels + c;
        const int16x8_t xv = vaddq_s16(vmovl_s8(vld1_s8(px)), off);
        const int16x8_t fv = vmovl_s8(vld1_s8(f));
        a0 = vmlal_s16(a0, vget_low_s16(xv), vget_low_s16(fv));
        a1 = vmlal_s16(a1, vget_high_s16(xv), vget_high_s16(fv));
      }
    std::int32_t acc[8];
    vst1q_s32(acc, a0);
    vst1q_s32(acc + 4, a1);
    requantize8(acc, c, p.output, y + c);
  }
#else
  // No vector unit (Cortex-M, KILN_NO_SIMD): four channels per word, dsp.hpp's packed halves.
  // SXTAB16 unpacks channels 0 and 2 (and, rotated, 1 and 3) with the offset added, SXTB16 the
  // weights; SMLABB/SMLATT accumulate the bottom/top halves: 4 multiply-accumulates per 2 loads,
  // 4 unpacks and 4 MACs, the accumulators in registers across the window.
  const std::uint32_t off2 = dsp::both_halves(p.input_offset);
  const index_t row_step = w.dilation_h * in_w * channels, col_step = w.dilation_w * channels;
  const index_t taps_w = rx.t1 - rx.t0;
  for (; c + 4 <= channels; c += 4) {
    std::int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    if (bias) a0 = bias[c], a1 = bias[c + 1], a2 = bias[c + 2], a3 = bias[c + 3];
    const std::int8_t* px_row = in_b + ((y0 + ry.t0 * w.dilation_h) * in_w + (x0 + rx.t0 * w.dilation_w)) * channels + c;
    const std::int8_t* f_row = filter + (ry.t0 * kw + rx.t0) * channels + c;
    auto tap = [&](const std::int8_t* px, const std::int8_t* f) {
      const std::uint32_t xv = dsp::load32(px), wv = dsp::load32(f);
      const std::uint32_t x02 = dsp::sxtab16(off2, xv), x13 = dsp::sxtab16_ror8(off2, xv);
      const std::uint32_t w02 = dsp::sxtb16(wv), w13 = dsp::sxtb16_ror8(wv);
      a0 = dsp::smlabb(x02, w02, a0);
      a2 = dsp::smlatt(x02, w02, a2);
      a1 = dsp::smlabb(x13, w13, a1);
      a3 = dsp::smlatt(x13, w13, a3);
    };
    for (index_t ky = ry.t0; ky < ry.t1; ++ky, px_row += row_step, f_row += kw * channels) {
      if (taps_w == 3) {  // a whole 3-wide row (3x3 kernels away from the border): no loop
#if KILN_INT8_ARM_DSP && defined(__GNUC__)
        // The three taps in assembly, 12 instructions each: from C, GCC 12 spills the loaded
        // words around the 13 live registers (about 49 instructions a row).
        const std::int8_t* xp = px_row;
        const std::int8_t* fp = f_row;
        std::uint32_t xv, wv, t1, t2;
#define KILN_DW_TAP(advance)                         \
  "ldr %[xv], [%[xp]]\n\t"                          \
  "ldr %[wv], [%[fp]]\n\t" advance                  \
  "sxtab16 %[t1], %[off], %[xv]\n\t"                \
  "sxtb16 %[t2], %[wv]\n\t"                         \
  "smlabb %[a0], %[t1], %[t2], %[a0]\n\t"           \
  "smlatt %[a2], %[t1], %[t2], %[a2]\n\t"           \
  "sxtab16 %[t1], %[off], %[xv], ror #8\n\t"        \
  "sxtb16 %[t2], %[wv], ror #8\n\t"                 \
  "smlabb %[a1], %[t1], %[t2], %[a1]\n\t"           \
  "smlatt %[a3], %[t1], %[t2], %[a3]\n\t"
#define KILN_DW_NEXT "add %[xp], %[xp], %[cs]\n\tadd %[fp], %[fp], %[fs]\n\t"
        __asm__(KILN_DW_TAP(KILN_DW_NEXT) KILN_DW_TAP(KILN_DW_NEXT) KILN_DW_TAP("")
                : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [xp] "+r"(xp), [fp] "+r"(fp),
                  [xv] "=&r"(xv), [wv] "=&r"(wv), [t1] "=&r"(t1), [t2] "=&r"(t2)
                : [cs] "r"(col_step), [fs] "r"(channels), [off] "r"(off2)
                : "memory");
#undef KILN_DW_NEXT
#undef KILN_DW_TAP
#else
        tap(px_row, f_row);
        tap(px_row + col_step, f_row + channels);
        tap(px_row + 2 * col_step, f_row + 2 * channels);
#endif
        continue;
      }
      const std::int8_t* px = px_row;
      const std::int8_t* f = f_row;
      for (index_t k = 0; k < taps_w; ++k, px += col_step, f += channels) tap(px, f);
    }
    const OutputStage& o = p.output;
    if (rq) {
      y[c] = apply_channel(a0, rq[c], o);
      y[c + 1] = apply_channel(a1, rq[c + 1], o);
      y[c + 2] = apply_channel(a2, rq[c + 2], o);
      y[c + 3] = apply_channel(a3, rq[c + 3], o);
      continue;
    }
    const index_t k = o.per_channel ? c : 0, d = o.per_channel ? 1 : 0;
    y[c] = o.apply_with(a0, o.multiplier[k], o.shift[k]);
    y[c + 1] = o.apply_with(a1, o.multiplier[k + d], o.shift[k + d]);
    y[c + 2] = o.apply_with(a2, o.multiplier[k + 2 * d], o.shift[k + 2 * d]);
    y[c + 3] = o.apply_with(a3, o.multiplier[k + 3 * d], o.shift[k + 3 * d]);
  }
#endif
  return c;
}

}  // namespace detail

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
  // Without vector units: the channels' requantisation constants once per call (ChannelRequant).
  const ChannelRequant* rq = nullptr;
#if !(KILN_INT8_AVX2 || KILN_INT8_SSE41 || KILN_INT8_NEON)
  ChannelRequant rq_storage[KILN_INT8_REQUANT_CHANNELS];
  if (dm == 1 && channel_requant(p.output, out_c, rq_storage)) rq = rq_storage;
#endif
  for (index_t b = 0; b < batches; ++b) {
    const std::int8_t* in_b = input + b * in_h * in_w * in_c;
    for (index_t oy = 0; oy < out_h; ++oy) {
      const index_t y0 = oy * w.stride_h - w.pad_top;
      const detail::TapRange ry = detail::valid_taps(y0, kh, w.dilation_h, in_h);
      for (index_t ox = 0; ox < out_w; ++ox) {
        const index_t x0 = ox * w.stride_w - w.pad_left;
        const detail::TapRange rx = detail::valid_taps(x0, kw, w.dilation_w, in_w);
        std::int8_t* y = output + ((b * out_h + oy) * out_w + ox) * out_c;
        index_t c_done = 0;
        if (dm == 1) c_done = detail::depthwise_pixel_simd(in_b, filter, bias, p, rq, in_w, in_c, kw, y0, x0, ry, rx, y);
        for (index_t c0 = c_done; c0 < out_c; c0 += kBlock) {
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
