// Shared by the static_run_* compile-fail sources: a small static model (4 -> 3, softmax).
#define KILN_MAX_NODES 16
#include <kiln/kiln.hpp>

constexpr float kW[3 * 4] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
constexpr kiln::TensorView<const float> W(kW, {3, 4});
constexpr auto model = [](auto x) { return kiln::softmax(kiln::linear(x, W), -1); };
constexpr kiln::StaticPlan kPlan = kiln::plan(model, kiln::input<float>({1, 4}));
