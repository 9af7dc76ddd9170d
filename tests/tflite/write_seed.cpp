// Writes the fuzz seed tests/tflite/seeds/common_ops.tflite (the synthetic model of
// tests/tflite_common_ops_model.hpp, output tensor 20): g++ -std=c++17 -Iinclude -Itests
// tests/tflite/write_seed.cpp -o /tmp/write_seed && /tmp/write_seed tests/tflite/seeds/common_ops.tflite
#include <cstdio>

#include "tflite_common_ops_model.hpp"

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  kiln_test::TfModel m = kiln_test::common_ops::common_ops_model();
  m.outputs = {20};
  const std::vector<std::uint8_t> b = m.bytes();
  std::FILE* f = std::fopen(argv[1], "wb");
  if (!f) return 1;
  const bool ok = std::fwrite(b.data(), 1, b.size(), f) == b.size();
  return std::fclose(f) == 0 && ok ? 0 : 1;
}
