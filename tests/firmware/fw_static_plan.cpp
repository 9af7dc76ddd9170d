// A model traced and planned at compile time in a firmware build (KILN_NO_HEAP, no exceptions):
// the ordinary op front-end, weights as TensorViews over flash arrays, the arena size a constant
// the firmware can size a static buffer with. This image only plans (the plan needs nothing from
// the host and no code in flash); fw_static_run.cpp runs the same model.
#define KILN_NO_HEAP
#define KILN_NO_IOSTREAM
#define KILN_MAX_NODES 32
#include <kiln/kiln.hpp>

#include "fw_static_model.hpp"
#include "support/check.hpp"

namespace {

constexpr kiln::StaticPlan kPlan = kiln::plan(fwm::classifier, kiln::input<float>({1, 64}));
static_assert(kPlan.ok());
static_assert(kPlan.kernels() == 3, "linear+bias+relu, linear+bias, softmax");
static_assert(kPlan.arena_bytes() == kPlan.lower_bound(), "the arena meets the liveness lower bound");

// The firmware's arena, sized by the compiler.
alignas(kiln::kAlignment) std::uint8_t g_arena[kPlan.arena_bytes()];

}  // namespace

int main() {
  FW_CHECK(kPlan.graph.node(kPlan.graph.output(0)).shape == (kiln::Shape{1, 10}));
  FW_CHECK(sizeof(g_arena) == kPlan.arena_bytes());
  fw::print("fw_static_plan: ", static_cast<long>(kPlan.nodes()), " nodes, ", static_cast<long>(kPlan.kernels()),
            " kernels, arena ", static_cast<long>(sizeof(g_arena)), " B (lower bound ",
            static_cast<long>(kPlan.lower_bound()), " B); ", static_cast<long>(fw::g_failures), " failed");
  return fw::g_failures;
}
