// Shared by fw_static_*.cpp (include kiln first): deterministic non-zero weights computed by the compiler, a naive
// dense layer and softmax as the reference, the image's .text size (support/mps2_an386.ld), and
// the 64-32-10 classifier.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>

extern "C" const char __text_start[], __text_end[];

namespace fwm {

/// Weights in offset +- scale from a 32-bit LCG, computed in a constant expression (flash).
template <std::size_t N>
constexpr std::array<float, N> weights(std::uint32_t seed, float scale) {
  std::array<float, N> w{};
  std::uint32_t s = seed * 2654435761u + 12345u;
  for (std::size_t i = 0; i < N; ++i) {
    s = s * 1664525u + 1013904223u;
    w[i] = scale * (static_cast<float>(s >> 8) / 8388608.f - 1.f);
  }
  return w;
}

/// y[o] = b[o] + sum_i w[o][i] x[i], optionally relu (a linear layer, weight [out, in]).
inline void dense(const float* x, const float* w, const float* b, int in, int out, bool relu, float* y) {
  for (int o = 0; o < out; ++o) {
    float acc = b ? b[o] : 0.f;
    for (int i = 0; i < in; ++i) acc += w[o * in + i] * x[i];
    y[o] = relu && acc < 0.f ? 0.f : acc;
  }
}
inline void softmax(float* y, int n) {
  float m = y[0], s = 0.f;
  for (int i = 1; i < n; ++i) m = y[i] > m ? y[i] : m;
  for (int i = 0; i < n; ++i) s += (y[i] = std::exp(y[i] - m));
  for (int i = 0; i < n; ++i) y[i] /= s;
}
inline long text_bytes() { return static_cast<long>(__text_end - __text_start); }

// The digits classifier's float shape: 64 pixels -> 32 -> 10 classes, with non-zero weights.
inline constexpr auto kW1 = weights<32 * 64>(1, 0.2f);
inline constexpr auto kB1 = weights<32>(2, 0.1f);
inline constexpr auto kW2 = weights<10 * 32>(3, 0.3f);
inline constexpr auto kB2 = weights<10>(4, 0.1f);
inline constexpr kiln::TensorView<const float> W1(kW1.data(), {32, 64}), B1(kB1.data(), {32}),
    W2(kW2.data(), {10, 32}), B2(kB2.data(), {10});
inline constexpr auto classifier = [](auto x) {
  return kiln::softmax(kiln::linear(kiln::relu(kiln::linear(x, W1, B1)), W2, B2), -1);
};

}  // namespace fwm
