// Low-precision training pieces (train/low_precision.hpp, train/grad_scaler.hpp): fake
// quantisation against naive loops, the straight-through gradient, stochastic rounding's
// unbiasedness, CPT's schedule and range test, BitOPs, UpdateGate, and dynamic loss scaling.
#include <doctest/doctest.h>

#include <kiln/kiln.hpp>
#include <kiln/train/grad_scaler.hpp>
#include <kiln/train/low_precision.hpp>

#include <cmath>
#include <random>
#include <string>
#include <vector>

namespace {

kiln::Tensor<float> random_tensor(const kiln::Shape& s, unsigned seed, float lo = -3.f, float hi = 3.f) {
  kiln::Tensor<float> t(s);
  std::mt19937 g(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  for (float& v : t) v = u(g);
  return t;
}

// The quantiser written out: the same float operations in the same order.
std::vector<float> naive_fake_quant(const kiln::Tensor<float>& x, int bits, bool per_channel) {
  const float levels = static_cast<float>((1 << (bits - 1)) - 1);
  const kiln::index_t rows = per_channel ? x.shape()[0] : 1, cols = x.size() / rows;
  std::vector<float> out(static_cast<std::size_t>(x.size()));
  for (kiln::index_t r = 0; r < rows; ++r) {
    float m = 0.f;
    for (kiln::index_t c = 0; c < cols; ++c) m = std::fmax(m, std::fabs(x[r * cols + c]));
    const float scale = std::fmax(m, 1e-30f) / levels;
    for (kiln::index_t c = 0; c < cols; ++c)
      out[static_cast<std::size_t>(r * cols + c)] = std::nearbyint(x[r * cols + c] / scale) * scale;
  }
  return out;
}

}  // namespace

TEST_CASE("fake_quantize equals the naive quantiser, per tensor and per channel, as the bit width changes") {
  const kiln::Tensor<float> x = random_tensor({7, 13}, 1);
  kiln::BitWidth width(8);
  for (bool per_channel : {false, true}) {
    auto q = kiln::compile([&](auto t) { return kiln::fake_quantize(t, width.levels(), per_channel); });
    for (int bits : {8, 3, 5, 2}) {
      width.set(bits);
      const kiln::Tensor<float> got = q(x);
      const std::vector<float> want = naive_fake_quant(x, bits, per_channel);
      INFO("bits " << bits << " per_channel " << per_channel);
      int bad = 0, distinct = 0;
      for (kiln::index_t i = 0; i < x.size(); ++i) bad += got[i] != want[static_cast<std::size_t>(i)];
      for (kiln::index_t i = 1; i < 13; ++i) distinct += got[i] != got[i - 1];
      CHECK(bad == 0);  // exact: the same float operations
      CHECK(distinct > 0);
    }
    CHECK(q.stats().traces == 1);  // the bit width is a run-time value: one plan for all of them
  }
}

TEST_CASE("fake_quantize passes the gradient straight through; round and floor pass none") {
  kiln::Parameter w(random_tensor({5, 4}, 2));
  const kiln::Tensor<float> c = random_tensor({5, 4}, 3);
  kiln::BitWidth width(4);
  auto step = kiln::compile([&](auto coeff) {
    auto loss = kiln::sum(kiln::reshape(kiln::fake_quantize(w, width.levels(), coeff, true) * coeff, kiln::Shape{-1}), 0);
    auto rounded = kiln::sum(kiln::reshape(kiln::round(w * coeff) + kiln::floor(w), kiln::Shape{-1}), 0);
    return std::make_pair(std::get<0>(kiln::grad(loss, w)), std::get<0>(kiln::grad(rounded + loss * 0.f, w)));
  });
  const auto [g, g_round] = step(c);
  for (kiln::index_t i = 0; i < c.size(); ++i) {
    CHECK(g[i] == c[i]);
    CHECK(g_round[i] == 0.f);
  }
}

TEST_CASE("stochastic rounding of gradients is unbiased, on the grid, and reproducible from the seed") {
  kiln::Parameter w(kiln::Shape{64});
  const kiln::Tensor<float> x = random_tensor({64}, 4, -1.f, 1.f);  // d sum(w x) / dw = x
  auto run = [&](std::uint32_t seed, int steps, std::vector<double>& mean, std::vector<float>& first) {
    kiln::GradientQuantizer gq({&w}, 4, seed);  // 7 levels: a coarse grid makes bias visible
    auto step = kiln::compile([&](auto xs) {
      auto loss = kiln::sum(w * xs, 0);
      return std::get<0>(gq(kiln::grad(loss, w)));
    });
    mean.assign(64, 0.0);
    float m = 0.f;
    for (kiln::index_t i = 0; i < 64; ++i) m = std::fmax(m, std::fabs(x[i]));
    const float s = m / 7.f;
    int off_grid = 0, far = 0;
    for (int k = 0; k < steps; ++k) {
      gq.refill();
      const kiln::Tensor<float> q = step(x);
      if (k == 0) first.assign(q.begin(), q.end());
      for (kiln::index_t i = 0; i < 64; ++i) {
        const float units = q[i] / s;
        off_grid += std::fabs(units - std::nearbyint(units)) >= 1e-4f;  // on the grid
        far += std::fabs(q[i] - x[i]) > s * (1.f + 1e-5f);             // a neighbour of g
        mean[static_cast<std::size_t>(i)] += q[i] / static_cast<double>(steps);
      }
    }
    CHECK(off_grid == 0);
    CHECK(far == 0);
    return s;
  };
  std::vector<double> mean_a, mean_b;
  std::vector<float> first_a, first_b, first_c;
  const float s = run(11, 2000, mean_a, first_a);
  run(11, 1, mean_b, first_b);
  std::vector<double> unused;
  run(12, 1, unused, first_c);
  CHECK(first_a == first_b);  // same seed, same noise
  CHECK(first_a != first_c);
  // Each q is g's lower or upper grid neighbour: the mean of 2000 has standard error <= s / 89;
  // 5 standard errors.
  for (kiln::index_t i = 0; i < 64; ++i) CHECK(std::fabs(mean_a[static_cast<std::size_t>(i)] - x[i]) < 5.0 * s / 89.0);
}

TEST_CASE("CyclicPrecision follows CPT's cosine schedule; the range test picks the first working precision") {
  const kiln::CyclicPrecision cpt{3, 8, 32, 320};  // cycles of 10 steps
  CHECK(cpt.bits_at(0) == 3);
  CHECK(cpt.bits_at(5) == 6);   // 3 + 2.5 (1 - cos(pi/2)) = 5.5, rounded half away from zero
  CHECK(cpt.bits_at(9) == 8);   // 3 + 2.5 (1 - cos(0.9 pi)) = 7.88
  CHECK(cpt.bits_at(10) == 3);  // the next cycle starts low again
  CHECK(cpt.bits_at(319) == 8);
  for (long t = 0; t < 320; ++t) {
    CHECK(cpt.bits_at(t) >= 3);
    CHECK(cpt.bits_at(t) <= 8);
  }
  std::vector<int> probed;
  const int b_min = kiln::precision_range_test([&](int bits) {
    probed.push_back(bits);
    return bits >= 4 ? 0.2 : 0.01;
  });
  CHECK(b_min == 4);
  CHECK(probed == std::vector<int>{2, 3, 4});
  CHECK(kiln::precision_range_test([](int) { return 0.0; }) == 8);
}

TEST_CASE("count_macs and training_bitops") {
  const kiln::Tensor<float> w1 = random_tensor({64, 10}, 5), w2 = random_tensor({1, 64}, 6);
  auto mlp = kiln::compile([&](auto x) { return kiln::linear(kiln::relu(kiln::linear(x, w1)), w2); });
  (void)mlp(random_tensor({32, 10}, 7));
  const double macs = kiln::count_macs(*mlp.traced_graph());
  CHECK(macs == 32.0 * 64 * 10 + 32.0 * 1 * 64);
  CHECK(kiln::training_bitops(macs, 8, 8, 8) == macs * 192);
  CHECK(kiln::training_bitops(macs, 32, 32, 32) == macs * 3072);
}

TEST_CASE("UpdateGate: a zero gate leaves parameters and optimiser state untouched") {
  kiln::Parameter w(random_tensor({6}, 8)), w_ref(w.value());
  const kiln::Tensor<float> x = random_tensor({6}, 9);
  kiln::SGD opt({&w}, {0.1f, 0.9f});
  kiln::SGD opt_ref({&w_ref}, {0.1f, 0.9f});
  kiln::Tensor<float> gate_value(kiln::Shape{});
  auto step = kiln::compile([&](auto xs, auto gate) {
    auto loss = kiln::sum(w * w * xs, 0);
    kiln::UpdateGate g(kiln::gt(gate, 0.f));
    opt.step(kiln::grad(loss, w));
    return loss;
  });
  auto step_ref = kiln::compile([&](auto xs) {
    auto loss = kiln::sum(w_ref * w_ref * xs, 0);
    opt_ref.step(kiln::grad(loss, w_ref));
    return loss;
  });
  const std::vector<float> before(w.data(), w.data() + 6);
  gate_value[0] = 0.f;
  step(x, gate_value);
  CHECK(std::vector<float>(w.data(), w.data() + 6) == before);
  CHECK(opt.steps() == 0.f);  // the step counter is state too
  for (int k = 0; k < 3; ++k) {
    gate_value[0] = 1.f;
    step(x, gate_value);
    step_ref(x);
    gate_value[0] = 0.f;
    step(x, gate_value);  // skipped: the two runs stay in lockstep
  }
  for (int i = 0; i < 6; ++i) CHECK(w[i] == w_ref[i]);
}

TEST_CASE("GradScaler: small FP16 gradients survive scaling, overflow skips the step and backs off") {
  kiln::Parameter w(kiln::Shape{4});
  for (int i = 0; i < 4; ++i) w[i] = 1.f;
  kiln::Tensor<float> x({4});
  auto make_step = [&](kiln::GradScaler& scaler, kiln::SGD& opt) {
    return kiln::compile([&](auto xs) {
      auto loss = kiln::sum(w * xs, 0);
      auto [grads, finite] = scaler.grad(loss, w);
      {
        kiln::UpdateGate gate(finite);
        opt.step(grads);
      }
      return std::make_tuple(std::get<0>(grads), finite);
    });
  };
  // Gradients of 1e-8: below FP16's least subnormal (6e-8) they round to 0 unscaled.
  for (int i = 0; i < 4; ++i) x[i] = 1e-8f * static_cast<float>(i + 1);
  {
    kiln::GradScaler unscaled({1.f, 2.f, 0.5f, 2000, kiln::GradStorage::f16});
    kiln::SGD opt({&w}, {0.f});
    auto step = make_step(unscaled, opt);
    const auto [g, finite] = step(x);
    CHECK(finite[0]);
    CHECK(g[0] == 0.f);  // 1e-8 underflows in FP16
  }
  {
    kiln::GradScaler scaler;  // 65536
    kiln::SGD opt({&w}, {0.f});
    auto step = make_step(scaler, opt);
    const auto [g, finite] = step(x);
    CHECK(finite[0]);
    for (int i = 0; i < 4; ++i) CHECK(g[i] == doctest::Approx(x[i]).epsilon(1e-3));  // 11 significant bits
  }
  // Gradients of 10: 10 x scale overflows FP16 (> 65504) until the scale is 4096, so the first
  // four steps are skipped with the scale halving each time; three good steps (growth_interval)
  // grow it to 8192, which overflows once more and backs off to 4096.
  for (int i = 0; i < 4; ++i) x[i] = 10.f;
  kiln::GradScaler scaler({65536.f, 2.f, 0.5f, 3, kiln::GradStorage::f16});
  kiln::SGD opt({&w}, {0.5f});
  auto step = make_step(scaler, opt);
  std::string pattern;
  for (int k = 0; k < 10; ++k) {
    const float before = w[0];
    const auto [g, finite] = step(x);
    const bool applied = scaler.update(finite[0] ? 1.f : 0.f);
    pattern += applied ? 'A' : 'S';
    if (applied) CHECK(w[0] == doctest::Approx(before - 5.f));
    else CHECK(w[0] == before);  // no update from a non-finite step
  }
  CHECK(pattern == "SSSSAAASAA");
  CHECK(scaler.skipped_steps() == 5);
  CHECK(scaler.scale() == 4096.f);
}
