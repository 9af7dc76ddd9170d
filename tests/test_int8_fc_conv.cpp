// int8 fully_connected and conv2d, bit-exact against naive int64 loops (tests/int8_reference.hpp).
// Built twice (test_int8_fc_conv with the SIMD dot path, _scalar with KILN_NO_SIMD): both
// must equal the same reference, hence each other.
#include <doctest/doctest.h>

#include <kiln/kernels/int8/conv2d.hpp>
#include <kiln/kernels/int8/dot.hpp>
#include <kiln/kernels/int8/fully_connected.hpp>

#include <cstdint>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "int8_reference.hpp"

using kiln::index_t;
using kiln::Shape;
using namespace kiln::kernels::int8;
namespace ref = int8ref;

namespace {

constexpr std::int8_t kCanary = 0x5A;

// Output buffer with canaries after the last element (catches writes past the end).
struct Out {
  std::vector<std::int8_t> v;
  index_t n;
  explicit Out(index_t count) : v(static_cast<std::size_t>(count + 32), kCanary), n(count) {}
  std::int8_t* data() { return v.data(); }
  bool canaries_intact() const {
    for (std::size_t i = static_cast<std::size_t>(n); i < v.size(); ++i)
      if (v[i] != kCanary) return false;
    return true;
  }
};

struct Quant {
  std::vector<std::int32_t> m, s;
  std::int32_t in_off, out_off, lo, hi;
  bool per_channel;
  OutputStage stage() const {
    OutputStage o;
    o.multiplier = m.data();
    o.shift = s.data();
    o.per_channel = per_channel;
    o.output_offset = out_off;
    o.act_min = lo;
    o.act_max = hi;
    return o;
  }
};

// Multipliers that map an accumulator of typical magnitude `acc_scale` to ~[-128, 127].
Quant random_quant(ref::Rng& rng, index_t channels, bool per_channel, int shift_lo, int shift_hi) {
  Quant q;
  rng.multipliers(static_cast<std::size_t>(per_channel ? channels : 1), shift_lo, shift_hi, q.m, q.s);
  q.in_off = -rng.uniform(-128, 127);
  q.out_off = rng.uniform(-128, 127);
  q.per_channel = per_channel;
  switch (rng.uniform(0, 2)) {
    case 0: q.lo = -128; q.hi = 127; break;                      // none
    case 1: q.lo = q.out_off; q.hi = 127; break;                 // relu
    default: q.lo = q.out_off; q.hi = q.out_off + 60 > 127 ? 127 : q.out_off + 60;  // relu6-like
  }
  return q;
}

std::int8_t ref_requant(const Quant& q, std::int64_t acc, index_t c) {
  const std::size_t k = q.per_channel ? static_cast<std::size_t>(c) : 0;
  return ref::requant(acc, q.m[k], q.s[k], q.out_off, q.lo, q.hi);
}

}  // namespace

TEST_CASE("int8 dot: the SIMD path equals the scalar pair loop for every length and extreme values") {
  ref::Rng rng(5);
  for (index_t n = 0; n <= 200; ++n) {
    for (int mode = 0; mode < 3; ++mode) {
      std::vector<std::int8_t> x, w;
      if (mode == 0) { x = rng.int8s(static_cast<std::size_t>(n)); w = rng.int8s(static_cast<std::size_t>(n)); }
      if (mode == 1) { x.assign(static_cast<std::size_t>(n), -128); w.assign(static_cast<std::size_t>(n), -128); }
      if (mode == 2) { x.assign(static_cast<std::size_t>(n), 127); w.assign(static_cast<std::size_t>(n), -128); }
      for (std::int32_t off : {-127, 0, 1, 128}) {
        std::int64_t want = 0;
        for (index_t i = 0; i < n; ++i) want += (std::int64_t{x[static_cast<std::size_t>(i)]} + off) * w[static_cast<std::size_t>(i)];
        // Unaligned start: the kernels read spans at any offset.
        std::vector<std::int8_t> xs(x.size() + 1), ws(w.size() + 3);
        if (n) {
          std::memcpy(xs.data() + 1, x.data(), x.size());
          std::memcpy(ws.data() + 3, w.data(), w.size());
        }
        REQUIRE(dot_with_offset(xs.data() + 1, ws.data() + 3, n, off) == want);
        REQUIRE(dot_detail::dot_pairs(x.data(), w.data(), n, off, 7) == want + 7);
        // Split into two spans of one accumulator: same sum.
        DotAccumulator acc(off, -3);
        acc.add(x.data(), w.data(), n / 3);
        acc.add(x.data() + n / 3, w.data() + n / 3, n - n / 3);
        REQUIRE(acc.value() == want - 3);
      }
    }
  }
  MESSAGE("int8 dot path: " << std::string(kDotPathName));
}

