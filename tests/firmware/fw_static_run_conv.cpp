// fw_static_run.cpp's classifier with a conv front (8x8x1 image -> 3x3 conv, 4 channels, same
// padding, + bias + relu -> 2x2 max pool -> flatten -> linear 64 -> 10 -> softmax), run by the
// static runner on a Cortex-M4F and checked against naive loops. Its .text, beside
// fw_static_run's, shows what the conv and pooling kernels add: the runner instantiates only the
// kernels of the steps a model has.
#define KILN_NO_HEAP
#define KILN_NO_IOSTREAM
#define KILN_MAX_NODES 32
#include <kiln/kiln.hpp>

#include "fw_static_model.hpp"
#include "support/check.hpp"

namespace {

constexpr auto kC = fwm::weights<4 * 3 * 3 * 1>(5, 0.5f);  // OHWI [4, 3, 3, 1]
constexpr auto kCb = fwm::weights<4>(6, 0.1f);
constexpr auto kW = fwm::weights<10 * 64>(7, 0.3f);
constexpr auto kB = fwm::weights<10>(8, 0.1f);
constexpr kiln::TensorView<const float> C(kC.data(), {4, 3, 3, 1}), Cb(kCb.data(), {4}), W(kW.data(), {10, 64}),
    B(kB.data(), {10});

constexpr auto cnn = [](auto x) {
  auto h = kiln::relu(kiln::conv2d(x, C, Cb, kiln::Conv2dOptions().with_padding(kiln::Padding2d::same())));
  h = kiln::max_pool2d(h, kiln::Pool2dOptions().with_stride(2));  // [1, 4, 4, 4]
  return kiln::softmax(kiln::linear(kiln::reshape(h, {1, 64}), W, B), -1);
};
constexpr kiln::StaticPlan kPlan = kiln::plan(cnn, kiln::input<float>({1, 8, 8, 1}));
static_assert(kPlan.ok());
static_assert(kPlan.arena_bytes() == kPlan.lower_bound(), "the arena meets the liveness lower bound");

alignas(kiln::kAlignment) std::uint8_t g_arena[kPlan.arena_bytes()];

}  // namespace

int main() {
  float x[64], y[10], conv[8 * 8 * 4], pooled[64], ref[10];
  for (int i = 0; i < 64; ++i) x[i] = static_cast<float>((i * 37) % 17) / 16.f;
  fw_mark();  // instruction-count window: one inference
  kiln::run<kPlan>(g_arena, x, y);
  fw_mark();
  // Naive NHWC conv (same padding), relu, 2x2 max pool, dense, softmax.
  for (int oh = 0; oh < 8; ++oh)
    for (int ow = 0; ow < 8; ++ow)
      for (int o = 0; o < 4; ++o) {
        float acc = kCb[static_cast<std::size_t>(o)];
        for (int kh = 0; kh < 3; ++kh)
          for (int kw = 0; kw < 3; ++kw) {
            const int ih = oh + kh - 1, iw = ow + kw - 1;
            if (ih >= 0 && ih < 8 && iw >= 0 && iw < 8) acc += kC[static_cast<std::size_t>(o * 9 + kh * 3 + kw)] * x[ih * 8 + iw];
          }
        conv[(oh * 8 + ow) * 4 + o] = acc < 0.f ? 0.f : acc;
      }
  for (int ph = 0; ph < 4; ++ph)
    for (int pw = 0; pw < 4; ++pw)
      for (int c = 0; c < 4; ++c) {
        float m = conv[((2 * ph) * 8 + 2 * pw) * 4 + c];
        for (int d = 1; d < 4; ++d) {
          const float v = conv[((2 * ph + d / 2) * 8 + 2 * pw + d % 2) * 4 + c];
          m = v > m ? v : m;
        }
        pooled[(ph * 4 + pw) * 4 + c] = m;
      }
  fwm::dense(pooled, kW.data(), kB.data(), 64, 10, false, ref);
  fwm::softmax(ref, 10);
  float worst = 0.f;
  for (int k = 0; k < 10; ++k) {
    const float e = std::fabs(y[k] - ref[k]);
    worst = e > worst ? e : worst;
  }
  FW_CHECK(worst <= 1e-5f);
  FW_CHECK(ref[0] != ref[1]);
  fw::print("fw_static_run_conv: ", static_cast<long>(kPlan.kernels()), " kernels, arena ",
            static_cast<long>(sizeof(g_arena)), " B (lower bound ", static_cast<long>(kPlan.lower_bound()),
            " B), .text ", fwm::text_bytes(), " B (weights ",
            static_cast<long>(sizeof(kC) + sizeof(kCb) + sizeof(kW) + sizeof(kB)), " B); max |err| ", worst, "; ",
            static_cast<long>(fw::g_failures), " failed");
  return fw::g_failures;
}
