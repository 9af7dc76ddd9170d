// kiln/kernels/int8/fully_connected.hpp — TFLite int8 FULLY_CONNECTED.
//
//   out[b, o] = requant( sum_i (in[b, i] + input_offset) * w[o, i] + bias[o], channel o )
//
// Layouts as in TFLite: weights [out, in] (row o is output o's weights, contiguous),
// input [..., in] flattened to batches x in, output [batches, out] (any shape with
// batches * out elements and out as its last extent). Weights are symmetric int8
// (zero point 0); multipliers per output channel or per tensor (OutputStage::per_channel).
// bias may be null (no bias). Without vector units (Cortex-M, KILN_NO_SIMD) the input row is
// widened once and four weight rows run against it (detail::fully_connected_rows: SMLAD on DSP cores).
#pragma once

#include <cstdint>

#include "../../core/config.hpp"
#include "../../core/shape.hpp"
#include "../../core/status.hpp"
#include "dot.hpp"
#include "dsp.hpp"
#include "requant.hpp"

#ifndef KILN_INT8_FC_COLUMN
/// Without vector units: the longest input row widened once to int16 on the stack (2 bytes each);
/// longer rows use the dot4 path.
#define KILN_INT8_FC_COLUMN 1024
#endif

namespace kiln::kernels::int8 {

struct FullyConnectedParams {
  std::int32_t input_offset = 0;  ///< -input_zero_point
  OutputStage output;
};

namespace detail {

/// acc[r] += column . row r for four weight rows (int8) against one int16 column in
/// dsp::widen_column's order: per four bytes 2 column loads, then per row a weight load, two
/// unpacks and two SMLADs (24 instructions for 16 multiply-accumulates on a Cortex-M4; the
/// input side is widened once per call instead of once per row group as in dot4).
inline void dot_4x1(const std::int16_t* c, const std::int8_t* w0, const std::int8_t* w1, const std::int8_t* w2,
                    const std::int8_t* w3, index_t n, std::int32_t* acc) {
  std::int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
  const std::int16_t* end4 = c + (n & ~index_t{3});
#if KILN_INT8_ARM_DSP && defined(__GNUC__)
  // In assembly: the loop's state needs all 14 registers, which GCC 12 does not find from C.
  if (c != end4) {
    std::uint32_t xa, xb, w, t;
    __asm__ volatile(
        "1:\n\t"
        "ldr %[xa], [%[c]], #4\n\t"
        "ldr %[xb], [%[c]], #4\n\t"
        "ldr %[w], [%[w0]], #4\n\t"
        "sxtb16 %[t], %[w]\n\t"
        "smlad %[a0], %[t], %[xa], %[a0]\n\t"
        "sxtb16 %[t], %[w], ror #8\n\t"
        "smlad %[a0], %[t], %[xb], %[a0]\n\t"
        "ldr %[w], [%[w1]], #4\n\t"
        "sxtb16 %[t], %[w]\n\t"
        "smlad %[a1], %[t], %[xa], %[a1]\n\t"
        "sxtb16 %[t], %[w], ror #8\n\t"
        "smlad %[a1], %[t], %[xb], %[a1]\n\t"
        "ldr %[w], [%[w2]], #4\n\t"
        "sxtb16 %[t], %[w]\n\t"
        "smlad %[a2], %[t], %[xa], %[a2]\n\t"
        "sxtb16 %[t], %[w], ror #8\n\t"
        "smlad %[a2], %[t], %[xb], %[a2]\n\t"
        "ldr %[w], [%[w3]], #4\n\t"
        "sxtb16 %[t], %[w]\n\t"
        "smlad %[a3], %[t], %[xa], %[a3]\n\t"
        "sxtb16 %[t], %[w], ror #8\n\t"
        "smlad %[a3], %[t], %[xb], %[a3]\n\t"
        "cmp %[c], %[end]\n\t"
        "bne 1b\n\t"
        : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [w0] "+r"(w0), [w1] "+r"(w1),
          [w2] "+r"(w2), [w3] "+r"(w3), [c] "+r"(c), [xa] "=&r"(xa), [xb] "=&r"(xb), [w] "=&r"(w), [t] "=&r"(t)
        : [end] "r"(end4)
        : "cc", "memory");
  }
#else
  for (; c != end4; c += 4, w0 += 4, w1 += 4, w2 += 4, w3 += 4) {
    const std::uint32_t xa = dsp::load32(c), xb = dsp::load32(c + 2);
    auto row = [&](const std::int8_t* wr, std::int32_t a) {
      const std::uint32_t wv = dsp::load32(wr);
      return dsp::smlad(dsp::sxtb16_ror8(wv), xb, dsp::smlad(dsp::sxtb16(wv), xa, a));
    };
    a0 = row(w0, a0);
    a1 = row(w1, a1);
    a2 = row(w2, a2);
    a3 = row(w3, a3);
  }
#endif
  for (index_t i = 0; i < (n & 3); ++i) {
    a0 += c[i] * w0[i];
    a1 += c[i] * w1[i];
    a2 += c[i] * w2[i];
    a3 += c[i] * w3[i];
  }
  acc[0] = a0;
  acc[1] = a1;
  acc[2] = a2;
  acc[3] = a3;
}

/// fully_connected (shapes checked) without vector units, n_in <= KILN_INT8_FC_COLUMN: each input
/// row widened once, four output rows per dot_4x1 (a tail reuses the last row and drops the
/// copies), requantised with ChannelRequant when the stage fits it.
inline void fully_connected_rows(const FullyConnectedParams& p, index_t batches, index_t n_in, index_t n_out,
                                 const std::int8_t* input, const std::int8_t* weights, const std::int32_t* bias,
                                 std::int8_t* output) {
  alignas(4) std::int16_t col[KILN_INT8_FC_COLUMN];
  const OutputStage& out = p.output;
  ChannelRequant rq[KILN_INT8_REQUANT_CHANNELS];
  const index_t rq_step = out.per_channel ? 1 : 0;  // per tensor: one entry for every row
  const bool fast = channel_requant(out, out.per_channel ? n_out : 1, rq);
  for (index_t b = 0; b < batches; ++b) {
    dsp::widen_column(input + b * n_in, n_in, p.input_offset, col);
    std::int8_t* y = output + b * n_out;
    for (index_t o = 0; o < n_out; o += 4) {
      index_t rows[4];
      std::int32_t acc[4];
      for (int r = 0; r < 4; ++r) {
        rows[r] = o + r < n_out ? o + r : n_out - 1;
        acc[r] = bias ? bias[rows[r]] : 0;
      }
      dot_4x1(col, weights + rows[0] * n_in, weights + rows[1] * n_in, weights + rows[2] * n_in,
              weights + rows[3] * n_in, n_in, acc);
      for (int r = 0; r < 4; ++r)
        y[rows[r]] = fast ? apply_channel(acc[r], rq[rows[r] * rq_step], out) : out.apply(acc[r], rows[r]);
    }
  }
}

}  // namespace detail

inline Status fully_connected(const FullyConnectedParams& p, const Shape& input_shape,
                              const std::int8_t* input, const Shape& weight_shape,
                              const std::int8_t* weights, const std::int32_t* bias,
                              const Shape& output_shape, std::int8_t* output) {
  if (weight_shape.rank() != 2 || !weight_shape.valid() || !input_shape.valid() ||
      !output_shape.valid() || input_shape.rank() < 1 || output_shape.rank() < 1)
    return Status(Errc::shape_mismatch) << "fully_connected: weights " << weight_shape
                                        << " must be [out, in]; input " << input_shape
                                        << ", output " << output_shape;
  const index_t n_out = weight_shape[0], n_in = weight_shape[1];
  const index_t batches = n_in > 0 ? input_shape.numel() / n_in : 0;
  if (n_in == 0 || input_shape.back() != n_in || output_shape.back() != n_out ||
      output_shape.numel() != batches * n_out)
    return Status(Errc::shape_mismatch)
           << "fully_connected: input " << input_shape << ", weights " << weight_shape
           << " and output " << output_shape << " do not agree (want input [..., " << n_in
           << "], output [batches, " << n_out << "])";
  if (Status s = detail::check_output_stage("fully_connected", p.output, n_out, p.input_offset); !s)
    return s;

  if (!(KILN_INT8_AVX2 || KILN_INT8_SSE41 || KILN_INT8_NEON) && n_in <= KILN_INT8_FC_COLUMN) {
    detail::fully_connected_rows(p, batches, n_in, n_out, input, weights, bias, output);
    return Status();
  }
  for (index_t b = 0; b < batches; ++b) {
    const std::int8_t* x = input + b * n_in;
    std::int8_t* y = output + b * n_out;
    index_t o = 0;
    // Eight output rows per pass (two 4-row dot tiles, each input vector loaded once per
    // four weight rows), requantised together; then groups of four, then single rows.
    for (; o + 8 <= n_out; o += 8) {
      std::int32_t acc[8];
      for (int r = 0; r < 8; ++r) acc[r] = bias ? bias[o + r] : 0;
      dot4_with_offset(x, weights + o * n_in, n_in, n_in, p.input_offset, acc);
      dot4_with_offset(x, weights + (o + 4) * n_in, n_in, n_in, p.input_offset, acc + 4);
      requantize8(acc, o, p.output, y + o);
    }
    for (; o + 4 <= n_out; o += 4) {
      std::int32_t acc[4];
      for (int r = 0; r < 4; ++r) acc[r] = bias ? bias[o + r] : 0;
      dot4_with_offset(x, weights + o * n_in, n_in, n_in, p.input_offset, acc);
      for (int r = 0; r < 4; ++r) y[o + r] = p.output.apply(acc[r], o + r);
    }
    for (; o < n_out; ++o) {
      DotAccumulator acc(p.input_offset, bias ? bias[o] : 0);
      acc.add(x, weights + o * n_in, n_in);
      y[o] = p.output.apply(acc.value(), o);
    }
  }
  return Status();
}

}  // namespace kiln::kernels::int8
