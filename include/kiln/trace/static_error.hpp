// kiln/trace/static_error.hpp — how a compile-time trace stops the build at the failing op.
//
// While kiln::plan traces a model in a constant expression, an op that does not type-check calls
// one of these functions. They are deliberately not constexpr: the call *is* the compile error,
// the function's name says what went wrong, and the compiler's "in constexpr expansion of" notes
// above it name the op and its argument types, e.g.
//   in 'constexpr' expansion of 'kiln::linear<kiln::SymTensor, kiln::TensorView<const float>>(x, W)'
//   error: call to non-'constexpr' function 'void kiln::static_error::shapes_do_not_fit(...)'
// Evaluated at run time (plan() outside a constant expression) they report the status the way
// every op does (kiln::Error, or kiln::last_error() without exceptions).
#pragma once

#include "../core/status.hpp"

namespace kiln {
namespace static_error {

inline void shapes_do_not_fit(const Status& s) { fail(s); }
inline void bad_axis(const Status& s) { fail(s); }
inline void rank_too_large(const Status& s) { fail(s); }
inline void dtype_mismatch(const Status& s) { fail(s); }
inline void graph_capacity_exceeded_raise_KILN_MAX_NODES(const Status& s) { fail(s); }
inline void invalid_argument(const Status& s) { fail(s); }
inline void not_supported(const Status& s) { fail(s); }

}  // namespace static_error

/// Stops a compile-time trace at the op that failed (see above); does nothing for an ok status.
constexpr void report_static_trace_error(const Status& s) {
  switch (s.code()) {
    case Errc::ok: return;
    case Errc::shape_mismatch:
    case Errc::buffer_too_small: static_error::shapes_do_not_fit(s); return;
    case Errc::bad_axis: static_error::bad_axis(s); return;
    case Errc::rank_too_large: static_error::rank_too_large(s); return;
    case Errc::dtype_mismatch: static_error::dtype_mismatch(s); return;
    case Errc::capacity_exceeded: static_error::graph_capacity_exceeded_raise_KILN_MAX_NODES(s); return;
    case Errc::invalid_argument:
    case Errc::non_finite: static_error::invalid_argument(s); return;
    case Errc::not_supported: static_error::not_supported(s); return;
  }
}

}  // namespace kiln
