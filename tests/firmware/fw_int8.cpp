// kiln's int8 kernels (TFLite arithmetic) on a Cortex-M4F: the scalar path the DSP extension
// accelerates (SXTAB16/SMLAD, __ARM_FEATURE_DSP is defined for -mcpu=cortex-m4), compared byte for
// byte with the independent reference the host tests use (tests/int8_reference.hpp: int64
// arithmetic from the definitions). No heap, no exceptions; exit status = failures.
#define KILN_NO_HEAP
#define KILN_NO_IOSTREAM
#include <kiln/kernels/int8.hpp>

#include "../int8_reference.hpp"
#include "support/check.hpp"

namespace {

namespace i8 = kiln::kernels::int8;
using kiln::index_t;
using kiln::Shape;

std::uint32_t g_seed = 12345;
int next(int lo, int hi) {  // uniform-enough in [lo, hi]
  g_seed = g_seed * 1664525u + 1013904223u;
  return lo + static_cast<int>((g_seed >> 8) % static_cast<std::uint32_t>(hi - lo + 1));
}
void fill(std::int8_t* x, index_t n, int lo = -128, int hi = 127) {
  for (index_t i = 0; i < n; ++i) x[i] = static_cast<std::int8_t>(next(lo, hi));
}
void fill(std::int32_t* x, index_t n, int lo, int hi) {
  for (index_t i = 0; i < n; ++i) x[i] = next(lo, hi);
}
void multipliers(std::int32_t* m, std::int32_t* s, index_t n, int shift_lo = -9, int shift_hi = -6) {
  for (index_t i = 0; i < n; ++i) {
    m[i] = (1 << 30) + next(0, (1 << 30) - 1);
    s[i] = next(shift_lo, shift_hi);
  }
}
bool same(const std::int8_t* a, const std::int8_t* b, index_t n, const char* what) {
  for (index_t i = 0; i < n; ++i)
    if (a[i] != b[i]) {
      fw::print(what, ": byte ", static_cast<long>(i), " is ", static_cast<long>(a[i]), ", reference ",
                static_cast<long>(b[i]));
      return false;
    }
  return true;
}

void test_fully_connected() {
  // [3, 37] x [13, 37]^T, per-channel multipliers, bias, relu (output zero point -5).
  constexpr index_t B = 3, I = 37, O = 13;
  static std::int8_t x[B * I], w[O * I], y[B * O], ref[B * O];
  static std::int32_t bias[O], m[O], s[O];
  fill(x, B * I);
  fill(w, O * I, -127, 127);
  fill(bias, O, -3000, 3000);
  multipliers(m, s, O);
  i8::FullyConnectedParams p;
  p.input_offset = 7;
  p.output = i8::OutputStage{m, s, true, -5, -5, 127};
  fw_mark();  // instruction-count window: one int8 fully_connected (DSP path)
  const kiln::Status st = i8::fully_connected(p, Shape{B, I}, x, Shape{O, I}, w, bias, Shape{B, O}, y);
  fw_mark();
  FW_CHECK(st.ok());
  for (index_t b = 0; b < B; ++b)
    for (index_t o = 0; o < O; ++o) {
      int8ref::i64 acc = bias[o];
      for (index_t i = 0; i < I; ++i) acc += (int8ref::i64{x[b * I + i]} + 7) * w[o * I + i];
      ref[b * O + o] = int8ref::requant(acc, m[o], s[o], -5, -5, 127);
    }
  FW_CHECK(same(y, ref, B * O, "fully_connected"));
}

// Conv2D [1, H, W, C] * OHWI [O, K, K, C], stride and padding on every side: the DSP path's
// shapes (conv2d_pairs.hpp): odd pixel and channel counts (a lone last pixel/channel), windows
// that are a multiple of 4 bytes or not, 1x1 windows read in place, shifts of both signs.
struct ConvCase {
  index_t H, W, C, O, K, stride, pad;
  std::int32_t input_offset;
  int shift_lo, shift_hi;
};
void test_conv2d(const ConvCase& k) {
  constexpr index_t kMax = 9 * 9 * 12;
  static std::int8_t x[kMax], f[kMax], y[kMax], ref[kMax];
  static std::int32_t bias[16], m[16], s[16];
  const index_t H = k.H, W = k.W, C = k.C, O = k.O, K = k.K;
  const index_t OH = (H + 2 * k.pad - K) / k.stride + 1, OW = (W + 2 * k.pad - K) / k.stride + 1;
  fill(x, H * W * C);
  fill(f, O * K * K * C, -127, 127);
  fill(bias, O, -2000, 2000);
  multipliers(m, s, O, k.shift_lo, k.shift_hi);
  i8::Conv2DParams p;
  p.window.stride_h = p.window.stride_w = k.stride;
  p.window.pad_top = p.window.pad_bottom = p.window.pad_left = p.window.pad_right = k.pad;
  p.input_offset = k.input_offset;
  p.output = i8::OutputStage{m, s, true, 4, -128, 127};
  FW_CHECK(i8::conv2d(p, Shape{1, H, W, C}, x, Shape{O, K, K, C}, f, bias, Shape{1, OH, OW, O}, y).ok());
  for (index_t oy = 0; oy < OH; ++oy)
    for (index_t ox = 0; ox < OW; ++ox)
      for (index_t o = 0; o < O; ++o) {
        int8ref::i64 acc = bias[o];
        for (index_t ky = 0; ky < K; ++ky)
          for (index_t kx = 0; kx < K; ++kx) {
            const index_t iy = oy * k.stride - k.pad + ky, ix = ox * k.stride - k.pad + kx;
            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;  // padding adds nothing
            for (index_t c = 0; c < C; ++c)
              acc += (int8ref::i64{x[(iy * W + ix) * C + c]} + k.input_offset) * f[((o * K + ky) * K + kx) * C + c];
          }
        ref[(oy * OW + ox) * O + o] = int8ref::requant(acc, m[o], s[o], 4, -128, 127);
      }
  FW_CHECK(same(y, ref, OH * OW * O, "conv2d"));
}

// Depthwise [1, H, W, C], filter [1, K, K, C * DM], stride 1, padding 1 ("same"): depth multiplier
// 2 (the scalar block) and 1 (the DSP path: 4 channels a word, a tail of C % 4 channels).
void test_depthwise(index_t H, index_t W, index_t C, index_t DM, int shift_lo, int shift_hi) {
  constexpr index_t K = 3, kMax = 8 * 8 * 12;
  static std::int8_t x[kMax], f[K * K * 16], y[kMax], ref[kMax];
  static std::int32_t bias[16], m[16], s[16];
  const index_t OC = C * DM;
  fill(x, H * W * C);
  fill(f, K * K * OC, -127, 127);
  fill(bias, OC, -500, 500);
  multipliers(m, s, OC, shift_lo, shift_hi);
  i8::DepthwiseConv2DParams p;
  p.window.pad_top = p.window.pad_bottom = p.window.pad_left = p.window.pad_right = 1;
  p.depth_multiplier = DM;
  p.input_offset = 128;
  p.output = i8::OutputStage{m, s, true, -128, -128, 127};
  FW_CHECK(i8::depthwise_conv2d(p, Shape{1, H, W, C}, x, Shape{1, K, K, OC}, f, bias, Shape{1, H, W, OC}, y).ok());
  for (index_t oy = 0; oy < H; ++oy)
    for (index_t ox = 0; ox < W; ++ox)
      for (index_t oc = 0; oc < OC; ++oc) {
        int8ref::i64 acc = bias[oc];
        for (index_t ky = 0; ky < K; ++ky)
          for (index_t kx = 0; kx < K; ++kx) {
            const index_t iy = oy - 1 + ky, ix = ox - 1 + kx;
            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
            acc += (int8ref::i64{x[(iy * W + ix) * C + oc / DM]} + 128) * f[(ky * K + kx) * OC + oc];
          }
        ref[(oy * W + ox) * OC + oc] = int8ref::requant(acc, m[oc], s[oc], -128, -128, 127);
      }
  FW_CHECK(same(y, ref, H * W * OC, "depthwise_conv2d"));
}

}  // namespace

