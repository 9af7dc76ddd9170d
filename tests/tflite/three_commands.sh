#!/usr/bin/env bash
# ctest tflite_three_commands: runs README.md's "From a .tflite file to firmware in three
# commands" literally — the three lines between its three-commands markers — in a fresh
# directory holding the user's files (kiln/ -> this checkout, model.tflite = the MLPerf Tiny KWS
# model, main.cpp = examples/tflite_firmware/main.cpp), then compiles the same main.cpp for the
# host and checks its outputs on inputs A and B against TFLite Micro's bytes.
#   three_commands.sh <kiln source dir> <work dir> <models dir>
# Exit 77 (ctest: skipped) when the models or arm-none-eabi-g++ are absent.
set -euo pipefail
src=$1 work=$2 models=$3
if [ ! -f "$models/kws_ref_model.tflite" ]; then echo "SKIP: no MLPerf Tiny models at $models"; exit 77; fi
if ! command -v arm-none-eabi-g++ > /dev/null; then echo "SKIP: no arm-none-eabi-g++"; exit 77; fi
rm -rf "$work"
mkdir -p "$work"
cd "$work"
ln -s "$src" kiln
cp "$models/kws_ref_model.tflite" model.tflite
cp kiln/examples/tflite_firmware/main.cpp .
sed -n '/<!-- three-commands:begin -->/,/<!-- three-commands:end -->/p' kiln/README.md |
  grep -E '^(cmake|kiln-build|arm-none-eabi-g\+\+)' > commands.sh
if [ "$(wc -l < commands.sh)" != 3 ]; then echo "README.md: expected 3 commands between the markers"; cat commands.sh; exit 1; fi
echo "== the three commands (README.md)"
cat commands.sh
bash -euo pipefail commands.sh > commands.log 2>&1 || { cat commands.log; exit 1; }
tail -n 3 commands.log
test -s model.hpp
test -s main.o
echo "== main.cpp on the host, inputs A and B"
g++ -std=c++17 -O2 -I kiln/include -I . kiln/tests/tflite/three_commands_host.cpp -o host_check
./host_check "$models/reference/kws_inputA.hex" > got.txt
awk '$1 == "kws" && $2 == "A" { print $3 } $1 == "kws" && $2 == "B" { print $3 }' "$models/reference/expected_outputs_tflm.tsv" > want.txt
cat got.txt
if ! diff -q got.txt want.txt > /dev/null; then echo "outputs differ from TFLite Micro's:"; cat want.txt; exit 1; fi
echo "OK: TFLite Micro's bytes on inputs A and B"
