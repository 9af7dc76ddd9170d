// kiln/dispatch.hpp — which x86 engine a dispatching build runs (link kiln::dispatch).
//
// kiln::dispatch is kiln::compiled with the engine compiled three times (SSE2, AVX2+FMA, scalar)
// and one chosen at run time: the best the CPU has (xsimd's CPUID), or the one named by the
// environment variable KILN_ARCH=avx2|sse2|scalar, read once at first use. Every executable keeps
// the engine that planned it (packed weights and tiles depend on the vector width), so after
// set_arch() only plans built afterwards (and eager ops) use the new engine: call
// Compiled::reset() to re-plan a compiled model. Header-only and kiln::compiled builds have no
// dispatch: their one arch comes from the compiler flags (kernels::kSimdName).
#pragma once

#include "core/status.hpp"

namespace kiln::dispatch {

/// Engines in this build, best first: "avx2", "sse2", "scalar".
int num_arches();
const char* arch_name(int i);
/// Whether this CPU can run the engine `name` (false for names this build lacks).
bool cpu_supports(const char* name);
/// The best engine this CPU can run: what is selected when KILN_ARCH is unset.
const char* best_arch();
/// The selected engine's name ("avx2", "sse2", "scalar"), selecting it first if needed.
const char* current_arch();
/// xsimd's name of the selected engine's arch ("fma3+avx2", "sse2") or "scalar", and its floats
/// per vector register.
const char* current_simd_name();
int current_lanes();
/// Selects an engine for plans built from now on and for eager ops. Fails, naming the CPU's
/// engines, when this CPU cannot run it or the build lacks it.
Status set_arch(const char* name);

}  // namespace kiln::dispatch
