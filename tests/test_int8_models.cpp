// The four MLPerf Tiny int8 models run layer by layer through kiln's int8 kernels and compared
// byte for byte with TFLite Micro's outputs (/work/shared/models/reference, inputs A and B).
//
// The model is read with kiln's TFLite reader (kiln/tflite.hpp: structure and support checked
// first); tests/tflite_reference.hpp runs the operators in file order through the int8 kernels,
// so this checks the kernels and the reader independently of the graph import. The integer
// parameters are derived from the float scales with kiln::quant, so the whole path
// (multipliers, activation ranges, kernels) is checked.
// Models are looked up in $KILN_MODELS_DIR, else /work/shared/models; when absent the test says
// so and checks nothing.
#include <doctest/doctest.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tflite_models.hpp"
#include "tflite_reference.hpp"

using kiln::index_t;
using kiln_test::ref::Model;
using kiln_test::ref::run;

TEST_CASE("MLPerf Tiny int8 models: kiln's kernels give TFLite Micro's output bytes") {
  const std::string dir = kiln_test::models_dir();
  const std::map<std::string, std::string> expected = kiln_test::tflm_expected_outputs();
  if (expected.empty()) {
    MESSAGE("no models at " << dir << " (set KILN_MODELS_DIR): nothing checked");
    return;
  }
  for (const auto& entry : kiln_test::kMlperfTinyModels) {
    // Plain variables, not a structured binding: clang 14 cannot capture those in doctest's lambdas.
    const std::string name = entry.first, file = entry.second;
    Model m;
    m.load(dir + "/" + file);
    const index_t n = m.shape(m.input).numel();
    // Input A from its hex file; input B: every byte the input zero point.
    const std::vector<std::int8_t> b(static_cast<std::size_t>(n), static_cast<std::int8_t>(m.quant(m.input).zero_point));
    const std::vector<std::int8_t> a = kiln_test::tflm_input_a(name, static_cast<std::size_t>(n));
    REQUIRE(a.size() == static_cast<std::size_t>(n));
    INFO("model " << name << " (" << m.view.num_operators() << " operators)");
    const std::vector<std::int8_t> ya = run(m, a), yb = run(m, b);
    CHECK(kiln_test::hex(ya.data(), ya.size()) == expected.at(name + "A"));
    CHECK(kiln_test::hex(yb.data(), yb.size()) == expected.at(name + "B"));
  }
}
