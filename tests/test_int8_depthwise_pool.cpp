// int8 depthwise_conv2d, max_pool2d and avg_pool2d, bit-exact against naive loops.
#include <doctest/doctest.h>

#include <kiln/kernels/int8/depthwise_conv2d.hpp>
#include <kiln/kernels/int8/pooling.hpp>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "int8_reference.hpp"

using kiln::index_t;
using kiln::Shape;
using namespace kiln::kernels::int8;
namespace ref = int8ref;

namespace {

struct Geometry {
  index_t batches, in_h, in_w, in_c, kh, kw;
  Window2D win;
  index_t out_h() const { return window_output_size(in_h, kh, win.stride_h, win.dilation_h, win.pad_top, win.pad_bottom); }
  index_t out_w() const { return window_output_size(in_w, kw, win.stride_w, win.dilation_w, win.pad_left, win.pad_right); }
};

Window2D make_window(int pad_mode, index_t in_h, index_t in_w, index_t kh, index_t kw, index_t stride,
                     index_t dil) {
  if (pad_mode == 0) return Window2D{stride, stride, dil, dil, 0, 0, 0, 0};
  if (pad_mode == 1) return same_window(in_h, in_w, kh, kw, stride, stride, dil, dil);
  return Window2D{stride, stride, dil, dil, 1, 0, 0, 1};
}

}  // namespace

TEST_CASE("int8 depthwise_conv2d: bit-exact over channels, depth multiplier, strides, padding, dilation") {
  ref::Rng rng(4242);
  int cases = 0, varied = 0;
  for (index_t in_c : {1, 3, 7, 17, 70})
    for (index_t dm : {1, 2})
      for (index_t stride : {1, 2})
        for (index_t dil : {1, 2})
          for (int pad_mode = 0; pad_mode < 3; ++pad_mode) {
            Geometry g{};
            g.batches = (in_c + dm) % 2 ? 2 : 1;
            g.in_h = 6 + rng.uniform(0, 3);
            g.in_w = 5 + rng.uniform(0, 4);
            g.in_c = in_c;
            g.kh = rng.uniform(1, 3);
            g.kw = rng.uniform(2, 3);
            g.win = make_window(pad_mode, g.in_h, g.in_w, g.kh, g.kw, stride, dil);
            const index_t out_c = in_c * dm, oh = g.out_h(), ow = g.out_w();
            REQUIRE(oh > 0);
            REQUIRE(ow > 0);
            const auto x = rng.int8s(static_cast<std::size_t>(g.batches * g.in_h * g.in_w * in_c));
            const auto f = rng.int8s(static_cast<std::size_t>(g.kh * g.kw * out_c));
            const auto bias = rng.int32s(static_cast<std::size_t>(out_c), -3000, 3000);
            std::vector<std::int32_t> m, s;
            rng.multipliers(static_cast<std::size_t>(out_c), -8, -5, m, s);
            const std::int32_t in_off = -rng.uniform(-128, 127), out_off = rng.uniform(-128, 127);
            const bool relu = cases % 3 == 1;
            const std::int32_t lo = relu ? out_off : -128, hi = 127;
            const bool with_bias = cases % 5 != 2;

            DepthwiseConv2DParams p;
            p.window = g.win;
            p.depth_multiplier = dm;
            p.input_offset = in_off;
            p.output.multiplier = m.data();
            p.output.shift = s.data();
            p.output.output_offset = out_off;
            p.output.act_min = lo;
            p.output.act_max = hi;
            const Shape out_shape{g.batches, oh, ow, out_c};
            std::vector<std::int8_t> y(static_cast<std::size_t>(out_shape.numel()) + 16, 0x33);
            const kiln::Status st = depthwise_conv2d(p, Shape{g.batches, g.in_h, g.in_w, in_c}, x.data(),
                                                     Shape{1, g.kh, g.kw, out_c}, f.data(),
                                                     with_bias ? bias.data() : nullptr, out_shape, y.data());
            REQUIRE_MESSAGE(st.ok(), st.message());
            for (std::size_t i = static_cast<std::size_t>(out_shape.numel()); i < y.size(); ++i) REQUIRE(y[i] == 0x33);

            std::set<int> seen;
            for (index_t b = 0; b < g.batches; ++b)
              for (index_t oy = 0; oy < oh; ++oy)
                for (index_t ox = 0; ox < ow; ++ox)
                  for (index_t ic = 0; ic < in_c; ++ic)
                    for (index_t mm = 0; mm < dm; ++mm) {
                      const index_t oc = ic * dm + mm;
                      std::int64_t acc = with_bias ? bias[static_cast<std::size_t>(oc)] : 0;
                      for (index_t ky = 0; ky < g.kh; ++ky)
                        for (index_t kx = 0; kx < g.kw; ++kx) {
                          const index_t iy = oy * stride - g.win.pad_top + ky * dil;
                          const index_t ix = ox * stride - g.win.pad_left + kx * dil;
                          if (iy < 0 || iy >= g.in_h || ix < 0 || ix >= g.in_w) continue;
                          acc += (std::int64_t{x[static_cast<std::size_t>(((b * g.in_h + iy) * g.in_w + ix) * in_c + ic)]} + in_off) *
                                 f[static_cast<std::size_t>((ky * g.kw + kx) * out_c + oc)];
                        }
                      const std::int8_t want = ref::requant(acc, m[static_cast<std::size_t>(oc)],
                                                            s[static_cast<std::size_t>(oc)], out_off, lo, hi);
                      seen.insert(want);
                      INFO("in_c " << in_c << " dm " << dm << " stride " << stride << " dil " << dil
                                   << " pad " << pad_mode << " at " << b << "," << oy << "," << ox << "," << oc);
                      REQUIRE(y[static_cast<std::size_t>(((b * oh + oy) * ow + ox) * out_c + oc)] == want);
                    }
            varied += seen.size() > 2;
            ++cases;
          }
  CHECK(cases == 5 * 2 * 2 * 2 * 3);
  CHECK(varied * 10 > cases * 7);
}

