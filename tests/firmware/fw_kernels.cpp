// kiln's kernels on a Cortex-M4F (qemu-system-arm -M mps2-an386), built as firmware: no heap
// (allocation traps, see support/no_heap.cpp), no exceptions, no RTTI, no iostream, the scalar
// kernels (no xsimd architecture on M-profile). Each op runs through the same eager entry point
// the host uses (runtime/eager.hpp run_node) on static buffers and is compared with a plain loop
// written here, with the tolerance stated per op. The exit status is the number of failures.
#define KILN_NO_HEAP
#define KILN_NO_IOSTREAM
#include <kiln/kiln.hpp>
#include <kiln/runtime/eager.hpp>

#include <cmath>

#include "support/check.hpp"

namespace {

using kiln::DType;
using kiln::EwFn;
using kiln::Node;
using kiln::Op;
using kiln::Shape;

alignas(64) float g_workspace[4096];

/// Type-checks `n` on the input shapes and runs it into `out`; false (and a message) on error.
bool run(Node n, const float* const* in, const Shape* shapes, int count, float* out) {
  DType dtypes[kiln::kMaxInputs]{};
  n.num_inputs = count;
  const kiln::Status s = kiln::infer_node(n, shapes, dtypes);
  if (!s.ok()) {
    fw::print("infer_node failed: ", s.message());
    return false;
  }
  const std::size_t ws = kiln::runtime::node_workspace_floats(n, shapes);
  if (ws > sizeof(g_workspace) / sizeof(float)) {
    fw::print("workspace too small: ", static_cast<long>(ws), " floats");
    return false;
  }
  const void* ptrs[kiln::kMaxInputs]{};
  for (int k = 0; k < count; ++k) ptrs[k] = in[k];
  kiln::runtime::run_node(n, ptrs, shapes, dtypes, out, g_workspace);
  return true;
}

Node ew(EwFn fn, float p0 = 0.f) {
  Node n;
  n.op = Op::elementwise;
  n.fn = fn;
  n.p0 = p0;
  return n;
}

/// A deterministic pseudo-random fill in [lo, hi) (no <random>: it is not needed to be good).
void fill(float* x, long n, std::uint32_t seed, float lo = -2.f, float hi = 2.f) {
  for (long i = 0; i < n; ++i) {
    seed = seed * 1664525u + 1013904223u;
    x[i] = lo + (hi - lo) * static_cast<float>(seed >> 8) * (1.f / 16777216.f);
  }
}

void test_elementwise_chain() {
  // relu(0.75 x + 0.1) * sigmoid(x) over 1000 floats, op by op; sigmoid within 4 ulp-ish.
  constexpr long n = 1000;
  static float x[n], t0[n], t1[n], t2[n], s[n], y[n], ref[n];
  fill(x, n, 1);
  const Shape v{n}, sc{};
  const float a = 0.75f, b = 0.1f;
  const float* in0[] = {x, &a};
  const Shape sh0[] = {v, sc};
  FW_CHECK(run(ew(EwFn::mul), in0, sh0, 2, t0));
  const float* in1[] = {t0, &b};
  FW_CHECK(run(ew(EwFn::add), in1, sh0, 2, t1));
  const float* in2[] = {t1};
  FW_CHECK(run(ew(EwFn::relu), in2, &v, 1, t2));
  const float* in3[] = {x};
  FW_CHECK(run(ew(EwFn::sigmoid), in3, &v, 1, s));
  const float* in4[] = {t2, s};
  const Shape sh4[] = {v, v};
  FW_CHECK(run(ew(EwFn::mul), in4, sh4, 2, y));
  for (long i = 0; i < n; ++i) {
    const float h = 0.75f * x[i] + 0.1f;
    ref[i] = (h > 0.f ? h : 0.f) / (1.f + std::exp(-x[i]));
  }
  FW_CHECK(fw::close(y, ref, n, 1e-7f, 2e-6f, "relu(a*x+b)*sigmoid(x)"));
}

void test_unary_math() {
  // exp, log, tanh, gelu(erf) against newlib's libm: 2e-6 relative (the kernels' polynomials are
  // within a few ulp; libm's own error is below that).
  constexpr long n = 257;
  static float x[n], y[n], ref[n];
  fill(x, n, 7, 0.05f, 4.f);
  const Shape v{n};
  const float* in[] = {x};
  FW_CHECK(run(ew(EwFn::exp), in, &v, 1, y));
  for (long i = 0; i < n; ++i) ref[i] = std::exp(x[i]);
  FW_CHECK(fw::close(y, ref, n, 0.f, 2e-6f, "exp"));
  FW_CHECK(run(ew(EwFn::log), in, &v, 1, y));
  for (long i = 0; i < n; ++i) ref[i] = std::log(x[i]);
  FW_CHECK(fw::close(y, ref, n, 1e-7f, 2e-6f, "log"));
  FW_CHECK(run(ew(EwFn::tanh), in, &v, 1, y));
  for (long i = 0; i < n; ++i) ref[i] = std::tanh(x[i]);
  FW_CHECK(fw::close(y, ref, n, 1e-7f, 2e-6f, "tanh"));
  fill(x, n, 8, -4.f, 4.f);
  FW_CHECK(run(ew(EwFn::gelu_erf), in, &v, 1, y));
  for (long i = 0; i < n; ++i) ref[i] = 0.5f * x[i] * (1.f + std::erf(x[i] * 0.70710678f));
  FW_CHECK(fw::close(y, ref, n, 1e-6f, 1e-5f, "gelu(erf)"));
}

void test_broadcast_and_nan() {
  // [3, 1, 5] + [4, 1] -> [3, 4, 5], exact; relu and maximum propagate NaN on this ISA too.
  static float a[15], b[4], y[60];
  fill(a, 15, 3);
  fill(b, 4, 4);
  const float* in[] = {a, b};
  const Shape sh[] = {Shape{3, 1, 5}, Shape{4, 1}};
  FW_CHECK(run(ew(EwFn::add), in, sh, 2, y));
  bool exact = true;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 4; ++j)
      for (int k = 0; k < 5; ++k) exact = exact && y[(i * 4 + j) * 5 + k] == a[i * 5 + k] + b[j];
  FW_CHECK(exact);

