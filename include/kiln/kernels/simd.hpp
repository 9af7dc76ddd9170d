// kiln/kernels/simd.hpp — which SIMD the kernels compile for.
//
// xsimd is included only when it has an architecture for this target (probing
// its config header first is safe on any target, Cortex-M included). Otherwise,
// or under KILN_NO_SIMD, KILN_SIMD is 0 and every kernel uses its scalar twin.
//
// armv7 NEON (32-bit Advanced SIMD) always flushes denormal operands and results to zero,
// whatever FPSCR says, so the SIMD kernels do there too; aarch64, x86 and the scalar twins keep
// denormals. Division and sqrt are not NEON on armv7 at all (ew_math.hpp).
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
using simd_arch = xsimd::default_arch;
using fbatch = xsimd::batch<float, simd_arch>;
using fmask = xsimd::batch_bool<float, simd_arch>;
/// Floats per vector register.
inline constexpr int kLanes = static_cast<int>(fbatch::size);
/// Architectural vector registers (drives register tiling).
#if defined(__aarch64__) || defined(__AVX512F__)
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
