// mcu_digits: the digits classifier on a Cortex-M4F (qemu's mps2-an386), float and int8. The
// models (model.hpp: float weights and the held-out images; model_int8.hpp: the int8 model kiln's
// PTQ emitted; both written by scripts/mcu_digits_model.sh) are planned at compile time and run by
// kiln's static runner: no heap (malloc traps), no exceptions, one static arena whose size the
// compiler computed. Classifies every held-out image with both, prints the accuracies, the
// footprint and the plans' arenas, and exits non-zero below the host's accuracy. Built and run by
// tests/firmware (ctest mcu_digits, and mcu_digits_insns: the instruction count of one float
// inference, window 1, and one int8 inference, window 2, between fw_mark() calls).
#define KILN_NO_HEAP
#define KILN_NO_IOSTREAM
#define KILN_MAX_NODES 32
#include <kiln/kiln.hpp>

#include "model.hpp"
#include "model_int8.hpp"
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
constexpr kiln::StaticPlan kInt8Plan = kiln::plan(mcu_digits_int8::model, mcu_digits_int8::input);
static_assert(kInt8Plan.ok());
static_assert(kInt8Plan.arena_bytes() == kInt8Plan.lower_bound(), "the arena is the planner's lower bound");

// One arena for both models (they never run at the same time).
constexpr std::size_t kArena =
    kPlan.arena_bytes() > kInt8Plan.arena_bytes() ? kPlan.arena_bytes() : kInt8Plan.arena_bytes();
alignas(kiln::kAlignment) std::uint8_t g_arena[kArena];

template <const kiln::StaticPlan& P>
int classify(const std::uint8_t* pixels, bool mark) {
  float x[m::kIn], logits[m::kClasses];
  for (int k = 0; k < m::kIn; ++k) x[k] = static_cast<float>(pixels[k]) / 16.f;
  if (mark) fw_mark();  // instruction-count window: one inference
  kiln::run<P>(g_arena, x, logits);
  if (mark) fw_mark();
  int best = 0;
  for (int c = 1; c < m::kClasses; ++c)
    if (logits[c] > logits[best]) best = c;
  return best;
}

}  // namespace

int main() {
  int correct = 0, correct_int8 = 0;
  for (int i = 0; i < m::kTestCount; ++i)
    correct += classify<kPlan>(m::kTestPixels + i * m::kIn, i == 0) == m::kTestLabels[i];
  for (int i = 0; i < m::kTestCount; ++i)
    correct_int8 += classify<kInt8Plan>(m::kTestPixels + i * m::kIn, i == 0) == m::kTestLabels[i];
  const auto n = static_cast<long>(m::kTestCount);
  fw::print("mcu_digits float: ", static_cast<long>(correct), "/", n, " correct (host ",
            static_cast<long>(m::kHostFloatCorrect), "/", n, "), arena ", static_cast<long>(kPlan.arena_bytes()),
            " B (planner lower bound ", static_cast<long>(kPlan.lower_bound()), " B), ",
            static_cast<long>(kPlan.kernels()), " kernels");
  fw::print("mcu_digits int8:  ", static_cast<long>(correct_int8), "/", n, " correct (host ",
            static_cast<long>(m::kHostInt8Correct), "/", n, "), arena ", static_cast<long>(kInt8Plan.arena_bytes()),
            " B (planner lower bound ", static_cast<long>(kInt8Plan.lower_bound()), " B), ",
            static_cast<long>(kInt8Plan.kernels()), " kernels");
  fw::print("mcu_digits: .text ", static_cast<long>(__text_end - __text_start), " B, static RAM ",
            static_cast<long>(_ebss - _sdata), " B (.data + .bss, the shared arena ", static_cast<long>(kArena), " B)");
  FW_CHECK(correct >= m::kHostFloatCorrect);  // the firmware must not lose accuracy
  FW_CHECK(correct_int8 >= m::kHostInt8Correct);
  return fw::g_failures;
}
