// The engine of kiln — passes, planner, kernels, runtime — compiled once (kiln::compiled).
// Every other TU of the program includes kiln with KILN_SEPARATE_COMPILATION and sees only the
// seam (kiln/runtime/engine.hpp), so a model compiles without parsing kernels or xsimd.
// (kiln_add_compiled() defines KILN_SEPARATE_COMPILATION and KILN_IMPLEMENTATION; the guards
// let the file also be compiled by hand.)
#ifndef KILN_SEPARATE_COMPILATION
#define KILN_SEPARATE_COMPILATION
#endif
#ifndef KILN_IMPLEMENTATION
#define KILN_IMPLEMENTATION
#endif
#include <kiln/kiln.hpp>
