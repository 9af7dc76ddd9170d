// tflite2kiln: a .tflite int8 model -> a C++ header for firmware (ahead-of-time import).
//
//   tflite2kiln model.tflite model.hpp [namespace]
//
// The header holds the model as kiln int8 front-end calls with its weights as constexpr arrays
// and its compile-time plan (<namespace>::plan, <namespace>::kArenaBytes): see
// include/kiln/tflite/emit.hpp. Unsupported operators are reported by name and version and no
// header is written. The arena printed here is planned now by the run-time planner (the same
// passes the compile-time plan runs).
#include <kiln/kiln.hpp>
#include <kiln/tflite.hpp>
#include <kiln/tflite/emit.hpp>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s model.tflite out.hpp [namespace]\n", argv[0]);
    return 2;
  }
  std::ifstream f(argv[1], std::ios::binary);
  const std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (!f && bytes.empty()) {
    std::fprintf(stderr, "tflite2kiln: cannot read %s\n", argv[1]);
    return 1;
  }
  kiln::tflite::Model file;
  kiln::tflite::Imported model;
  kiln::Status st = file.open(bytes.data(), bytes.size());
  if (st.ok()) st = model.import(file);
  if (!st.ok()) {
    std::fprintf(stderr, "tflite2kiln: %s: %s\n", argv[1], st.message());
    return 1;
  }
  std::string ns = argc > 3 ? argv[3] : "model";
  std::ostringstream text;
  st = kiln::tflite::emit_header(model, text, ns, argv[1]);
  if (!st.ok()) {
    std::fprintf(stderr, "tflite2kiln: %s\n", st.message());
    return 1;
  }
  std::ofstream out(argv[2], std::ios::binary);
  out << text.str();
  if (!out) {
    std::fprintf(stderr, "tflite2kiln: cannot write %s\n", argv[2]);
    return 1;
  }
  // The same model through the run-time planner: what the compile-time plan will report.
  auto net = kiln::compile([&model](const auto& x) { return model(x); });
  const kiln::Tensor<std::int8_t> x(model.input_shape());
  if (net.prepare(x)) {
    const kiln::Stats s = net.stats();
    std::printf("%s -> %s (namespace %s): %d operators, %d kernels, arena %zu B (liveness lower bound %zu B)\n",
                argv[1], argv[2], ns.c_str(), file.num_operators(), s.kernels, static_cast<std::size_t>(s.arena_bytes),
                static_cast<std::size_t>(s.lower_bound));
  }
  return 0;
}
