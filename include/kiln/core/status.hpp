// kiln/core/status.hpp — errors that name the op and the shapes.
//
// One reporting path for every layer: code builds a Status with a readable
// message and hands it to fail(). With exceptions enabled fail() throws
// kiln::Error; built with -fno-exceptions it records the status as the
// "last error" (kiln::last_error()), and the failing call returns an empty
// result that every later op passes through untouched (a sticky error).
#pragma once

#include "config.hpp"
#include "dtype.hpp"
#include "shape.hpp"

#if KILN_EXCEPTIONS
#include <exception>
#endif

namespace kiln {

enum class Errc : std::uint8_t {
  ok,
  shape_mismatch,
  bad_axis,
  rank_too_large,
  dtype_mismatch,
  buffer_too_small,
  capacity_exceeded,
  invalid_argument,
  not_supported,
  non_finite,  ///< a training step met NaN/Inf (its update was not applied)
};

constexpr const char* errc_name(Errc e) {
  switch (e) {
    case Errc::ok: return "ok";
    case Errc::shape_mismatch: return "shape mismatch";
    case Errc::bad_axis: return "bad axis";
    case Errc::rank_too_large: return "rank too large";
    case Errc::dtype_mismatch: return "dtype mismatch";
    case Errc::buffer_too_small: return "buffer too small";
    case Errc::capacity_exceeded: return "capacity exceeded";
    case Errc::invalid_argument: return "invalid argument";
    case Errc::not_supported: return "not supported";
    case Errc::non_finite: return "non-finite value";
  }
  return "?";
}

/// A result code with a fixed-size message (no heap). Cheap to copy.
class Status {
 public:
  static constexpr int kMessageCapacity = 200;

  constexpr Status() = default;
  constexpr explicit Status(Errc code) : code_(code) {}

  constexpr bool ok() const { return code_ == Errc::ok; }
  constexpr explicit operator bool() const { return ok(); }
  constexpr Errc code() const { return code_; }
  constexpr const char* message() const { return msg_; }

  // Message building: Status(Errc::shape_mismatch) << "add: " << a << " vs " << b.
  constexpr Status& operator<<(const char* s) {
    while (s && *s && len_ < kMessageCapacity - 1) msg_[len_++] = *s++;
    msg_[len_] = '\0';
    return *this;
  }
  constexpr Status& operator<<(char c) {
    const char s[2] = {c, '\0'};
    return *this << s;
  }
  constexpr Status& operator<<(long long v) {
    char buf[24]{};
    int n = 0;
    const bool neg = v < 0;
    unsigned long long u = neg ? 0ull - static_cast<unsigned long long>(v) : static_cast<unsigned long long>(v);
    do {
      buf[n++] = static_cast<char>('0' + u % 10);
      u /= 10;
    } while (u && n < 22);
    if (neg) buf[n++] = '-';
    char out[24]{};
    for (int i = 0; i < n; ++i) out[i] = buf[n - 1 - i];
    return *this << static_cast<const char*>(out);
  }
  constexpr Status& operator<<(int v) { return *this << static_cast<long long>(v); }
  constexpr Status& operator<<(long v) { return *this << static_cast<long long>(v); }
  constexpr Status& operator<<(const Shape& s) {
    *this << '[';
    for (int i = 0; i < s.rank() && i < kMaxRank; ++i) {
      if (i) *this << ", ";
      *this << static_cast<long long>(s[i]);
    }
    if (s.rank() > kMaxRank) *this << ", ...(rank " << s.rank() << ")";
    return *this << ']';
  }
  constexpr Status& operator<<(DType t) { return *this << dtype_name(t); }

 private:
  Errc code_ = Errc::ok;
  int len_ = 0;
  char msg_[kMessageCapacity]{};
};

#if KILN_EXCEPTIONS
/// Thrown for every usage error when exceptions are enabled.
class Error : public std::exception {
 public:
  explicit Error(const Status& s) : status_(s) {}
  const char* what() const noexcept override { return status_.message(); }
  Errc code() const noexcept { return status_.code(); }
  const Status& status() const noexcept { return status_; }

 private:
  Status status_;
};
#endif

namespace detail {
inline Status& last_error_slot() {
  static Status s;
  return s;
}
}  // namespace detail

/// The most recent error reported by kiln (Errc::ok if none since clear_error()).
/// In -fno-exceptions builds this is how callers learn that an op failed.
inline const Status& last_error() { return detail::last_error_slot(); }
inline void clear_error() { detail::last_error_slot() = Status(); }

/// Reports an error: throws kiln::Error, or records it when exceptions are off.
inline void fail(const Status& s) {
  detail::last_error_slot() = s;
#if KILN_EXCEPTIONS
  throw Error(s);
#endif
}

}  // namespace kiln
