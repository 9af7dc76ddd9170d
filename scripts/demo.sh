#!/usr/bin/env bash
# scripts/demo.sh — build kiln's examples (Release, -march=native) and run the quickstart and the
# accelerator examples (accel_async; accel_onednn where oneDNN is installed).
# Installs missing Debian packages first; shares build/ with scripts/test.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/common.sh

if [ ! -f examples/quickstart.cpp ]; then
  echo "error: examples/quickstart.cpp does not exist yet" >&2
  exit 1
fi

kiln_log "packages"
kiln_ensure_packages
kiln_log "configure build/"
kiln_configure_main
kiln_log "build examples (-j$JOBS)"
cmake --build build --target kiln_examples -j "$JOBS"

if [ ! -x build/examples/quickstart ]; then
  echo "error: build/examples/quickstart was not built" >&2
  exit 1
fi
kiln_log "build/examples/quickstart"
build/examples/quickstart

# The accelerator hook: an asynchronous backend overlapping a CPU branch, and oneDNN behind the
# hook benchmarked against kiln's kernels (built only where libdnnl-dev is installed). Single
# thread for oneDNN, like kiln.
kiln_log "build/examples/accel_async"
build/examples/accel_async
if [ -x build/examples/accel_onednn ]; then
  kiln_log "build/examples/accel_onednn (OMP_NUM_THREADS=1)"
  OMP_NUM_THREADS=1 build/examples/accel_onednn
else
  kiln_log "build/examples/accel_onednn skipped: oneDNN not found (apt-get install libdnnl-dev)"
fi