TEST_CASE("int8 requantize8 (vector epilogue) equals OutputStage::apply lane by lane") {
  ref::Rng rng(8);
  const std::int32_t special_acc[] = {static_cast<std::int32_t>(ref::kMin32),
                                      static_cast<std::int32_t>(ref::kMax32), -1, 0, 1, -(1 << 20), (1 << 20) + 1,
                                      -3 * 1024, 3 * 1024, -12345678, 12345678};
  const std::int32_t special_m[] = {static_cast<std::int32_t>(ref::kMin32), static_cast<std::int32_t>(ref::kMax32),
                                    1 << 30, (1 << 30) + 1, -(1 << 30), 1234567890};
  std::uniform_int_distribution<std::int32_t> any(static_cast<std::int32_t>(ref::kMin32),
                                                  static_cast<std::int32_t>(ref::kMax32));
  for (int trial = 0; trial < 20000; ++trial) {
    std::int32_t acc[8], m[16], sh[16];
    for (int i = 0; i < 8; ++i) {
      acc[i] = trial % 3 == 0 ? special_acc[rng.uniform(0, 10)] : (trial % 3 == 1 ? any(rng.gen) : rng.uniform(-70000, 70000));
      m[i + 8] = m[i] = trial % 4 == 0 ? special_m[rng.uniform(0, 5)] : rng.uniform(1 << 30, 2147483647);
      sh[i + 8] = sh[i] = trial % 5 == 0 ? rng.uniform(-31, 31) : rng.uniform(-20, 2);
    }
    OutputStage st;
    st.multiplier = m;
    st.shift = sh;
    st.per_channel = trial % 7 != 0;
    st.output_offset = rng.uniform(-128, 127);
    st.act_min = rng.uniform(-128, 0);
    st.act_max = rng.uniform(0, 127);
    const index_t c0 = st.per_channel ? rng.uniform(0, 8) : 0;
    // Per channel, lane i reads channel c0 + i: shift the multipliers so lane i uses m[c0 + i].
    std::int8_t got[8];
    requantize8(acc, c0, st, got);
    for (int i = 0; i < 8; ++i) {
      INFO("trial " << trial << " lane " << i << " acc " << acc[i]);
      REQUIRE(got[i] == st.apply(acc[i], c0 + i));
      const std::size_t k = st.per_channel ? static_cast<std::size_t>(c0 + i) : 0;
      INFO("m " << m[k] << " shift " << sh[k] << " offset " << st.output_offset << " clamp " << st.act_min << ".." << st.act_max);
      REQUIRE(got[i] == ref::requant(acc[i], m[k], sh[k], st.output_offset, st.act_min, st.act_max));
    }
  }
}

TEST_CASE("int8 dot4: four weight rows against one input equal four single dots") {
  ref::Rng rng(6);
  for (index_t n = 0; n <= 100; ++n)
    for (std::int32_t off : {-127, 5, 128}) {
      const index_t stride = n + rng.uniform(0, 5);
      const auto x = rng.int8s(static_cast<std::size_t>(n) + 1);
      const auto w = rng.int8s(static_cast<std::size_t>(4 * stride + 1));
      std::int32_t acc[4] = {1, -2, 3, -4};
      dot4_with_offset(x.data(), w.data(), stride, n, off, acc);
      for (int r = 0; r < 4; ++r) {
        std::int64_t want = (r % 2 ? -1 : 1) * (r + 1);
        for (index_t i = 0; i < n; ++i)
          want += (std::int64_t{x[static_cast<std::size_t>(i)]} + off) * w[static_cast<std::size_t>(r * stride + i)];
        REQUIRE(acc[r] == want);
      }
    }
}

