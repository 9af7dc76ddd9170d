// kiln/kernels/simd.hpp — which SIMD the kernels compile for.
//
// xsimd is included only when it has an architecture for this target (probing
// its config header first is safe on any target, Cortex-M included). Otherwise,
// or under KILN_NO_SIMD, KILN_SIMD is 0 and every kernel uses its scalar twin.
//
// armv7 NEON (32-bit Advanced SIMD) always flushes denormal operands and results to zero,
// whatever FPSCR says, so the SIMD kernels do there too; aarch64, x86 and the scalar twins keep
// denormals. Division and sqrt are not NEON on armv7 at all (ew_math.hpp).
//
// x86 stops at AVX2+FMA even when the compiler may use AVX-512 (-march=native on a Zen 4 or a
// recent Xeon): the kernels' register tiles and tolerances are tuned and tested for 8 lanes, and
// g++ 12.2 (Debian 12) cannot build xsimd's AVX-512 code under -Werror (its own intrinsics
// header warns "__Y may be used uninitialized": GCC bug 105593, fixed in 12.3). Define
// KILN_ENABLE_AVX512 to let xsimd pick AVX-512 anyway (untested).
#pragma once

#include "../core/config.hpp"

#if KILN_HAS_XSIMD
#include <xsimd/config/xsimd_config.hpp>
#if !defined(XSIMD_NO_SUPPORTED_ARCHITECTURE)
#include <xsimd/xsimd.hpp>
#define KILN_SIMD 1
#endif
#endif
#ifndef KILN_SIMD
#define KILN_SIMD 0
#endif

namespace kiln::kernels {

#if KILN_SIMD
#if defined(__AVX512F__) && !defined(KILN_ENABLE_AVX512) && defined(__FMA__)
using simd_arch = xsimd::fma3<xsimd::avx2>;
#elif defined(__AVX512F__) && !defined(KILN_ENABLE_AVX512)
using simd_arch = xsimd::avx2;
#else
using simd_arch = xsimd::default_arch;
#endif
using fbatch = xsimd::batch<float, simd_arch>;
using fmask = xsimd::batch_bool<float, simd_arch>;
/// Floats per vector register.
inline constexpr int kLanes = static_cast<int>(fbatch::size);
/// Architectural vector registers (drives register tiling).
#if defined(__aarch64__) || (defined(__AVX512F__) && defined(KILN_ENABLE_AVX512))
inline constexpr int kVectorRegs = 32;
#else
inline constexpr int kVectorRegs = 16;
#endif
inline constexpr const char* kSimdName = simd_arch::name();
#else
inline constexpr int kLanes = 1;
inline constexpr int kVectorRegs = 16;
inline constexpr const char* kSimdName = "scalar";
#endif

}  // namespace kiln::kernels
