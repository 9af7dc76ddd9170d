#!/usr/bin/env bash
# scripts/demo.sh — build kiln's examples (Release, -march=native) and run the quickstart.
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
