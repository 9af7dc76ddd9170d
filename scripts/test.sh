#!/usr/bin/env bash
# scripts/test.sh — kiln's full check; CI runs exactly this (.ci/run).
#
#   1. installs missing Debian packages (apt-get; skipped when all are present)
#   2. build/      g++ Release -O2 -march=native: tests, examples, benchmarks; ctest
#                  (kernel tests run twice: SIMD and -DKILN_NO_SIMD; benches get a smoke run)
#   3. single header: amalgamate.py --check, then kiln_single_header_check built and run
#      package: cmake --install into build/package-check, then tests/package_consumer built
#      against it with find_package(kiln) (kiln::kiln, kiln::compiled, kiln::dispatch) at -O0
#      (it checks the package, not speed: its engines build in ~12 s instead of ~100 s) and run
#   4. build-cortex-m4/  tests/firmware/fw_*.cpp for a Cortex-M4F (arm-none-eabi, no heap, no
#      exceptions), run under qemu-system-arm -M mps2-an386; footprint and instruction counts
#   5. build-asan/ clang++ with ASan + UBSan at -O0 -gline-tables-only (tests only); ctest
#   6. build-aarch64/  aarch64-linux-gnu-g++ (NEON, xsimd neon64), tests only; ctest under qemu-aarch64
#   7. build-armv7/    arm-linux-gnueabihf-g++ -mfpu=neon-vfpv4 (xsimd neon), tests only; ctest under
#                      qemu-arm (cmake/toolchains/; Release -O2 and -Werror as in build/)
#   8. build-armv7-vfp/ (only with KILN_CROSS_NOSIMD=1) armv7 without NEON: xsimd has no arch,
#                      every kernel runs its scalar fallback; ctest under qemu-arm
#
# Idempotent: reruns reuse the build trees. Env: JOBS (default 2); KILN_CROSS=0 skips steps 6-8
# and their packages (default 1, as in CI); KILN_CROSS_NOSIMD=1 adds step 8.
# Exit status is non-zero if any step failed; a summary is printed either way.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/common.sh

RESULTS=()
FAILED=0
T_START=$SECONDS

# step <name> <command...>: runs one command, records PASS/FAIL and its time.
step() {
  local name=$1 t0=$SECONDS rc=0
  shift
  kiln_log "$name"
  "$@" || rc=$?
  if [ "$rc" -eq 0 ]; then
    RESULTS+=("PASS  $(printf '%4ds' $((SECONDS - t0)))  $name")
  else
    RESULTS+=("FAIL  $(printf '%4ds' $((SECONDS - t0)))  $name (exit $rc)")
    FAILED=1
  fi
  return "$rc"
}

summary() {
  printf '\n===================== kiln test summary =====================\n'
  printf '%s\n' "${RESULTS[@]}"
  if [ "${#SKIPPED[@]}" -gt 0 ]; then printf 'note: %s\n' "${SKIPPED[@]}"; fi
  printf 'total %ds: %s\n' $((SECONDS - T_START)) "$([ "$FAILED" -eq 0 ] && echo ALL PASSED || echo FAILED)"
}
SKIPPED=()
trap summary EXIT

# ctest must find tests once tests/test_*.cpp exist (an empty run then means a broken setup).
if compgen -G "tests/test_*.cpp" >/dev/null; then
  NO_TESTS=error
else
  NO_TESTS=ignore
  SKIPPED+=("no tests/test_*.cpp yet: ctest had nothing to run")
fi
CTEST_ARGS=(--output-on-failure -j "$JOBS" --timeout 600 --no-tests="$NO_TESTS")

run_single_header_check() {
  cmake --build build --target kiln_single_header_check -j "$JOBS" || return
  if [ -x build/tests/kiln_single_header_check ]; then
    build/tests/kiln_single_header_check
  else
    SKIPPED+=("kiln_single_header_check: no test source to compile against single_include/ yet")
  fi
}

# -O0: clang compiles an ASan+UBSan TU ~5x faster than at -O1 (test_ops_conv 6 s vs 30 s) and
# the tests then run ~4x slower (test_kernels_gemm 60 s vs 15 s): ~8 min less CI in total.
# -gline-tables-only keeps file:line in ASan/UBSan stack traces without full debug info.
# kiln::dispatch's AVX2 engine is compiled -O2 whatever the build type (cmake/KilnDispatch.cmake:
# unoptimised, it would leak VEX-encoded xsimd SSE helpers into the SSE2 engine).
configure_asan() {
  cmake -S . -B build-asan \
    -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O0 -gline-tables-only" \
    -DKILN_SANITIZE=ON -DKILN_NATIVE=ON \
    -DKILN_BUILD_TESTS=ON -DKILN_BUILD_BENCH=OFF -DKILN_BUILD_EXAMPLES=OFF
}

KILN_CROSS=${KILN_CROSS:-1}
KILN_CROSS_NOSIMD=${KILN_CROSS_NOSIMD:-0}
if [ "$KILN_CROSS" = 0 ]; then
  SKIPPED+=("KILN_CROSS=0: aarch64 and armv7 (qemu) chains skipped")
  step "packages" kiln_ensure_packages "${KILN_FIRMWARE_PACKAGES[@]}" || exit 1