  const float nan = std::nanf("");
  const float xs[5] = {nan, -1.f, 0.f, 2.f, -nan};
  float r[5];
  const float* in1[] = {xs};
  const Shape v{5};
  FW_CHECK(run(ew(EwFn::relu), in1, &v, 1, r));
  FW_CHECK(std::isnan(r[0]) && r[1] == 0.f && r[2] == 0.f && r[3] == 2.f && std::isnan(r[4]));
  const float ones[5] = {1.f, 1.f, 1.f, 1.f, 1.f};
  const float* in2[] = {xs, ones};
  const Shape sh2[] = {v, v};
  FW_CHECK(run(ew(EwFn::maximum), in2, sh2, 2, r));
  FW_CHECK(std::isnan(r[0]) && r[1] == 1.f && r[3] == 2.f && std::isnan(r[4]));
}

void test_reduce_and_softmax() {
  // sum and max over the middle axis of [3, 17, 5]; softmax and log_softmax over rows of [7, 33].
  static float x[3 * 17 * 5], y[15], ref[15];
  fill(x, 3 * 17 * 5, 11);
  Node sum;
  sum.op = Op::reduce;
  sum.rk = kiln::ReduceKind::sum;
  sum.axis = 1;
  const float* in[] = {x};
  const Shape s3{3, 17, 5};
  FW_CHECK(run(sum, in, &s3, 1, y));
  for (int i = 0; i < 3; ++i)
    for (int k = 0; k < 5; ++k) {
      float acc = 0.f;
      for (int j = 0; j < 17; ++j) acc += x[(i * 17 + j) * 5 + k];
      ref[i * 5 + k] = acc;
    }
  FW_CHECK(fw::close(y, ref, 15, 1e-5f, 1e-5f, "sum(axis 1)"));  // summation order differs
  Node mx = sum;
  mx.rk = kiln::ReduceKind::max;
  FW_CHECK(run(mx, in, &s3, 1, y));
  for (int i = 0; i < 3; ++i)
    for (int k = 0; k < 5; ++k) {
      float m = x[i * 17 * 5 + k];
      for (int j = 1; j < 17; ++j) m = std::fmax(m, x[(i * 17 + j) * 5 + k]);
      ref[i * 5 + k] = m;
    }
  FW_CHECK(fw::close(y, ref, 15, 0.f, 0.f, "max(axis 1)"));

  static float z[7 * 33], p[7 * 33], pref[7 * 33];
  fill(z, 7 * 33, 12, -8.f, 8.f);
  for (bool log : {false, true}) {
    Node sm;
    sm.op = log ? Op::log_softmax : Op::softmax;
    sm.axis = 1;
    const float* zin[] = {z};
    const Shape s2{7, 33};
    FW_CHECK(run(sm, zin, &s2, 1, p));
    for (int r = 0; r < 7; ++r) {
      float m = z[r * 33];
      for (int c = 1; c < 33; ++c) m = std::fmax(m, z[r * 33 + c]);
      float s = 0.f;
      for (int c = 0; c < 33; ++c) s += std::exp(z[r * 33 + c] - m);
      for (int c = 0; c < 33; ++c)
        pref[r * 33 + c] = log ? z[r * 33 + c] - m - std::log(s) : std::exp(z[r * 33 + c] - m) / s;
    }
    FW_CHECK(fw::close(p, pref, 7 * 33, 2e-6f, 1e-5f, log ? "log_softmax" : "softmax"));
  }
}