TEST_CASE("int8 depthwise_conv2d: errors name the op and the shapes") {
  std::int8_t buf[512] = {};
  std::int32_t m[8] = {1 << 30, 1 << 30, 1 << 30, 1 << 30, 1 << 30, 1 << 30, 1 << 30, 1 << 30}, s[8] = {};
  DepthwiseConv2DParams p;
  p.depth_multiplier = 2;
  p.output.multiplier = m;
  p.output.shift = s;
  CHECK(depthwise_conv2d(p, Shape{1, 4, 4, 3}, buf, Shape{1, 3, 3, 6}, buf, nullptr, Shape{1, 2, 2, 6}, buf).ok());
  const kiln::Status st =
      depthwise_conv2d(p, Shape{1, 4, 4, 3}, buf, Shape{1, 3, 3, 3}, buf, nullptr, Shape{1, 2, 2, 3}, buf);
  CHECK(st.code() == kiln::Errc::shape_mismatch);
  const std::string msg = st.message();
  CHECK(msg.find("depthwise_conv2d") != std::string::npos);
  CHECK(msg.find("[1, 3, 3, 3]") != std::string::npos);
  p.depth_multiplier = 0;
  CHECK(!depthwise_conv2d(p, Shape{1, 4, 4, 3}, buf, Shape{1, 3, 3, 6}, buf, nullptr, Shape{1, 2, 2, 6}, buf).ok());
}

TEST_CASE("int8 max_pool2d and avg_pool2d: bit-exact, count excludes padding, ties away from zero") {
  ref::Rng rng(808);
  int cases = 0;
  for (index_t ch : {1, 3, 7, 17, 80})
    for (index_t stride : {1, 2})
      for (int pad_mode = 0; pad_mode < 3; ++pad_mode)
        for (index_t fh : {1, 2, 3}) {
          Geometry g{};
          g.batches = ch % 2 ? 2 : 1;
          g.in_h = 5 + rng.uniform(0, 4);
          g.in_w = 5 + rng.uniform(0, 4);
          g.in_c = ch;
          g.kh = fh;
          g.kw = rng.uniform(1, 3);
          g.win = make_window(pad_mode, g.in_h, g.in_w, g.kh, g.kw, stride, 1);
          // A 1-wide window over a padded border would pool only padding (an error, tested below).
          if (g.kh == 1) g.win.pad_top = g.win.pad_bottom = 0;
          if (g.kw == 1) g.win.pad_left = g.win.pad_right = 0;
          const index_t oh = g.out_h(), ow = g.out_w();
          // Small values make exact .5 ties frequent in the average.
          const auto x = cases % 2 ? rng.int8s(static_cast<std::size_t>(g.batches * g.in_h * g.in_w * ch))
                                   : rng.int8s(static_cast<std::size_t>(g.batches * g.in_h * g.in_w * ch), -3, 3);
          Pool2DParams p;
          p.filter_h = g.kh;
          p.filter_w = g.kw;
          p.window = g.win;
          p.act_min = cases % 4 == 1 ? -20 : -128;
          p.act_max = cases % 4 == 1 ? 100 : 127;
          const Shape in_shape{g.batches, g.in_h, g.in_w, ch}, out_shape{g.batches, oh, ow, ch};
          std::vector<std::int8_t> ymax(static_cast<std::size_t>(out_shape.numel())), yavg(ymax.size());
          const kiln::Status smax = max_pool2d(p, in_shape, x.data(), out_shape, ymax.data());
          REQUIRE_MESSAGE(smax.ok(), smax.message());
          const kiln::Status savg = avg_pool2d(p, in_shape, x.data(), out_shape, yavg.data());
          REQUIRE_MESSAGE(savg.ok(), savg.message());
          for (index_t b = 0; b < g.batches; ++b)
            for (index_t oy = 0; oy < oh; ++oy)
              for (index_t ox = 0; ox < ow; ++ox)
                for (index_t c = 0; c < ch; ++c) {
                  int mx = -1000;
                  std::int64_t sum = 0, count = 0;
                  for (index_t ky = 0; ky < g.kh; ++ky)
                    for (index_t kx = 0; kx < g.kw; ++kx) {
                      const index_t iy = oy * stride - g.win.pad_top + ky, ix = ox * stride - g.win.pad_left + kx;
                      if (iy < 0 || iy >= g.in_h || ix < 0 || ix >= g.in_w) continue;
                      const int v = x[static_cast<std::size_t>(((b * g.in_h + iy) * g.in_w + ix) * ch + c)];
                      mx = v > mx ? v : mx;
                      sum += v;
                      ++count;
                    }
                  REQUIRE(count > 0);
                  // Round half away from zero of sum / count, from the sign-magnitude definition.
                  const std::int64_t mag = sum < 0 ? -sum : sum;
                  const std::int64_t q = (2 * mag + count) / (2 * count);
                  const std::int64_t avg = sum < 0 ? -q : q;
                  const std::size_t at = static_cast<std::size_t>(((b * oh + oy) * ow + ox) * ch + c);
                  INFO("ch " << ch << " stride " << stride << " pad " << pad_mode << " f " << g.kh << "x" << g.kw);
                  REQUIRE(ymax[at] == ref::clamp8(mx, p.act_min, p.act_max));
                  REQUIRE(yavg[at] == ref::clamp8(avg, p.act_min, p.act_max));
                }
          ++cases;
        }
  CHECK(cases == 5 * 2 * 3 * 3);
}

