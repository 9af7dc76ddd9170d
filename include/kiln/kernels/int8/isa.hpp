// kiln/kernels/int8/isa.hpp — which integer SIMD the int8 kernels compile for.
//
// Chosen at compile time from the target's predefined macros; KILN_NO_SIMD forces the
// scalar code, as for the f32 kernels. Raw intrinsics, not xsimd: xsimd 8.1 has no
// widening int8/int16 multiply-add (vpmaddwd, vmlal_s16), which is what int8 needs.
//   KILN_INT8_AVX2    AVX2: vpmovsxbw + vpmaddwd, 16 int8 per step
//   KILN_INT8_SSE41   SSE4.1: pmovsxbw + pmaddwd, 8 per step
//   KILN_INT8_NEON    NEON (armv7 and aarch64): vmovl_s8 + vmlal_s16
//   KILN_INT8_ARM_DSP Cortex-M with the DSP extension (M4/M7/M33/M55): SXTAB16 + SMLAD
// Every path computes exact int32 sums, so all give the scalar path's bits.
#pragma once

#if !defined(KILN_NO_SIMD) && defined(__AVX2__)
#include <immintrin.h>
#define KILN_INT8_AVX2 1
#elif !defined(KILN_NO_SIMD) && defined(__SSE4_1__)
#include <smmintrin.h>
#define KILN_INT8_SSE41 1
#elif !defined(KILN_NO_SIMD) && (defined(__ARM_NEON) || defined(__ARM_NEON__))
#include <arm_neon.h>
#define KILN_INT8_NEON 1
#elif defined(__ARM_FEATURE_DSP) && defined(__ARM_ARCH_ISA_THUMB)
#include <arm_acle.h>
#define KILN_INT8_ARM_DSP 1
#endif
#ifndef KILN_INT8_AVX2
#define KILN_INT8_AVX2 0
#endif
#ifndef KILN_INT8_SSE41
#define KILN_INT8_SSE41 0
#endif
#ifndef KILN_INT8_NEON
#define KILN_INT8_NEON 0
#endif
#ifndef KILN_INT8_ARM_DSP
#define KILN_INT8_ARM_DSP 0
#endif

namespace kiln::kernels::int8 {

/// Which inner-product path this build uses (for benchmarks and test logs).
inline constexpr const char* kDotPathName = KILN_INT8_AVX2    ? "avx2"
                                            : KILN_INT8_SSE41 ? "sse4.1"
                                            : KILN_INT8_NEON  ? "neon"
                                            : KILN_INT8_ARM_DSP ? "scalar+dsp(smlad)"
                                                                : "scalar";

}  // namespace kiln::kernels::int8
