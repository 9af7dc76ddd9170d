// libFuzzer target over kiln's TFLite reader: open() any bytes; when it accepts them, every
// accessor, every options decoder and the support check must work too. Built with clang
// (-fsanitize=fuzzer,address,undefined) by tests/tflite/CMakeLists.txt; the ctest entry
// fuzz_tflite_reader runs a bounded, seeded session starting from the real models.
#include <kiln/tflite.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace tfl = kiln::tflite;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // An exactly-sized copy: reading one byte past `size` is an ASan error even when libFuzzer's
  // own buffer is larger.
  std::vector<std::uint8_t> bytes(data, data + size);
  tfl::Model m;
  if (!m.open(bytes.data(), bytes.size()).ok()) return 0;
  unsigned sum = 0;
  for (int i = 0; i < m.num_tensors(); ++i) {
    const tfl::TensorInfo t = m.tensor(i);
    sum += static_cast<unsigned>(t.shape.numel()) + static_cast<unsigned>(t.quant.zero_point(t.quant.count - 1));
    if (t.data && t.bytes) sum += t.data[0] + t.data[t.bytes - 1];
    if (t.name_length) sum += static_cast<unsigned>(t.name[t.name_length - 1]);
  }
  for (int k = 0; k < m.num_operators(); ++k) {
    const tfl::OperatorInfo op = m.op(k);
    for (int j = 0; j < op.inputs.size(); ++j) sum += static_cast<unsigned>(op.inputs[j]);
    tfl::ConvOptions c;
    tfl::PoolOptions p;
    tfl::FullyConnectedOptions f;
    tfl::SoftmaxOptions s;
    tfl::ActivationOptions a;
    sum += tfl::read_conv_options(m, op, c).ok() + tfl::read_pool_options(m, op, p).ok() +
           tfl::read_fully_connected_options(m, op, f).ok() + tfl::read_softmax_options(m, op, s).ok() +
           tfl::read_add_options(m, op, a).ok();
  }
  const kiln::Status st = tfl::check_supported(m);
  sum += static_cast<unsigned>(std::strlen(st.message()));
  volatile unsigned sink = sum;  // keep the reads
  (void)sink;
  return 0;
}
