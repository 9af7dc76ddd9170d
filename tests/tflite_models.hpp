// Test helper (TFLite tests and the fuzz target): where the MLPerf Tiny .tflite models are ($KILN_MODELS_DIR, else
// /work/shared/models) and reading a file into bytes. Tests that find no models say so and
// check nothing (the README there describes the files and TFLite Micro's reference outputs).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <kiln/tflite.hpp>

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

/// TFLite Micro's output bytes (hex) by model and input ("kwsA", "icB", ...); empty when absent.
inline std::map<std::string, std::string> tflm_expected_outputs() {
  std::ifstream tsv(models_dir() + "/reference/expected_outputs_tflm.tsv");
  std::map<std::string, std::string> expected;
  std::string line;
  std::getline(tsv, line);  // header
  while (std::getline(tsv, line)) {
    std::istringstream ls(line);
    std::string model, input, out;
    ls >> model >> input >> out;
    expected[model + input] = out;
  }
  return expected;
}

/// Input A of a model (reference/<name>_inputA.hex): n int8 bytes, empty when absent or short.
inline std::vector<std::int8_t> tflm_input_a(const std::string& name, std::size_t n) {
  std::ifstream hx(models_dir() + "/reference/" + name + "_inputA.hex");
  std::string tok, all;
  while (hx >> tok) all += tok;
  std::vector<std::int8_t> a;
  if (all.size() != 2 * n) return a;
  for (std::size_t i = 0; i < all.size(); i += 2)
    a.push_back(static_cast<std::int8_t>(std::stoul(all.substr(i, 2), nullptr, 16)));
  return a;
}

inline std::string hex(const std::int8_t* v, std::size_t n) {
  std::string s;
  const char* d = "0123456789abcdef";
  for (std::size_t i = 0; i < n; ++i) {
    const auto u = static_cast<std::uint8_t>(v[i]);
    s += d[u >> 4];
    s += d[u & 15];
  }
  return s;
}

/// The four MLPerf Tiny models: short name (as in the reference files) and file.
inline constexpr std::pair<const char*, const char*> kMlperfTinyModels[] = {
    {"ad", "ad01_int8.tflite"}, {"kws", "kws_ref_model.tflite"}, {"ic", "pretrainedResnet_quant.tflite"},
    {"vww", "vww_96_int8.tflite"}};

// Every accessor of an opened model, and the support check: must not crash on any model open() accepted.
inline unsigned touch_everything(const kiln::tflite::Model& m) {
  namespace tfl = kiln::tflite;
  unsigned sum = 0;  // unsigned: the values are arbitrary, the sum only keeps the reads alive
  auto add = [&sum](auto v) { sum += static_cast<unsigned>(v); };
  for (int i = 0; i < m.num_tensors(); ++i) {
    const tfl::TensorInfo t = m.tensor(i);
    add(t.shape.numel());
    add(t.quant.zero_point(t.quant.count - 1));
    add(t.quant.scale(0) > 0.f);
    if (t.data && t.bytes) add(t.data[0] + t.data[t.bytes - 1]);
    if (t.name_length) add(t.name[t.name_length - 1]);
  }
  for (int k = 0; k < m.num_operators(); ++k) {
    const tfl::OperatorInfo op = m.op(k);
    for (int j = 0; j < op.inputs.size(); ++j) add(op.inputs[j]);
    tfl::ConvOptions c;
    tfl::PoolOptions p;
    tfl::FullyConnectedOptions f;
    tfl::SoftmaxOptions s;
    tfl::ActivationOptions a;
    add(tfl::read_conv_options(m, op, c).ok() + tfl::read_pool_options(m, op, p).ok() +
        tfl::read_fully_connected_options(m, op, f).ok() + tfl::read_softmax_options(m, op, s).ok() +
        tfl::read_add_options(m, op, a).ok());
    // The common operators' decoders, on any operator (they must refuse, not crash, on others).
    std::uint32_t axes = 0;
    bool keep = false;
    int axis = 0;
    kiln::index_t lo[kiln::kMaxRank] = {}, hi[kiln::kMaxRank] = {};
    tfl::SliceSpec spec;
    if (op.inputs.size() >= 2) {
      add(tfl::detail::mean_axes(m, op, axes, keep).ok() + tfl::detail::pad_amounts(m, op, lo, hi).ok());
      add(axes + static_cast<unsigned>(lo[0] + hi[0]));
    }
    if (op.inputs.size() >= 4) add(tfl::detail::strided_slice_spec(m, op, spec).ok() + static_cast<unsigned>(spec.count[0]));
    if (op.outputs.size() >= 1) add(tfl::detail::concat_axis(m, op, axis).ok() + static_cast<unsigned>(axis));
  }
  add(tfl::check_supported(m).ok());
  return sum;
}

}  // namespace kiln_test