TEST_CASE("int8 fully_connected: bit-exact vs reference, per-channel and per-tensor, odd sizes") {
  ref::Rng rng(2024);
  int cases = 0;
  for (index_t n_in : {1, 3, 7, 17, 33, 64, 100, 640})
    for (index_t n_out : {1, 3, 7, 17, 128})
      for (index_t batches : {1, 3})
        for (bool per_channel : {true, false})
          for (bool with_bias : {true, false}) {
            const auto x = rng.int8s(static_cast<std::size_t>(batches * n_in));
            const auto w = rng.int8s(static_cast<std::size_t>(n_out * n_in));
            const auto bias = rng.int32s(static_cast<std::size_t>(n_out), -20000, 20000);
            // |acc| ~ 128 * 128 * sqrt(n_in): scale by ~2^-(8 + log2(n_in)/2) to spread outputs.
            int lg = 0;
            while ((index_t{1} << lg) < n_in) ++lg;
            const Quant q = random_quant(rng, n_out, per_channel, -(7 + lg / 2) - 2, -(7 + lg / 2));
            FullyConnectedParams p;
            p.input_offset = q.in_off;
            p.output = q.stage();
            Out y(batches * n_out);
            const kiln::Status st =
                fully_connected(p, Shape{batches, n_in}, x.data(), Shape{n_out, n_in}, w.data(),
                                with_bias ? bias.data() : nullptr, Shape{batches, n_out}, y.data());
            REQUIRE_MESSAGE(st.ok(), st.message());
            REQUIRE(y.canaries_intact());
            for (index_t b = 0; b < batches; ++b)
              for (index_t o = 0; o < n_out; ++o) {
                std::int64_t acc = with_bias ? bias[static_cast<std::size_t>(o)] : 0;
                for (index_t i = 0; i < n_in; ++i)
                  acc += (std::int64_t{x[static_cast<std::size_t>(b * n_in + i)]} + q.in_off) *
                         w[static_cast<std::size_t>(o * n_in + i)];
                INFO("in " << n_in << " out " << n_out << " batch " << b << " o " << o);
                REQUIRE(y.v[static_cast<std::size_t>(b * n_out + o)] == ref_requant(q, acc, o));
              }
            ++cases;
          }
  CHECK(cases == 8 * 5 * 2 * 2 * 2);
}

TEST_CASE("int8 fully_connected: outputs are spread, not saturated (the comparison is not vacuous)") {
  ref::Rng rng(11);
  const index_t n_in = 64, n_out = 64;
  const auto x = rng.int8s(n_in), w = rng.int8s(n_in * n_out);
  std::vector<std::int32_t> m(1, 1 << 30), s(1, -10);  // 2^-11: |acc| ~ 1.3e5 -> ~64
  FullyConnectedParams p;
  p.input_offset = 0;
  p.output.multiplier = m.data();
  p.output.shift = s.data();
  p.output.per_channel = false;
  std::vector<std::int8_t> y(n_out);
  REQUIRE(fully_connected(p, Shape{1, n_in}, x.data(), Shape{n_out, n_in}, w.data(), nullptr,
                          Shape{1, n_out}, y.data()).ok());
  std::set<int> distinct(y.begin(), y.end());
  CHECK(distinct.size() > 20);
}

