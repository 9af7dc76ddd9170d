// The int8 TFLite operators (qmul, qlogistic, qtanh, qhard_swish, qmean, qpad, qslice, qconcat) on a
// Cortex-M4F: fw_int8_tfops_model.hpp's model planned at compile time and run by the static runner
// (KILN_NO_HEAP, no exceptions, malloc traps), byte for byte against the same kernels called
// directly on the M4 (the host test test_static_run_int8_tfops checks both against compile() and
// kiln::eager). Window 1 of the instruction count: one inference.
#define KILN_NO_HEAP
#define KILN_NO_IOSTREAM
#define KILN_MAX_NODES 32
#include <kiln/kiln.hpp>

#include "fw_int8_tfops_model.hpp"
#include "support/check.hpp"

namespace {

constexpr kiln::StaticPlan kPlan = kiln::plan(tfops::model, kiln::input<std::int8_t>({1, 4, 5, 3}, tfops::kIn));
static_assert(kPlan.ok() && kPlan.num_int8 == 9);

alignas(kiln::kAlignment) std::uint8_t g_arena[kPlan.arena_bytes()];

}  // namespace

int main() {
  std::int8_t x[tfops::kInputSize], y[tfops::kOutputSize], want[tfops::kOutputSize];
  std::uint32_t seed = 7;
  for (std::int8_t& v : x) {
    seed = seed * 1664525u + 1013904223u;
    v = static_cast<std::int8_t>(static_cast<int>(seed >> 24) - 128);
  }
  fw_mark();  // instruction-count window: one inference
  kiln::run<kPlan>(g_arena, x, y);
  fw_mark();
  FW_CHECK(tfops::direct(x, want));
  int differ = 0, distinct = 0;
  for (kiln::index_t i = 0; i < tfops::kOutputSize; ++i) {
    differ += y[i] != want[i];
    distinct += i > 0 && want[i] != want[i - 1];
  }
  FW_CHECK(differ == 0);
  FW_CHECK(distinct > 20);  // not a constant output
  fw::print("fw_int8_tfops: ", static_cast<long>(kPlan.num_int8), " int8 steps, arena ",
            static_cast<long>(sizeof(g_arena)), " B (lower bound ", static_cast<long>(kPlan.lower_bound()), " B); ",
            static_cast<long>(fw::g_failures), " failed");
  return fw::g_failures;
}
