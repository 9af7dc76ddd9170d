#!/usr/bin/env bash
# Regenerates examples/mcu_digits/model.hpp and model_int8.hpp, the mcu_digits firmware's models:
# builds the host trainer (examples/mcu_digits/train.cpp) in build/, trains it with kiln on
# sklearn's digits (python3-sklearn ships the CSV), quantises it with kiln's PTQ and writes the
# float weights, the held-out images and the int8 model as headers.
#   scripts/mcu_digits_model.sh [path/to/digits.csv.gz]
set -euo pipefail
cd "$(dirname "$0")/.."
digits=${1:-/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz}
[ -f "$digits" ] || { echo "mcu_digits_model.sh: $digits not found (apt-get install python3-sklearn)" >&2; exit 1; }
[ -f build/CMakeCache.txt ] || cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build --target mcu_digits_train
zcat "$digits" | build/examples/mcu_digits_train examples/mcu_digits
echo "mcu_digits_model.sh: wrote examples/mcu_digits/model.hpp and model_int8.hpp"