TEST_CASE("int8 fully_connected: errors name the op and the shapes") {
  std::int8_t buf[64] = {};
  std::int32_t m = 1 << 30, s = 0;
  FullyConnectedParams p;
  p.output.multiplier = &m;
  p.output.shift = &s;
  p.output.per_channel = false;
  kiln::Status st = fully_connected(p, Shape{2, 5}, buf, Shape{3, 4}, buf, nullptr, Shape{2, 3}, buf);
  CHECK(st.code() == kiln::Errc::shape_mismatch);
  CHECK(std::string(st.message()).find("fully_connected") != std::string::npos);
  CHECK(std::string(st.message()).find("[3, 4]") != std::string::npos);
  st = fully_connected(p, Shape{2, 4}, buf, Shape{3, 4}, buf, nullptr, Shape{2, 4}, buf);
  CHECK(st.code() == kiln::Errc::shape_mismatch);
  p.input_offset = 300;
  st = fully_connected(p, Shape{2, 4}, buf, Shape{3, 4}, buf, nullptr, Shape{2, 3}, buf);
  CHECK(st.code() == kiln::Errc::invalid_argument);
  p.input_offset = 0;
  s = 40;
  st = fully_connected(p, Shape{2, 4}, buf, Shape{3, 4}, buf, nullptr, Shape{2, 3}, buf);
  CHECK(st.code() == kiln::Errc::invalid_argument);
  CHECK(std::string(st.message()).find("shift 40") != std::string::npos);
  p.output.multiplier = nullptr;
  CHECK(fully_connected(p, Shape{2, 4}, buf, Shape{3, 4}, buf, nullptr, Shape{2, 3}, buf).code() ==
        kiln::Errc::invalid_argument);
}

namespace {

struct ConvCase {
  index_t batches, in_h, in_w, in_c, out_c, kh, kw;
  Window2D win;
};

// Reference convolution: every tap bounds-checked, int64 accumulation.
std::vector<std::int8_t> ref_conv(const ConvCase& cc, index_t out_h, index_t out_w,
                                  const std::vector<std::int8_t>& x, const std::vector<std::int8_t>& f,
                                  const std::int32_t* bias, const Quant& q) {
  std::vector<std::int8_t> y(static_cast<std::size_t>(cc.batches * out_h * out_w * cc.out_c));
  std::size_t idx = 0;
  for (index_t b = 0; b < cc.batches; ++b)
    for (index_t oy = 0; oy < out_h; ++oy)
      for (index_t ox = 0; ox < out_w; ++ox)
        for (index_t oc = 0; oc < cc.out_c; ++oc) {
          std::int64_t acc = bias ? bias[oc] : 0;
          for (index_t ky = 0; ky < cc.kh; ++ky)
            for (index_t kx = 0; kx < cc.kw; ++kx) {
              const index_t iy = oy * cc.win.stride_h - cc.win.pad_top + ky * cc.win.dilation_h;
              const index_t ix = ox * cc.win.stride_w - cc.win.pad_left + kx * cc.win.dilation_w;
              if (iy < 0 || iy >= cc.in_h || ix < 0 || ix >= cc.in_w) continue;
              for (index_t ic = 0; ic < cc.in_c; ++ic)
                acc += (std::int64_t{x[static_cast<std::size_t>(((b * cc.in_h + iy) * cc.in_w + ix) * cc.in_c + ic)]} + q.in_off) *
                       f[static_cast<std::size_t>(((oc * cc.kh + ky) * cc.kw + kx) * cc.in_c + ic)];
            }
          y[idx++] = ref_requant(q, acc, oc);
        }
  return y;
}

}  // namespace

