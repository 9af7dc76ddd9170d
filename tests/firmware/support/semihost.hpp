// Heap-free ARM semihosting for the firmware tests (M-profile: BKPT 0xAB), as QEMU implements it
// with `-semihosting-config enable=on,target=native`: console output and an exact exit status.
#pragma once

#include <cstdint>

namespace fw::semihost {

enum : std::uint32_t {
  kWrite0 = 0x04,        // write a NUL-terminated string to the debug console
  kExit = 0x18,          // AArch32: r1 = reason only (pass/fail)
  kExitExtended = 0x20,  // r1 -> {reason, subcode}: QEMU exits with `subcode`
  kApplicationExit = 0x20026,
  kRunTimeError = 0x20023,
};

inline std::uint32_t call(std::uint32_t op, const void* arg) {
  register std::uint32_t r0 __asm__("r0") = op;
  register const void* r1 __asm__("r1") = arg;
  __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}

inline void write(const char* s) { call(kWrite0, s); }

[[noreturn]] inline void exit(int status) {
  const std::uint32_t block[2] = {kApplicationExit, static_cast<std::uint32_t>(status)};
  call(kExitExtended, block);
  // Hosts without SYS_EXIT_EXTENDED: pass/fail only.
  call(kExit, reinterpret_cast<const void*>(status == 0 ? kApplicationExit : kRunTimeError));
  for (;;) {
  }
}

}  // namespace fw::semihost