void test_matmul() {
  // linear: x [5, 17] @ W[9, 17]^T, batch-1 x [1, 17], and a plain [6, 13] @ [13, 11]; 1e-5 relative
  // plus 1e-6 absolute for the reordered accumulation.
  static float x[5 * 17], w[9 * 17], y[5 * 9], ref[5 * 9];
  fill(x, 5 * 17, 21);
  fill(w, 9 * 17, 22);
  for (int rows : {5, 1}) {
    Node lin;
    lin.op = Op::matmul;
    lin.trans_b = true;
    const float* in[] = {x, w};
    const Shape sh[] = {Shape{rows, 17}, Shape{9, 17}};
    fw_mark();  // instruction-count window (ctest fw_kernels_insns): one eager linear
    const bool ran = run(lin, in, sh, 2, y);
    fw_mark();
    FW_CHECK(ran);
    for (int i = 0; i < rows; ++i)
      for (int j = 0; j < 9; ++j) {
        float acc = 0.f;
        for (int k = 0; k < 17; ++k) acc += x[i * 17 + k] * w[j * 17 + k];
        ref[i * 9 + j] = acc;
      }
    FW_CHECK(fw::close(y, ref, rows * 9, 1e-6f, 1e-5f, rows == 1 ? "linear (batch 1)" : "linear"));
  }
  static float a[6 * 13], b[13 * 11], c[6 * 11], cref[6 * 11];
  fill(a, 6 * 13, 23);
  fill(b, 13 * 11, 24);
  Node mm;
  mm.op = Op::matmul;
  const float* in[] = {a, b};
  const Shape sh[] = {Shape{6, 13}, Shape{13, 11}};
  FW_CHECK(run(mm, in, sh, 2, c));
  for (int i = 0; i < 6; ++i)
    for (int j = 0; j < 11; ++j) {
      float acc = 0.f;
      for (int k = 0; k < 13; ++k) acc += a[i * 13 + k] * b[k * 11 + j];
      cref[i * 11 + j] = acc;
    }
  FW_CHECK(fw::close(c, cref, 6 * 11, 1e-6f, 1e-5f, "matmul"));
}

void test_bad_input() {
  // A shape mismatch is a status naming the op, not a crash (no exceptions here).
  Node add = ew(EwFn::add);
  add.num_inputs = 2;
  const Shape sh[] = {Shape{3, 4}, Shape{5, 4}};
  const DType dt[] = {DType::f32, DType::f32};
  const kiln::Status s = kiln::infer_node(add, sh, dt);
  FW_CHECK(!s.ok());
  const char* m = s.message();
  bool names_op = m[0] == 'a' && m[1] == 'd' && m[2] == 'd';
  FW_CHECK(names_op);
}

}  // namespace

int main() {
  test_elementwise_chain();
  test_unary_math();
  test_broadcast_and_nan();
  test_reduce_and_softmax();
  test_matmul();
  test_bad_input();
  fw::print("fw_kernels: ", static_cast<long>(fw::g_checks), " checks, ", static_cast<long>(fw::g_failures),
            " failed");
  return fw::g_failures;
}
