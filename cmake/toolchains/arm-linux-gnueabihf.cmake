# Cross toolchain: 32-bit ARMv7-A Linux, hard-float, NEON with VFPv4 (fused multiply-add)
# (Debian's g++-arm-linux-gnueabihf). xsimd picks neon ("arm32+neon", 4 floats): no vector
# divide or sqrt, which kiln's kernels handle (ew_math.hpp). ctest runs tests under qemu-arm.
#
#   cmake -S . -B build-armv7 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/arm-linux-gnueabihf.cmake
#
# KILN_ARM_FPU (default neon-vfpv4) selects the FPU; with a VFP-only FPU such as vfpv3-d16,
# xsimd has no architecture and the build exercises kiln's scalar fallback instead.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR armv7-a)

set(CMAKE_C_COMPILER   arm-linux-gnueabihf-gcc)
set(CMAKE_CXX_COMPILER arm-linux-gnueabihf-g++)

if(NOT DEFINED KILN_ARM_FPU)
  set(KILN_ARM_FPU neon-vfpv4)
endif()
# try_compile projects see the toolchain file again, but not the cache: forward the choice.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES KILN_ARM_FPU)
set(CMAKE_C_FLAGS_INIT   "-march=armv7-a -mfpu=${KILN_ARM_FPU} -mfloat-abi=hard")
# -Wno-psabi: g++ notes on every std::vector<double> iterator passed by value that its ARM ABI
# changed in GCC 7.1; nothing here links code built by GCC < 7.1, so the notes are only noise.
set(CMAKE_CXX_FLAGS_INIT "-march=armv7-a -mfpu=${KILN_ARM_FPU} -mfloat-abi=hard -Wno-psabi")

set(CMAKE_FIND_ROOT_PATH /usr/arm-linux-gnueabihf)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
# See aarch64-linux-gnu.cmake: arch-independent headers and configs come from the host.
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)

set(CMAKE_CROSSCOMPILING_EMULATOR qemu-arm -L /usr/arm-linux-gnueabihf)

if(KILN_ARM_FPU MATCHES "neon")
  set(KILN_EXPECT_SIMD "arm32+neon" CACHE STRING "xsimd arch the SIMD tests must report")
else()
  set(KILN_EXPECT_SIMD "scalar" CACHE STRING "xsimd arch the SIMD tests must report")
endif()
