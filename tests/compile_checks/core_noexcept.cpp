// Compile-only check (target kiln_core_noexcept_check, part of the default build):
// the public header must build the way firmware builds it, with
//   -fno-exceptions -fno-rtti -DKILN_NO_HEAP -DKILN_NO_IOSTREAM
// and the core types must stay usable there. Nothing here is run.
#include <kiln/kiln.hpp>

#include "../ptq/tiny_int8.hpp"

#if KILN_EXCEPTIONS
#error "kiln_core_noexcept_check must be compiled with -fno-exceptions"
#endif

namespace kiln_compile_check {

// Shapes and broadcasting are constexpr: plan at compile time.
constexpr kiln::Shape kA{2, 1, 4};
constexpr kiln::Shape kB{3, 1};
constexpr bool broadcast_ok() {
  kiln::Shape out;
  return kiln::broadcast_shapes(kA, kB, out) && out == kiln::Shape{2, 3, 4} && out.numel() == 24;
}
static_assert(broadcast_ok(), "broadcast_shapes must work in constant expressions");
static_assert(kiln::contiguous_strides(kA)[0] == 4, "row-major strides");

// A Status message is built without heap or iostream.
constexpr kiln::Status make_status() {
  kiln::Status s(kiln::Errc::shape_mismatch);
  s << "add: " << kA << " vs " << kB;
  return s;
}
static_assert(!make_status().ok(), "Status carries its code");

// Views over static buffers (weights in flash, activations in an arena).
alignas(kiln::kAlignment) static float g_buffer[2 * 3 * 4];

float sum_view(kiln::TensorView<const float> v) {
  float acc = 0.f;
  for (float x : v) acc += x;
  return acc;
}

float use_view() {
  kiln::TensorView<float> v(g_buffer, kiln::Shape{2, 3, 4});
  v(1, 2, 3) = 1.f;
  v[0] = 2.f;
  if (v.shape() != kiln::Shape{2, 3, 4}) {
    kiln::fail(kiln::Status(kiln::Errc::shape_mismatch) << "view: " << v.shape());
    return 0.f;
  }
  return sum_view(v);  // TensorView<float> -> TensorView<const float>
}

// Errors are sticky instead of thrown.
bool report_error() {
  kiln::clear_error();
  kiln::fail(make_status());
  return !kiln::last_error().ok() && kiln::last_error().code() == kiln::Errc::shape_mismatch;
}

// Autodiff is an IR pass: constexpr, no heap. d/dx sum(x * x) = 2x as a compile-time graph.
constexpr bool gradient_graph_ok() {
  kiln::Graph g;
  kiln::Node in;
  in.op = kiln::Op::input;
  in.shape = kiln::Shape{3};
  const int x = g.add(in);
  kiln::Node sq;
  sq.op = kiln::Op::elementwise;
  sq.fn = kiln::EwFn::mul;
  sq.inputs[0] = sq.inputs[1] = x;
  sq.num_inputs = 2;
  kiln::Node s;
  s.op = kiln::Op::reduce;
  s.inputs[0] = g.add(sq);
  s.num_inputs = 1;
  int gx = -1;
  return kiln::passes::append_gradients(g, g.add(s), &x, 1, &gx).ok() && g[gx].shape == kiln::Shape{3};
}
static_assert(gradient_graph_ok(), "autodiff must work in constant expressions without heap");

// The int8 front-end traces and plans without heap (weights as views over static arrays).
static constexpr std::int8_t kQW[3 * 4] = {};
static constexpr float kQS[1] = {0.5f};
int int8_plan_nodes() {
  static constexpr kiln::TensorView<const std::int8_t> w(kQW, {3, 4});
  static constexpr kiln::TensorView<const float> s(kQS, {1});
  auto model = [](auto x) {
    return kiln::dequantize(kiln::qlinear(kiln::quantize(x, {0.1f, 0}), w, s, {0.2f, 0}, kiln::FusedActivation::relu()));
  };
  return kiln::plan(model, kiln::input<float>({2, 4})).nodes();
}

// A header emitted by kiln::ptq (tests/ptq/tiny_int8.hpp) plans in a firmware build.
int ptq_header_kernels() { return kiln::plan(tiny_int8::model, tiny_int8::input).kernels(); }

}  // namespace kiln_compile_check
