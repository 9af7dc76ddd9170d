// Must NOT compile: a static model whose shapes do not fit stops the build, and the diagnostic
// names the op (tests/CMakeLists.txt checks the compiler's message).
#define KILN_MAX_NODES 16
#include <kiln/kiln.hpp>

constexpr float kW[4 * 8] = {};
constexpr kiln::TensorView<const float> W(kW, {4, 8});
constexpr auto model = [](auto x) { return kiln::relu(kiln::linear(x, W)); };
constexpr kiln::StaticPlan kPlan = kiln::plan(model, kiln::input<float>({1, 5}));  // 5 features, W wants 8

int main() { return kPlan.kernels(); }