TEST_CASE("int8 conv2d: bit-exact vs reference over channels, strides, padding, dilation, batch") {
  ref::Rng rng(31337);
  int cases = 0, nonconstant = 0;
  for (index_t in_c : {1, 3, 7, 17, 40})
    for (index_t out_c : {1, 3, 7, 17})
      for (index_t stride : {1, 2})
        for (index_t dil : {1, 2})
          for (int pad_mode = 0; pad_mode < 3; ++pad_mode) {
            ConvCase cc{};
            cc.batches = (in_c + out_c) % 2 ? 2 : 1;
            cc.in_h = 7 + rng.uniform(0, 3);
            cc.in_w = 6 + rng.uniform(0, 4);
            cc.in_c = in_c;
            cc.out_c = out_c;
            cc.kh = rng.uniform(1, 3);
            cc.kw = rng.uniform(1, 3);
            if (pad_mode == 0) {  // valid
              cc.win = Window2D{stride, stride, dil, dil, 0, 0, 0, 0};
            } else if (pad_mode == 1) {  // TFLite SAME
              cc.win = same_window(cc.in_h, cc.in_w, cc.kh, cc.kw, stride, stride, dil, dil);
            } else {  // explicit, asymmetric
              cc.win = Window2D{stride, stride, dil, dil, 2, 1, 0, 2};
            }
            const index_t out_h = window_output_size(cc.in_h, cc.kh, stride, dil, cc.win.pad_top, cc.win.pad_bottom);
            const index_t out_w = window_output_size(cc.in_w, cc.kw, stride, dil, cc.win.pad_left, cc.win.pad_right);
            REQUIRE(out_h > 0);
            REQUIRE(out_w > 0);
            const auto x = rng.int8s(static_cast<std::size_t>(cc.batches * cc.in_h * cc.in_w * in_c));
            const auto f = rng.int8s(static_cast<std::size_t>(out_c * cc.kh * cc.kw * in_c));
            const auto bias = rng.int32s(static_cast<std::size_t>(out_c), -30000, 30000);
            int lg = 0;
            while ((index_t{1} << lg) < cc.kh * cc.kw * in_c) ++lg;
            const bool per_channel = (cases % 5) != 4;
            const Quant q = random_quant(rng, out_c, per_channel, -(7 + lg / 2) - 2, -(7 + lg / 2));
            const bool with_bias = cases % 7 != 3;
            Conv2DParams p;
            p.window = cc.win;
            p.input_offset = q.in_off;
            p.output = q.stage();
            const Shape out_shape{cc.batches, out_h, out_w, out_c};
            Out y(out_shape.numel());
            const kiln::Status st = conv2d(p, Shape{cc.batches, cc.in_h, cc.in_w, in_c}, x.data(),
                                           Shape{out_c, cc.kh, cc.kw, in_c}, f.data(),
                                           with_bias ? bias.data() : nullptr, out_shape, y.data());
            REQUIRE_MESSAGE(st.ok(), st.message());
            REQUIRE(y.canaries_intact());
            const auto want = ref_conv(cc, out_h, out_w, x, f, with_bias ? bias.data() : nullptr, q);
            INFO("in_c " << in_c << " out_c " << out_c << " stride " << stride << " dil " << dil
                         << " pad " << pad_mode << " k " << cc.kh << "x" << cc.kw << " in "
                         << cc.in_h << "x" << cc.in_w);
            for (std::size_t i = 0; i < want.size(); ++i) REQUIRE(y.v[i] == want[i]);
            nonconstant += std::set<int>(want.begin(), want.end()).size() > 2;
            ++cases;
          }
  CHECK(cases == 5 * 4 * 2 * 2 * 3);
  CHECK(nonconstant * 10 > cases * 8);  // most cases produce varied outputs
}

TEST_CASE("int8 conv2d: windows too large for the stack patch take the span path, same bits") {
  ref::Rng rng(99);
  // 3x3 x 250 = 2250 bytes > KILN_INT8_CONV_PATCH_BYTES (2048); and a 1x1 conv used in place.
  const ConvCase cases[] = {
      {1, 6, 5, 250, 7, 3, 3, Window2D{1, 1, 1, 1, 1, 1, 1, 1}},
      {2, 7, 7, 230, 5, 3, 3, Window2D{2, 2, 2, 2, 2, 1, 0, 2}},
      {2, 5, 6, 19, 9, 1, 1, Window2D{1, 1, 1, 1, 0, 0, 0, 0}},
      {1, 5, 6, 19, 9, 1, 3, Window2D{2, 1, 1, 1, 0, 0, 1, 1}},
  };
  for (const ConvCase& cc : cases) {
    const index_t out_h = window_output_size(cc.in_h, cc.kh, cc.win.stride_h, cc.win.dilation_h, cc.win.pad_top, cc.win.pad_bottom);
    const index_t out_w = window_output_size(cc.in_w, cc.kw, cc.win.stride_w, cc.win.dilation_w, cc.win.pad_left, cc.win.pad_right);
    const auto x = rng.int8s(static_cast<std::size_t>(cc.batches * cc.in_h * cc.in_w * cc.in_c));
    const auto f = rng.int8s(static_cast<std::size_t>(cc.out_c * cc.kh * cc.kw * cc.in_c));
    const auto bias = rng.int32s(static_cast<std::size_t>(cc.out_c), -30000, 30000);
    const Quant q = random_quant(rng, cc.out_c, true, -14, -11);
    Conv2DParams p;
    p.window = cc.win;
    p.input_offset = q.in_off;
    p.output = q.stage();
    const Shape out_shape{cc.batches, out_h, out_w, cc.out_c};
    Out y(out_shape.numel());
    const kiln::Status st = conv2d(p, Shape{cc.batches, cc.in_h, cc.in_w, cc.in_c}, x.data(),
                                   Shape{cc.out_c, cc.kh, cc.kw, cc.in_c}, f.data(), bias.data(), out_shape, y.data());
    REQUIRE_MESSAGE(st.ok(), st.message());
    REQUIRE(y.canaries_intact());
    const auto want = ref_conv(cc, out_h, out_w, x, f, bias.data(), q);
    for (std::size_t i = 0; i < want.size(); ++i) REQUIRE(y.v[i] == want[i]);
    CHECK(std::set<int>(want.begin(), want.end()).size() > 5);
  }
}

