// mcu_digits: the digits classifier on a Cortex-M4F (qemu's mps2-an386). The model (weights and
// held-out images: model.hpp, written by scripts/mcu_digits_model.sh) is planned at compile time
// and run by kiln's static runner: no heap (malloc traps), no exceptions, one static arena whose
// size the compiler computed. Classifies every held-out image, prints the accuracy, the footprint
// and the plan's arena, and exits non-zero below the host's accuracy. Built and run by
// tests/firmware (ctest mcu_digits, and mcu_digits_insns for the instruction count of one
// inference between the fw_mark() calls).
#define KILN_NO_HEAP
#define KILN_NO_IOSTREAM
#define KILN_MAX_NODES 32
#include <kiln/kiln.hpp>

#include "model.hpp"
#include "support/check.hpp"

extern "C" const char __text_start[], __text_end[], _sdata[], _ebss[];

namespace {

namespace m = mcu_digits;
constexpr kiln::TensorView<const float> W1(m::kW1, {m::kHidden, m::kIn}), B1(m::kB1, {m::kHidden}),
    W2(m::kW2, {m::kClasses, m::kHidden}), B2(m::kB2, {m::kClasses});
constexpr auto classifier = [](auto x) { return kiln::linear(kiln::relu(kiln::linear(x, W1, B1)), W2, B2); };
constexpr kiln::StaticPlan kPlan = kiln::plan(classifier, kiln::input<float>({1, m::kIn}));
static_assert(kPlan.ok());
static_assert(kPlan.arena_bytes() == kPlan.lower_bound(), "the arena is the planner's lower bound");

alignas(kiln::kAlignment) std::uint8_t g_arena[kPlan.arena_bytes()];

int classify(const std::uint8_t* pixels, bool mark) {
  float x[m::kIn], logits[m::kClasses];
  for (int k = 0; k < m::kIn; ++k) x[k] = static_cast<float>(pixels[k]) / 16.f;
  if (mark) fw_mark();  // instruction-count window: one inference
  kiln::run<kPlan>(g_arena, x, logits);
  if (mark) fw_mark();
  int best = 0;
  for (int c = 1; c < m::kClasses; ++c)
    if (logits[c] > logits[best]) best = c;
  return best;
}

}  // namespace

int main() {
  int correct = 0;
  for (int i = 0; i < m::kTestCount; ++i)
    correct += classify(m::kTestPixels + i * m::kIn, i == 0) == m::kTestLabels[i];
  fw::print("mcu_digits (float): ", static_cast<long>(correct), "/", static_cast<long>(m::kTestCount),
            " correct (", static_cast<float>(correct) / static_cast<float>(m::kTestCount), "), host ",
            static_cast<long>(m::kHostFloatCorrect), "/", static_cast<long>(m::kTestCount));
  fw::print("mcu_digits: .text ", static_cast<long>(__text_end - __text_start), " B, static RAM ",
            static_cast<long>(_ebss - _sdata), " B (.data + .bss), arena ", static_cast<long>(sizeof(g_arena)),
            " B (planner lower bound ", static_cast<long>(kPlan.lower_bound()), " B), ",
            static_cast<long>(kPlan.kernels()), " kernels");
  FW_CHECK(correct >= m::kHostFloatCorrect);  // the firmware must not lose accuracy
  return fw::g_failures;
}
