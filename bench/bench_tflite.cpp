// bench/bench_tflite.cpp — the four MLPerf Tiny .tflite models imported at run time
// (kiln/tflite/import.hpp) and run by compile(): time per inference, batch 1, on this host.
//
//   run_compiled/<model>   kiln::compile of the imported model (fused plan, one arena), input A,
//                          run_into a preallocated output (no allocation per inference)
// Outputs are compared with TFLite Micro's bytes first (a mismatch skips the benchmark). Models
// from $KILN_MODELS_DIR, else /work/shared/models; absent: every benchmark is skipped.
#include <benchmark/benchmark.h>

#include <kiln/kiln.hpp>
#include <kiln/tflite.hpp>
#include <kiln/tflite/import.hpp>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "../tests/tflite_models.hpp"  // models_dir, TFLite Micro's reference inputs and outputs

namespace {

struct Loaded {
  std::vector<std::uint8_t> bytes;
  kiln::tflite::Model file;
  kiln::tflite::Imported model;
  kiln::Tensor<std::int8_t> input;
  std::string expected;  // TFLite Micro's output for input A, hex
  std::string error;
};

std::unique_ptr<Loaded> load(const std::string& name, const std::string& file) {
  auto l = std::make_unique<Loaded>();
  l->bytes = kiln_test::read_bytes(kiln_test::models_dir() + "/" + file);
  kiln::Status st = l->file.open(l->bytes.data(), l->bytes.size());
  if (st.ok()) st = l->model.import(l->file);
  if (!st.ok()) {
    l->error = std::string("no model: ") + st.message();
    return l;
  }
  l->input = kiln::Tensor<std::int8_t>(l->model.input_shape());
  const std::vector<std::int8_t> a = kiln_test::tflm_input_a(name, static_cast<std::size_t>(l->input.size()));
  if (!a.empty()) std::memcpy(l->input.data(), a.data(), a.size());
  const auto expected = kiln_test::tflm_expected_outputs();
  const auto it = expected.find(name + "A");
  if (it != expected.end()) l->expected = it->second;
  return l;
}

void run_compiled(benchmark::State& state, const char* name, const char* file) {
  const std::unique_ptr<Loaded> l = load(name, file);
  if (!l->error.empty()) {
    state.SkipWithError(l->error.c_str());
    return;
  }
  const kiln::tflite::Imported& model = l->model;
  auto net = kiln::compile([&model](const auto& x) { return model(x); });
  kiln::Tensor<std::int8_t> y = net(l->input);
  if (kiln_test::hex(y.data(), static_cast<std::size_t>(y.size())) != l->expected) {
    state.SkipWithError("output differs from TFLite Micro's");
    return;
  }
  for (auto _ : state) {
    net.run_into(y, l->input);
    benchmark::DoNotOptimize(y.data());
  }
  const kiln::Stats s = net.stats();
  state.counters["arena_B"] = static_cast<double>(s.arena_bytes);
  state.counters["kernels"] = s.kernels;
}

}  // namespace

BENCHMARK_CAPTURE(run_compiled, kws, "kws", "kws_ref_model.tflite")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(run_compiled, ad, "ad", "ad01_int8.tflite")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(run_compiled, ic, "ic", "pretrainedResnet_quant.tflite")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(run_compiled, vww, "vww", "vww_96_int8.tflite")->Unit(benchmark::kMicrosecond);
