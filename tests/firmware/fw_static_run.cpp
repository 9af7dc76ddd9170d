// The digits classifier's float shape (64 -> 32 -> 10, softmax) planned at compile time and run by
// the static runner (kiln::run<plan>) on a Cortex-M4F: KILN_NO_HEAP, no exceptions, malloc traps.
// The weights are real non-zero values in flash; the result is checked against naive loops.
// The arena is the plan's constant and its liveness lower bound, GEMM packing scratch included.
// fw_static_run_conv.cpp is the same with a conv front: compare their .text to see that an image
// links only the kernels its model uses.
#define KILN_NO_HEAP
#define KILN_NO_IOSTREAM
#define KILN_MAX_NODES 32
#include <kiln/kiln.hpp>

#include "fw_static_model.hpp"
#include "support/check.hpp"

namespace {

using fwm::kB1;
using fwm::kB2;
using fwm::kW1;
using fwm::kW2;

constexpr kiln::StaticPlan kPlan = kiln::plan(fwm::classifier, kiln::input<float>({1, 64}));
static_assert(kPlan.ok());
static_assert(kPlan.kernels() == 3, "linear+bias+relu, linear+bias, softmax");
static_assert(kPlan.arena_bytes() == kPlan.lower_bound(), "the arena meets the liveness lower bound");

alignas(kiln::kAlignment) std::uint8_t g_arena[kPlan.arena_bytes()];

}  // namespace

int main() {
  float x[64], y[10], h[32], ref[10];
  for (int i = 0; i < 64; ++i) x[i] = static_cast<float>((i * 37) % 17) / 16.f;  // pixel-like, 0..1
  fw_mark();  // instruction-count window: one inference
  kiln::run<kPlan>(g_arena, x, y);
  fw_mark();
  fwm::dense(x, kW1.data(), kB1.data(), 64, 32, true, h);
  fwm::dense(h, kW2.data(), kB2.data(), 32, 10, false, ref);
  fwm::softmax(ref, 10);
  float worst = 0.f, sum = 0.f;
  for (int k = 0; k < 10; ++k) {
    const float e = std::fabs(y[k] - ref[k]);
    worst = e > worst ? e : worst;
    sum += y[k];
  }
  FW_CHECK(worst <= 1e-5f);  // probabilities; the naive loop sums in another order
  FW_CHECK(std::fabs(sum - 1.f) <= 1e-5f);
  FW_CHECK(ref[0] != ref[1]);  // the weights are not trivial
  fw::print("fw_static_run: ", static_cast<long>(kPlan.kernels()), " kernels, arena ",
            static_cast<long>(sizeof(g_arena)), " B (lower bound ", static_cast<long>(kPlan.lower_bound()),
            " B), .text ", fwm::text_bytes(), " B (weights ",
            static_cast<long>(sizeof(kW1) + sizeof(kB1) + sizeof(kW2) + sizeof(kB2)), " B); max |err| ", worst, "; ",
            static_cast<long>(fw::g_failures), " failed");
  return fw::g_failures;
}