TEST_CASE("int8 conv2d: a 10x4 first layer like KWS (1 input channel, stride 2, SAME)") {
  ref::Rng rng(7);
  ConvCase cc{1, 49, 10, 1, 64, 10, 4, same_window(49, 10, 10, 4, 2, 2)};
  const index_t out_h = window_output_size(49, 10, 2, 1, cc.win.pad_top, cc.win.pad_bottom);
  const index_t out_w = window_output_size(10, 4, 2, 1, cc.win.pad_left, cc.win.pad_right);
  CHECK(out_h == 25);
  CHECK(out_w == 5);
  const auto x = rng.int8s(49 * 10), f = rng.int8s(64 * 40);
  const auto bias = rng.int32s(64, -5000, 5000);
  const Quant q = random_quant(rng, 64, true, -11, -9);
  Conv2DParams p;
  p.window = cc.win;
  p.input_offset = q.in_off;
  p.output = q.stage();
  std::vector<std::int8_t> y(static_cast<std::size_t>(out_h * out_w * 64));
  REQUIRE(conv2d(p, Shape{1, 49, 10, 1}, x.data(), Shape{64, 10, 4, 1}, f.data(), bias.data(),
                 Shape{1, out_h, out_w, 64}, y.data()).ok());
  CHECK(y == ref_conv(cc, out_h, out_w, x, f, bias.data(), q));
}

TEST_CASE("int8 conv2d: errors name the op and the shapes") {
  std::int8_t buf[256] = {};
  std::int32_t m[4] = {1 << 30, 1 << 30, 1 << 30, 1 << 30}, s[4] = {};
  Conv2DParams p;
  p.output.multiplier = m;
  p.output.shift = s;
  // Output spatial size inconsistent with the window.
  kiln::Status st = conv2d(p, Shape{1, 5, 5, 2}, buf, Shape{4, 3, 3, 2}, buf, nullptr, Shape{1, 5, 5, 4}, buf);
  CHECK(st.code() == kiln::Errc::shape_mismatch);
  const std::string msg = st.message();
  CHECK(msg.find("conv2d") != std::string::npos);
  CHECK(msg.find("[1, 5, 5, 2]") != std::string::npos);
  CHECK(msg.find("3x3") != std::string::npos);
  // Filter channels disagree with the input.
  st = conv2d(p, Shape{1, 5, 5, 2}, buf, Shape{4, 3, 3, 3}, buf, nullptr, Shape{1, 3, 3, 4}, buf);
  CHECK(st.code() == kiln::Errc::shape_mismatch);
  CHECK(std::string(st.message()).find("[4, 3, 3, 3]") != std::string::npos);
  p.window.stride_h = 0;
  st = conv2d(p, Shape{1, 5, 5, 2}, buf, Shape{4, 3, 3, 2}, buf, nullptr, Shape{1, 3, 3, 4}, buf);
  CHECK(st.code() == kiln::Errc::invalid_argument);
  p.window.stride_h = 1;
  CHECK(conv2d(p, Shape{1, 5, 5, 2}, buf, Shape{4, 3, 3, 2}, buf, nullptr, Shape{1, 3, 3, 4}, buf).ok());
  CHECK(conv2d(p, Shape{5, 5, 2}, buf, Shape{4, 3, 3, 2}, buf, nullptr, Shape{3, 3, 4}, buf).code() ==
        kiln::Errc::shape_mismatch);
}
