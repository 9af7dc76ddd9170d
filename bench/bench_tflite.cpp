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
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace {

std::string models_dir() {
  const char* env = std::getenv("KILN_MODELS_DIR");
  return env ? env : "/work/shared/models";
}

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
  std::ifstream f(models_dir() + "/" + file, std::ios::binary);
  l->bytes.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  kiln::Status st = l->file.open(l->bytes.data(), l->bytes.size());
  if (st.ok()) st = l->model.import(l->file);
  if (!st.ok()) {
    l->error = std::string("no model: ") + st.message();
    return l;
  }
  l->input = kiln::Tensor<std::int8_t>(l->model.input_shape());
  std::ifstream hx(models_dir() + "/reference/" + name + "_inputA.hex");
  std::string tok, all;
  while (hx >> tok) all += tok;
  for (std::size_t i = 0; 2 * i + 1 < all.size() && i < static_cast<std::size_t>(l->input.size()); ++i)
    l->input.data()[i] = static_cast<std::int8_t>(std::stoul(all.substr(2 * i, 2), nullptr, 16));
  std::ifstream tsv(models_dir() + "/reference/expected_outputs_tflm.tsv");
  std::string line;
  while (std::getline(tsv, line)) {
    std::istringstream ls(line);
    std::string m, in, out;
    ls >> m >> in >> out;
    if (m == name && in == "A") l->expected = out;
  }
  return l;
}

std::string hex(const kiln::Tensor<std::int8_t>& t) {
  std::string s;
  for (kiln::index_t i = 0; i < t.size(); ++i) {
    char b[3];
    std::snprintf(b, sizeof b, "%02x", static_cast<unsigned>(static_cast<std::uint8_t>(t.data()[i])));
    s += b;
  }
  return s;
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
  if (hex(y) != l->expected) {
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
