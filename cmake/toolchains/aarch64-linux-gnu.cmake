# Cross toolchain: AArch64 Linux (Debian's g++-aarch64-linux-gnu). xsimd picks neon64
# ("arm64+neon", 4 floats). ctest runs every test under qemu-user (package qemu-user).
#
#   cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(CMAKE_C_COMPILER   aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

# Debian puts the target's libc and libstdc++ under /usr/aarch64-linux-gnu.
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
# BOTH: kiln's third-party headers (xsimd, doctest) are arch-independent and live in the
# host's /usr/include; their CMake configs are found on the host (see KilnDependencies.cmake).
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)

# add_test(COMMAND <target>) and try_run go through qemu; -L finds the target's ld.so and libs.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L /usr/aarch64-linux-gnu)

# What kiln's tests check the build actually vectorises for (a cross build that silently lost
# xsimd would otherwise pass on the scalar kernels alone).
set(KILN_EXPECT_SIMD "arm64+neon" CACHE STRING "xsimd arch the SIMD tests must report")
