// Host half of the ctest tflite_three_commands (tests/tflite/three_commands.sh): the user's
// main.cpp from the README's three commands (examples/tflite_firmware/main.cpp, including the
// model.hpp tflite2kiln wrote) compiled for the host in this translation unit, run on input A
// (argv[1], a hex file) and input B (every byte the input zero point); prints the output bytes
// of each as a hex line for the script to compare with TFLite Micro's.
#include "main.cpp"

#include <cstdio>

namespace {
void print_output() {
  for (std::int8_t v : model_output) std::printf("%02x", static_cast<unsigned>(static_cast<std::uint8_t>(v)));
  std::printf("\n");
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  std::FILE* f = std::fopen(argv[1], "r");
  if (!f) return 1;
  for (std::int8_t& v : model_input) {
    unsigned byte = 0;
    if (std::fscanf(f, "%2x", &byte) != 1) return 1;
    v = static_cast<std::int8_t>(static_cast<std::uint8_t>(byte));
  }
  std::fclose(f);
  (void)classify();
  print_output();
  for (std::int8_t& v : model_input) v = static_cast<std::int8_t>(my_model::kInputQuant.zero_point);
  (void)classify();
  print_output();
  return 0;
}
