// mlperf_tiny: one MLPerf Tiny int8 model (AD, KWS, IC or VWW) on a Cortex-M4F (qemu's mps2-an386)
// beside TFLite Micro. The model header is generated at build time from the .tflite file by
// tflite2kiln (namespace mlperf_model: front-end calls, constexpr weights) and planned at compile
// time; kiln's static runner runs it with no heap (malloc traps), no exceptions, one static arena
// of the plan's size. Runs input A (the models README's generator) and input B (every byte the
// input zero point), checks the output bytes equal TFLite Micro's, and prints flash, RAM, arena
// and — through the instruction-count plugin, window 1 = one inference on input A — the
// instructions, each beside TFLM's figures. Built per model by tests/firmware (MLPERF_NAME names it).
// With MLPERF_PROFILE_STEPS (the mlperf_<model>_steps images) every step of the plan is its own
// window instead, and the steps are listed by operator.
#define KILN_NO_HEAP
#define KILN_NO_IOSTREAM
#ifdef MLPERF_PROFILE_STEPS
extern "C" void fw_mark();
#define KILN_STATIC_STEP_HOOK fw_mark
#endif
#include <kiln/kiln.hpp>

#include "mlperf_model.hpp"      // generated: tflite2kiln <model>.tflite mlperf_model.hpp mlperf_model
#include "mlperf_reference.hpp"  // generated: reference_header.cmake (input A, TFLM's outputs)
#include "support/check.hpp"

#ifndef MLPERF_NAME
#error "MLPERF_NAME (ad, kws, ic or vww) selects TFLite Micro's figures"
#endif

extern "C" const char __text_start[], __text_end[], _sdata[], _ebss[];

namespace {

namespace m = mlperf_model;
namespace ref = mlperf_ref;

/// TFLite Micro's figures on the same emulated Cortex-M4F (/work/shared/models/README.md:
/// tflite-micro 90b983c, GCC 12.2, one Invoke() counted with a QEMU instruction-count plugin).
struct TflmFigures {
  const char* name;
  long insns_ref, insns_cmsis, arena, flash_ref, flash_cmsis, model_bytes;
};
constexpr TflmFigures kTflm[] = {
    {"kws", 43042474, 7699895, 22772, 101596, 144484, 53940},
    {"ad", 1952295, 582947, 2260, 303628, 315180, 276980},
    {"ic", 107404890, 29863355, 54340, 150568, 183872, 98500},
    {"vww", 100250556, 24101965, 100660, 380948, 423836, 333292},
};
constexpr bool same(const char* a, const char* b) {
  while (*a && *a == *b) ++a, ++b;
  return *a == *b;
}
constexpr const TflmFigures& tflm(const char* name) {
  for (const TflmFigures& t : kTflm)
    if (same(t.name, name)) return t;
  return kTflm[0];
}
constexpr const TflmFigures& kTflmHere = tflm(MLPERF_NAME);
static_assert(same(kTflmHere.name, MLPERF_NAME), "MLPERF_NAME is not one of ad, kws, ic, vww");

/// Bytes of the graph's constants (weights, biases, weight scales) as the generated header holds them.
constexpr std::size_t constant_bytes(const kiln::Graph& g) {
  std::size_t n = 0;
  for (int i = 0; i < g.size(); ++i)
    if (g[i].op == kiln::Op::constant)
      n += static_cast<std::size_t>(g[i].shape.numel()) * kiln::dtype_size(g[i].dtype);
  return n;
}

constexpr std::size_t kIn = static_cast<std::size_t>(m::kInputShape.numel());
constexpr std::size_t kOut = static_cast<std::size_t>(m::kOutputShape.numel());
static_assert(sizeof(ref::kInputA) == kIn, "the reference input A does not match the model's input");
static_assert(sizeof(ref::kTflmOutputA) == kOut, "TFLM's output does not match the model's output");

alignas(kiln::kAlignment) std::uint8_t g_arena[m::kArenaBytes];
std::int8_t g_input_b[kIn];
std::int8_t g_output[kOut];

// Output bytes against TFLM's; prints the first difference.
bool equals_tflm(const char* which, const std::uint8_t* expected) {
  for (std::size_t i = 0; i < kOut; ++i) {
    if (static_cast<std::uint8_t>(g_output[i]) != expected[i]) {
      fw::print(MLPERF_NAME, " input ", which, ": output byte ", static_cast<long>(i), " is ",
                static_cast<long>(static_cast<std::uint8_t>(g_output[i])), ", TFLM's ",
                static_cast<long>(expected[i]));
      return false;
    }
  }
  return true;
}

}  // namespace

int main() {
  // Input A from flash (signed char aliases the bytes), one inference in the counted window.
  const auto* in_a = reinterpret_cast<const std::int8_t*>(ref::kInputA);
#ifndef MLPERF_PROFILE_STEPS
  fw_mark();
#endif
  kiln::run<m::plan>(g_arena, in_a, g_output);
#ifndef MLPERF_PROFILE_STEPS
  fw_mark();
#endif
  const bool ok_a = equals_tflm("A", ref::kTflmOutputA);
  for (std::int8_t& v : g_input_b) v = static_cast<std::int8_t>(m::kInputQuant.zero_point);
  kiln::run<m::plan>(g_arena, g_input_b, g_output);
  const bool ok_b = equals_tflm("B", ref::kTflmOutputB);
  FW_CHECK(ok_a);
  FW_CHECK(ok_b);

  const long text = static_cast<long>(__text_end - __text_start);
  const long consts = static_cast<long>(constant_bytes(m::plan.graph));
  fw::print("mlperf ", MLPERF_NAME, ": outputs ", ok_a && ok_b ? "equal" : "DIFFER from", " TFLM's on inputs A and B");
  fw::print("mlperf ", MLPERF_NAME, ": flash (.text + weights) ", text, " B, of which constants ", consts,
            " B, code and the rest ", text - consts, " B | TFLM ", kTflmHere.flash_ref, " B (reference kernels) / ",
            kTflmHere.flash_cmsis, " B (CMSIS-NN), model array ", kTflmHere.model_bytes, " B");
  fw::print("mlperf ", MLPERF_NAME, ": arena ", static_cast<long>(m::kArenaBytes), " B (planner lower bound ",
            static_cast<long>(m::plan.lower_bound()), " B), static RAM ", static_cast<long>(_ebss - _sdata),
            " B (.data + .bss: arena, input B, output) + 16 KiB stack | TFLM arena ", kTflmHere.arena, " B");
#ifdef MLPERF_PROFILE_STEPS
  // Window k+1 (then k+1 + steps for input B) is step k.
  using Model = kiln::StaticModel<m::plan>;
  for (int k = 0; k < Model::num_steps; ++k) {
    const kiln::Node& root = Model::step_nodes.nodes[k].root;
    fw::print("mlperf ", MLPERF_NAME, ": step ", static_cast<long>(k), " = window ", static_cast<long>(k + 1), ": ",
              kiln::op_name(root.op), root.op == kiln::Op::qconv2d && root.win.groups > 1 ? " depthwise" : "",
              ", output elements ", static_cast<long>(root.shape.numel()));
  }
#else
  fw::print("mlperf ", MLPERF_NAME, ": ", static_cast<long>(m::plan.kernels()),
            " kernels; instructions of one inference: window 1 (kiln insns) | TFLM ", kTflmHere.insns_ref,
            " (reference kernels) / ", kTflmHere.insns_cmsis, " (CMSIS-NN)");
#endif
  return fw::g_failures;
}
