// A minimal check harness for the firmware tests (doctest needs libstdc++ for newlib, a 313 MB
// package): CHECK-style macros that print the failing expression and line, a failure count that
// becomes the exit status, and heap-free number formatting (newlib's printf("%f") allocates).
#pragma once

#include <cstdint>

#include "semihost.hpp"

/// Opens or closes an instruction-count window (support/startup.cpp, qemu/insn_count.c).
extern "C" void fw_mark();

namespace fw {

inline int g_failures = 0;
inline int g_checks = 0;

inline char* put(char* p, const char* s) {
  while (*s) *p++ = *s++;
  *p = 0;
  return p;
}
inline char* put(char* p, long v) {
  char tmp[20];
  int n = 0;
  unsigned long u = v < 0 ? 0ul - static_cast<unsigned long>(v) : static_cast<unsigned long>(v);
  do {
    tmp[n++] = static_cast<char>('0' + u % 10);
    u /= 10;
  } while (u);
  if (v < 0) *p++ = '-';
  while (n) *p++ = tmp[--n];
  *p = 0;
  return p;
}
/// Scientific notation with 4 significant digits: enough to read an error in a failure message.
inline char* put(char* p, float f) {
  if (f != f) return put(p, "nan");
  if (f < 0) {
    *p++ = '-';
    f = -f;
  }
  if (f > 3.4e38f) return put(p, "inf");
  int e = 0;
  if (f != 0.f) {
    while (f >= 10.f) f /= 10.f, ++e;
    while (f < 1.f) f *= 10.f, --e;
  }
  const long m = static_cast<long>(f * 1000.f + 0.5f);
  p = put(p, m / 1000);
  *p++ = '.';
  const long frac = m % 1000;
  *p++ = static_cast<char>('0' + frac / 100);
  *p++ = static_cast<char>('0' + frac / 10 % 10);
  *p++ = static_cast<char>('0' + frac % 10);
  *p++ = 'e';
  return put(p, static_cast<long>(e));
}

template <class... Parts>
void print(const Parts&... parts) {
  char buf[256];
  char* p = buf;
  ((p = put(p, parts)), ...);
  put(p, "\n");
  semihost::write(buf);
}

inline void check(bool ok, const char* expr, const char* file, int line) {
  ++g_checks;
  if (ok) return;
  ++g_failures;
  print("FAILED: ", expr, " at ", file, ":", static_cast<long>(line));
}

/// |got - want| <= abs_tol + rel_tol * |want|, element by element; prints the first mismatch.
inline bool close(const float* got, const float* want, long n, float abs_tol, float rel_tol, const char* what) {
  for (long i = 0; i < n; ++i) {
    const float d = got[i] > want[i] ? got[i] - want[i] : want[i] - got[i];
    const float w = want[i] < 0 ? -want[i] : want[i];
    if (!(d <= abs_tol + rel_tol * w)) {
      print(what, ": element ", i, " is ", got[i], ", expected ", want[i]);
      return false;
    }
  }
  return true;
}

}  // namespace fw

#define FW_CHECK(expr) ::fw::check(static_cast<bool>(expr), #expr, __FILE__, __LINE__)
