// Random op chains: gradients of seeded random compositions (elementwise with broadcast
// partners, reductions broadcast back, softmax, matmul, views, pad, concat) — compiled against
// eager on every seed, and against finite differences (tests/grad_check.hpp tolerances) on all of
// them. Bigger backward graphs than the per-op tests, so fusion and planning of backward graphs
// (shared adjoints, views of views, reductions feeding elementwise chains) get exercised.
// KILN_TRAIN_FUZZ_SEED / KILN_TRAIN_FUZZ_COUNT reproduce or extend (default: seeds 1..60).
// Known limit of the finite-difference side: maximum/minimum/max have kinks, and an input can lie
// so close to one that the two-step kink detector (grad_check.hpp near_kink) misses it. Over seeds
// 1..400 that happens once (seed 147: d/dx0[4] 0.0023 vs 0.0106), and that seed passes with
// h = 1e-4; compiled and eager agree on every seed. A failure naming a seed with step 9 or 12 is
// most likely such a near-tie: recheck it with a smaller h before suspecting a rule.
#include <cstdlib>

#include "grad_check.hpp"

using kiln::Shape;
using kiln::Tensor;

namespace {

constexpr kiln::index_t kB = 3, kF = 4;

struct Step {
  int kind;
  int arg;
};

// Every step maps a [kB, kF] value to a [kB, kF] value (smooth almost everywhere), mixing in the
// other inputs: r [kF], c [kB, 1], w [kF, kF].
template <class X, class R, class C, class W>
auto run_chain(const std::vector<Step>& prog, X x, const R& r, const C& c, const W& w) {
  for (const Step& s : prog) {
    switch (s.kind) {
      case 0: x = kiln::tanh(x) * r; break;
      case 1: x = x * kiln::sigmoid(c) + r; break;
      case 2: x = kiln::softmax(x, s.arg % 2) * 3.f; break;
      case 3: x = x - kiln::mean(x, s.arg % 2, true); break;
      case 4: x = kiln::matmul(x, w) * 0.5f; break;
      case 5: x = kiln::linear(x, w) + c; break;
      case 6: x = kiln::transpose(kiln::reshape(kiln::transpose(x), Shape{kF, kB})) * 1.5f; break;
      case 7: x = kiln::pad(kiln::slice(x, 1, 1, kF), 1, 1, 0) + kiln::slice(x, 1, 0, 1); break;
      case 8: x = kiln::concat({kiln::slice(x, 0, 1, kB), kiln::slice(x, 0, 0, 1) * 2.f}, 0); break;
      case 9: x = kiln::log_softmax(x, 1) + kiln::max(x, 0, true); break;
      case 10: x = kiln::silu(x) + kiln::gelu(x * c); break;
      case 11: x = kiln::sqrt(x * x + 1.f) * kiln::expand(kiln::sum(x, 1, true), Shape{kB, kF}) * 0.2f; break;
      default: x = kiln::maximum(x, r * 0.5f) + kiln::minimum(x, c); break;
    }
  }
  return x;
}

}  // namespace

TEST_CASE("random op chains: compiled grads == eager grads == finite differences") {
  const long first = std::getenv("KILN_TRAIN_FUZZ_SEED") ? std::atol(std::getenv("KILN_TRAIN_FUZZ_SEED")) : 1;
  const long count = std::getenv("KILN_TRAIN_FUZZ_COUNT") ? std::atol(std::getenv("KILN_TRAIN_FUZZ_COUNT")) : 60;
  for (long seed = first; seed < first + count; ++seed) {
    std::mt19937 rng(static_cast<std::uint32_t>(seed));
    std::vector<Step> prog(2 + rng() % 5);
    for (Step& s : prog) s = Step{static_cast<int>(rng() % 13), static_cast<int>(rng() % 2)};
    std::string desc = "seed " + std::to_string(seed) + ": steps";
    for (const Step& s : prog) desc += " " + std::to_string(s.kind) + "/" + std::to_string(s.arg);
    const auto x = kt::random_tensor(Shape{kB, kF}, static_cast<std::uint32_t>(seed) * 7 + 1, -1.f, 1.f);
    const auto r = kt::random_tensor(Shape{kF}, static_cast<std::uint32_t>(seed) * 7 + 2, -1.f, 1.f);
    const auto c = kt::random_tensor(Shape{kB, 1}, static_cast<std::uint32_t>(seed) * 7 + 3, -1.f, 1.f);
    const auto w = kt::random_tensor(Shape{kF, kF}, static_cast<std::uint32_t>(seed) * 7 + 4, -0.7f, 0.7f);
    auto chain = [prog](auto a, auto b, auto cc, auto ww) { return run_chain(prog, a, b, cc, ww); };
    // maximum/minimum and max over an axis have kinks; a random input may land within h of one
    // (a near-tie), where finite differences mean nothing: those elements are detected and left
    // to the compiled-vs-eager comparison.
    auto f3 = [chain, w](auto a, auto b, auto cc) { return chain(a, b, cc, w); };
    gc::check_gradients_impl(desc, gc::Kinks::skip, f3, static_cast<std::uint32_t>(seed), x, r, c);
  }
}
