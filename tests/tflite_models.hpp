// Test helper: where the MLPerf Tiny .tflite models are ($KILN_MODELS_DIR, else
// /work/shared/models) and reading a file into bytes. Tests that find no models say so and
// check nothing (the README there describes the files and TFLite Micro's reference outputs).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace kiln_test {

inline std::string models_dir() {
  const char* env = std::getenv("KILN_MODELS_DIR");
  return env ? env : "/work/shared/models";
}

/// The file's bytes, or empty when it cannot be read.
inline std::vector<std::uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return {};
  return std::vector<std::uint8_t>(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

}  // namespace kiln_test