int main() {
  test_fully_connected();
  // Shifts all <= -2 take requant.hpp's per-channel one-SMLAL form, others OutputStage::apply.
  test_conv2d({9, 7, 5, 6, 3, 2, 1, -3, -9, -6});    // 20 pixels, 45-byte windows (tail 1)
  test_conv2d({5, 5, 8, 7, 1, 1, 0, 128, -12, 1});  // 1x1 in place, 25 pixels, 7 channels
  test_conv2d({6, 5, 12, 4, 3, 1, 1, -20, -31, -2}); // 108-byte windows, 30 pixels, one-SMLAL requant
  test_conv2d({9, 4, 1, 5, 3, 2, 1, 17, -3, 3});    // 1 input channel, 9-byte windows, left shifts
  test_depthwise(8, 8, 4, 2, -9, -6);               // depth multiplier 2: the scalar block
  test_depthwise(7, 5, 12, 1, -12, 1);              // 3 words of channels, borders and interior
  test_depthwise(6, 6, 10, 1, -31, -2);             // 2 words + a tail of 2 channels, one-SMLAL requant
#if defined(__ARM_FEATURE_DSP)
  const char* path = "DSP (SMLAD)";
#else
  const char* path = "plain scalar";
#endif
  fw::print("fw_int8 (", path, "): ", static_cast<long>(fw::g_checks), " checks, ",
            static_cast<long>(fw::g_failures), " failed");
  return fw::g_failures;
}
