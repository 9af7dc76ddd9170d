// kiln/core/config.hpp — feature macros and capacity limits.
//
// Everything the core needs to know about its build lives here, so firmware can
// switch host conveniences off in one place:
//   KILN_NO_HEAP        no owning Tensor, no heap use anywhere (firmware)
//   KILN_NO_IOSTREAM    no print_graph(std::ostream&) overloads
//   KILN_NO_SIMD        force the scalar kernels even when xsimd has an arch
//   KILN_MAX_NODES      graph capacity (fixed storage, constexpr-friendly)
//   KILN_EW_TILE        floats per register tile in the fused elementwise loop
//   KILN_SEPARATE_COMPILATION  a model's translation unit sees only the engine's declarations
//                       (runtime/engine.hpp): no kernels, passes or xsimd to parse and optimise;
//   KILN_IMPLEMENTATION   defined (with the above) in the one TU that compiles the engine.
//                       CMake: link kiln::compiled instead of kiln::kiln.
#pragma once

#include <cstddef>
#include <cstdint>

#if defined(__cpp_exceptions) || defined(__EXCEPTIONS) || defined(_CPPUNWIND)
#define KILN_EXCEPTIONS 1
#else
#define KILN_EXCEPTIONS 0
#endif

#ifndef KILN_MAX_NODES
#define KILN_MAX_NODES 512
#endif

#ifndef KILN_EW_TILE
#if defined(__ARM_ARCH_7M__) || defined(__ARM_ARCH_7EM__) || defined(__ARM_ARCH_6M__) || \
    defined(__ARM_ARCH_8M_MAIN__) || defined(__ARM_ARCH_8M_BASE__)
#define KILN_EW_TILE 32
#else
#define KILN_EW_TILE 128
#endif
#endif

#if !defined(KILN_NO_SIMD)
#if __has_include(<xsimd/xsimd.hpp>)
#define KILN_HAS_XSIMD 1
#else
#define KILN_HAS_XSIMD 0
#endif
#else
#define KILN_HAS_XSIMD 0
#endif

// KILN_ENGINE_BODIES: whether this TU compiles the engine (kernels, passes, planner, runtime).
// KILN_ENGINE_API: linkage of the functions at the front-end/engine seam (runtime/engine.hpp):
// inline when header-only, ordinary external functions when compiled once.
#if defined(KILN_SEPARATE_COMPILATION)
#define KILN_ENGINE_API
#if defined(KILN_IMPLEMENTATION)
#define KILN_ENGINE_BODIES 1
#else
#define KILN_ENGINE_BODIES 0
#endif
#else
#define KILN_ENGINE_API inline
#define KILN_ENGINE_BODIES 1
#endif

namespace kiln {

/// Element index and extent type: pointer-sized, so 32-bit on Cortex-M.
using index_t = std::ptrdiff_t;

inline constexpr int kMaxRank = 6;
inline constexpr int kMaxNodes = KILN_MAX_NODES;
inline constexpr int kEwTile = KILN_EW_TILE;
/// Alignment of every tensor buffer and arena slot (one cache line, enough for AVX-512).
inline constexpr std::size_t kAlignment = 64;

constexpr std::size_t align_up(std::size_t n, std::size_t a = kAlignment) {
  return (n + a - 1) / a * a;
}

/// The first kAlignment-aligned address at or after p (for buffers over-allocated by kAlignment).
template <class T>
inline T* align_up(T* p) {
  return reinterpret_cast<T*>(align_up(reinterpret_cast<std::uintptr_t>(p)));
}

}  // namespace kiln
