# scripts/common.sh — sourced by scripts/test.sh and scripts/demo.sh (not run directly).
# Expects `set -euo pipefail` and the repository root as the working directory.

# Debian packages kiln's scripts need. libeigen3-dev is optional for CMake (benchmarks
# compare against Eigen when it is present) but the scripts install it. python3-sklearn is
# data only: the 8x8 digits set (digits.csv.gz) the training and firmware examples use.
KILN_PACKAGES=(cmake make g++ clang libxsimd-dev xtl-dev doctest-dev libbenchmark-dev libeigen3-dev python3-sklearn)
# Only scripts/test.sh needs these: the Cortex-M4 firmware tests (bare-metal toolchain, newlib,
# QEMU's mps2-an386 board).
KILN_FIRMWARE_PACKAGES=(gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-dev qemu-system-arm)
# Cross compilers and qemu-user for scripts/test.sh's aarch64 and armv7 chains (not needed by
# scripts/demo.sh; scripts/test.sh installs them unless KILN_CROSS=0).
KILN_CROSS_PACKAGES=(g++-aarch64-linux-gnu g++-arm-linux-gnueabihf qemu-user)
JOBS=${JOBS:-2}

kiln_log() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

kiln_pkg_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

kiln_sudo() {  # runs "$@" as root (via sudo when needed)
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    echo "error: need root to run: $* (install kiln's packages as root first)" >&2
    return 1
  fi
}

kiln_apt_update() {  # once per script run
  [ -n "${KILN_APT_UPDATED:-}" ] && return 0
  kiln_sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q || return 1
  KILN_APT_UPDATED=1
}

kiln_apt_install() {
  kiln_apt_update || return 1
  kiln_sudo env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "$@" || return 1
}

# kiln_ensure_packages [extra package...]: installs whatever of KILN_PACKAGES and the extra
# packages is missing; a no-op (no apt-get at all) when everything is present.
kiln_ensure_packages() {
  if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "note: not a Debian system; assuming build dependencies are installed" >&2
    return 0
  fi
  local missing=() p
  for p in "${KILN_PACKAGES[@]}" "$@"; do
    kiln_pkg_installed "$p" || missing+=("$p")
  done
  command -v python3 >/dev/null 2>&1 || missing+=(python3)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    kiln_apt_install "${missing[@]}" || return 1
  fi
  # Sanitizer runtime of the installed clang (a separate package since clang 14 on Debian).
  local ver rt
  ver=$(clang++ -dumpversion | cut -d. -f1)
  rt="libclang-rt-${ver}-dev"
  if ! kiln_pkg_installed "$rt"; then
    kiln_apt_update || return 1
    if apt-cache show "$rt" >/dev/null 2>&1; then  # older Debian ships it in libclang-common
      echo "installing: $rt"
      kiln_apt_install "$rt" || return 1
    fi
  fi
  echo "packages: all present (${KILN_PACKAGES[*]} $* $rt python3)"
}

# The main tree, build/: g++, Release at -O2, -march=native, tests + bench + examples.
# scripts/test.sh and scripts/demo.sh configure it identically so they never fight over it.
kiln_configure_main() {
  cmake -S . -B build \
    -DCMAKE_CXX_COMPILER=g++ \
    -DCMAKE_BUILD_TYPE=Release \
    "-DCMAKE_CXX_FLAGS_RELEASE=-O2 -DNDEBUG" \
    -DKILN_NATIVE=ON \
    -DKILN_BUILD_TESTS=ON -DKILN_BUILD_BENCH=ON -DKILN_BUILD_EXAMPLES=ON
}

# A cross tree build-<name>/ (tests only, Release -O2, warnings as errors as in build/): the
# toolchain file sets the compiler and makes ctest run every test under qemu-user.
#   kiln_configure_cross <build dir> <toolchain file> [cmake args...]
kiln_configure_cross() {
  local dir=$1 toolchain=$2
  shift 2
  cmake -S . -B "$dir" \
    -DCMAKE_TOOLCHAIN_FILE="$toolchain" \
    -DCMAKE_BUILD_TYPE=Release \
    "-DCMAKE_CXX_FLAGS_RELEASE=-O2 -DNDEBUG" \
    -DKILN_BUILD_TESTS=ON -DKILN_BUILD_BENCH=OFF -DKILN_BUILD_EXAMPLES=OFF "$@"
}