else
  step "packages" kiln_ensure_packages "${KILN_FIRMWARE_PACKAGES[@]}" "${KILN_CROSS_PACKAGES[@]}" || exit 1
fi

# Each chain stops at its first failure; the next chain still runs.
{ step "gcc: configure build/" kiln_configure_main &&
  step "gcc: build (-j$JOBS)" cmake --build build -j "$JOBS" &&
  step "gcc: ctest" ctest --test-dir build "${CTEST_ARGS[@]}"; } || true

{ step "single header: amalgamate.py --check" python3 scripts/amalgamate.py --check &&
  step "single header: kiln_single_header_check" run_single_header_check; } || true

# The installed package as a consumer sees it: find_package(kiln) with kiln::kiln and kiln::compiled
# (and kiln::dispatch on x86-64).
run_package_consumer() {
  local dir=build/package-check
  rm -rf "$dir" &&
    cmake --install build --prefix "$dir/prefix" >/dev/null &&
    cmake -S tests/package_consumer -B "$dir/build" -DCMAKE_PREFIX_PATH="$PWD/$dir/prefix" \
      -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-O0" >/dev/null &&
    cmake --build "$dir/build" -j "$JOBS" >/dev/null &&
    "$dir/build/consumer_header_only" && "$dir/build/consumer_compiled" &&
    { [ ! -e "$dir/build/consumer_dispatch" ] || "$dir/build/consumer_dispatch"; }
}
step "package: install + find_package consumer" run_package_consumer || true

# Firmware: tests/firmware/fw_*.cpp as Cortex-M4F images (no heap, no exceptions), run under
# qemu-system-arm; the footprint of each image is printed.
configure_firmware() {
  # The MLPerf Tiny images (examples/mlperf_tiny) reuse the host build's tflite2kiln when it exists.
  local tool=()
  [ -x build/examples/tflite2kiln ] && tool=(-DKILN_TFLITE2KILN="$PWD/build/examples/tflite2kiln")
  cmake -S tests/firmware -B build-cortex-m4 \
    -DCMAKE_TOOLCHAIN_FILE="$PWD/cmake/toolchains/arm-none-eabi-cortex-m4.cmake" "${tool[@]}"
}
firmware_ctest() {
  ctest --test-dir build-cortex-m4 "${CTEST_ARGS[@]}" || return
  arm-none-eabi-size build-cortex-m4/*.elf
}
{ step "cortex-m4 (qemu-system-arm): configure build-cortex-m4/" configure_firmware &&
  step "cortex-m4 (qemu-system-arm): build" cmake --build build-cortex-m4 -j "$JOBS" &&
  step "cortex-m4 (qemu-system-arm): ctest" firmware_ctest; } || true

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
{ step "clang asan+ubsan: configure build-asan/" configure_asan &&
  step "clang asan+ubsan: build (-j$JOBS)" cmake --build build-asan -j "$JOBS" &&
  step "clang asan+ubsan: ctest" ctest --test-dir build-asan "${CTEST_ARGS[@]}"; } || true

# Cross chains: the same tests built for ARM and run under qemu-user (ctest goes through the
# toolchain's CMAKE_CROSSCOMPILING_EMULATOR). Each chain stops at its first failure.
if [ "$KILN_CROSS" != 0 ]; then
  TC=$PWD/cmake/toolchains
  { step "aarch64 (qemu): configure build-aarch64/" kiln_configure_cross build-aarch64 "$TC/aarch64-linux-gnu.cmake" &&
    step "aarch64 (qemu): build (-j$JOBS)" cmake --build build-aarch64 -j "$JOBS" &&
    step "aarch64 (qemu): ctest" ctest --test-dir build-aarch64 "${CTEST_ARGS[@]}"; } || true

  { step "armv7 (qemu): configure build-armv7/" kiln_configure_cross build-armv7 "$TC/arm-linux-gnueabihf.cmake" &&
    step "armv7 (qemu): build (-j$JOBS)" cmake --build build-armv7 -j "$JOBS" &&
    step "armv7 (qemu): ctest" ctest --test-dir build-armv7 "${CTEST_ARGS[@]}"; } || true

  if [ "$KILN_CROSS_NOSIMD" = 1 ]; then
    { step "armv7 VFP, no NEON (qemu): configure build-armv7-vfp/" kiln_configure_cross build-armv7-vfp \
        "$TC/arm-linux-gnueabihf.cmake" -DKILN_ARM_FPU=vfpv3-d16 &&
      step "armv7 VFP, no NEON (qemu): build (-j$JOBS)" cmake --build build-armv7-vfp -j "$JOBS" &&
      step "armv7 VFP, no NEON (qemu): ctest" ctest --test-dir build-armv7-vfp "${CTEST_ARGS[@]}"; } || true
  fi
  SKIPPED+=("qemu chains: test_random_graphs ran KILN_FUZZ_COUNT=${KILN_FUZZ_COUNT:-10000 (its Release default)} graphs, as natively")
fi

exit "$FAILED"
