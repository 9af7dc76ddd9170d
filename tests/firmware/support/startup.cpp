// Cortex-M startup for the firmware tests: vector table, .data/.bss initialisation, FPU enable,
// static constructors, main(), exit status through semihosting. Any fault exits with 127 so a
// crash fails the test instead of hanging CI.
#include <cstdint>

#include "semihost.hpp"

extern "C" {
extern std::uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
extern void (*__preinit_array_start[])(), (*__preinit_array_end[])();
extern void (*__init_array_start[])(), (*__init_array_end[])();
[[noreturn]] void Reset_Handler();
[[noreturn]] void Fault_Handler();
// The test's main(): ISO C++ forbids calling ::main, so it is reached through its symbol.
int firmware_main() __asm__("main");
}

[[noreturn]] void Fault_Handler() {
  fw::semihost::write("FATAL: fault or unexpected exception\n");
  fw::semihost::exit(127);
}

[[noreturn]] void Reset_Handler() {
#if defined(__ARM_FP)
  // CP10/CP11 full access: required before the first floating-point instruction.
  *reinterpret_cast<volatile std::uint32_t*>(0xE000ED88u) |= (0xFu << 20);
  __asm volatile("dsb\n isb" ::: "memory");
#endif
  for (std::uint32_t *s = &_sidata, *d = &_sdata; d < &_edata;) *d++ = *s++;
  for (std::uint32_t* d = &_sbss; d < &_ebss;) *d++ = 0u;
  for (auto f = __preinit_array_start; f < __preinit_array_end; ++f) (*f)();
  for (auto f = __init_array_start; f < __init_array_end; ++f) (*f)();
  fw::semihost::exit(firmware_main());
}

// Instruction-count windows: tests/firmware/qemu/insn_count.c counts the instructions executed
// between two calls of this function (its address comes from nm). noinline and not empty, so it
// exists exactly once; outside that plugin it costs a call.
extern "C" __attribute__((noinline)) void fw_mark() { __asm volatile("" ::: "memory"); }

using Handler = void (*)();
// Initial MSP, Reset, NMI, HardFault, MemManage, BusFault, UsageFault, 4 reserved, SVCall,
// DebugMon, reserved, PendSV, SysTick.
extern "C" __attribute__((section(".isr_vector"), used)) const Handler g_vectors[16] = {
    reinterpret_cast<Handler>(&_estack), Reset_Handler, Fault_Handler, Fault_Handler, Fault_Handler,
    Fault_Handler, Fault_Handler, nullptr, nullptr, nullptr, nullptr, Fault_Handler, Fault_Handler,
    nullptr, Fault_Handler, Fault_Handler,
};