TEST_CASE("int8 avg_pool2d: hand-computed ties and a whole-image pool like KWS/IC") {
  // Window of 2 values: 1 and 2 -> 1.5 -> 2; -1 and -2 -> -1.5 -> -2; 1 and -2 -> -0.5 -> -1.
  const std::int8_t x[6] = {1, 2, -1, -2, 1, -2};
  Pool2DParams p;
  p.filter_h = 1;
  p.filter_w = 2;
  p.window.stride_w = 2;
  std::int8_t y[3] = {};
  REQUIRE(avg_pool2d(p, Shape{1, 1, 6, 1}, x, Shape{1, 1, 3, 1}, y).ok());
  CHECK(y[0] == 2);
  CHECK(y[1] == -2);
  CHECK(y[2] == -1);
  // SAME padding, 3x3 window at a corner covers 4 valid pixels, not 9.
  const std::int8_t img[9] = {4, 4, 0, 4, 5, 0, 0, 0, 0};
  Pool2DParams q;
  q.filter_h = q.filter_w = 3;
  q.window = same_window(3, 3, 3, 3, 1, 1);
  std::int8_t out[9] = {};
  REQUIRE(avg_pool2d(q, Shape{1, 3, 3, 1}, img, Shape{1, 3, 3, 1}, out).ok());
  CHECK(out[0] == 4);  // (4+4+4+5)/4 = 4.25
  CHECK(out[4] == 2);  // 17/9 = 1.89
  // Global average pool (IC: 8x8x64 -> 1x1x64).
  ref::Rng rng(3);
  const auto big = rng.int8s(8 * 8 * 64);
  Pool2DParams g;
  g.filter_h = g.filter_w = 8;
  std::int8_t pooled[64] = {};
  REQUIRE(avg_pool2d(g, Shape{1, 8, 8, 64}, big.data(), Shape{1, 1, 1, 64}, pooled).ok());
  for (int c = 0; c < 64; ++c) {
    int sum = 0;
    for (int i = 0; i < 64; ++i) sum += big[static_cast<std::size_t>(i * 64 + c)];
    const int want = sum >= 0 ? (sum + 32) / 64 : -((-sum + 32) / 64);
    REQUIRE(pooled[c] == want);
  }
}

TEST_CASE("int8 pooling: errors") {
  std::int8_t buf[64] = {};
  Pool2DParams p;
  p.filter_h = p.filter_w = 2;
  p.window = Window2D{1, 1, 1, 1, 2, 0, 0, 0};  // first output row sees only padding
  kiln::Status st = avg_pool2d(p, Shape{1, 3, 3, 1}, buf, Shape{1, 4, 2, 1}, buf);
  CHECK(st.code() == kiln::Errc::invalid_argument);
  CHECK(std::string(st.message()).find("avg_pool2d") != std::string::npos);
  p.window = Window2D{};
  st = max_pool2d(p, Shape{1, 3, 3, 2}, buf, Shape{1, 2, 2, 1}, buf);
  CHECK(st.code() == kiln::Errc::shape_mismatch);
  CHECK(std::string(st.message()).find("[1, 2, 2, 1]") != std::string::npos);
  p.window.dilation_h = 2;
  CHECK(max_pool2d(p, Shape{1, 3, 3, 1}, buf, Shape{1, 1, 2, 1}, buf).code() == kiln::Errc::not_supported);
}
