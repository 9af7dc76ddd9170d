// libFuzzer target over kiln's TFLite reader: open() any bytes; when it accepts them, every
// accessor, every options decoder and the support check must work too. Built with clang
// (-fsanitize=fuzzer,address,undefined) by tests/tflite/CMakeLists.txt; the ctest entry
// fuzz_tflite_reader runs a bounded, seeded session starting from the real models.
#include <kiln/tflite.hpp>

#include "../tflite_models.hpp"

#include <cstddef>
#include <cstdint>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // An exactly-sized copy: reading one byte past `size` is an ASan error even when libFuzzer's
  // own buffer is larger.
  std::vector<std::uint8_t> bytes(data, data + size);
  kiln::tflite::Model m;
  if (!m.open(bytes.data(), bytes.size()).ok()) return 0;
  volatile unsigned sink = kiln_test::touch_everything(m);  // keep the reads
  (void)sink;
  return 0;
}
