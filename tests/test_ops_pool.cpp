// max_pool2d, avg_pool2d (count_include_pad both ways), global_avg_pool, pad and upsample_nearest
// (NHWC): compiled and eager vs naive loops written here, on odd channel counts, same and
// asymmetric padding, strides 1 and 2, batch 1 and 3; type errors.
// Tolerances: max, pad and upsample move values (exact); averages 1e-6 abs + 1e-6 rel
// (float sums of at most 25 terms, then one multiply).
#include <limits>
#include <sstream>

#include "test_util.hpp"

#include <kiln/runtime/executable.hpp>  // the tests read the plan (steps, groups)

namespace {

struct PoolCase {
  kiln::index_t n, h, w, c;
  int kh, kw, stride;
  kiln::Padding2d pad;
};

/// Naive pooling: max over in-bounds taps, or their sum / (kernel area or number of taps).
std::vector<double> naive_pool(const PoolCase& k, const kiln::Tensor<float>& x, bool max, bool include_pad,
                               kiln::Shape& os) {
  int pt = k.pad.top, pb = k.pad.bottom, pl = k.pad.left, pr = k.pad.right;
  if (k.pad.is_same) {
    auto same = [](kiln::index_t in, int kernel, int s, int& lo, int& hi) {
      const kiln::index_t out = (in + s - 1) / s;
      const kiln::index_t total = std::max<kiln::index_t>((out - 1) * s + kernel - in, 0);
      lo = static_cast<int>(total / 2);
      hi = static_cast<int>(total - lo);
    };
    same(k.h, k.kh, k.stride, pt, pb);
    same(k.w, k.kw, k.stride, pl, pr);
  }
  const kiln::index_t oh = (k.h + pt + pb - k.kh) / k.stride + 1, ow = (k.w + pl + pr - k.kw) / k.stride + 1;
  os = kiln::Shape{k.n, oh, ow, k.c};
  std::vector<double> out;
  for (kiln::index_t n = 0; n < k.n; ++n)
    for (kiln::index_t y = 0; y < oh; ++y)
      for (kiln::index_t xo = 0; xo < ow; ++xo)
        for (kiln::index_t c = 0; c < k.c; ++c) {
          double acc = max ? -std::numeric_limits<double>::infinity() : 0.0;
          int taps = 0;
          for (int i = 0; i < k.kh; ++i)
            for (int j = 0; j < k.kw; ++j) {
              const kiln::index_t ih = y * k.stride - pt + i, iw = xo * k.stride - pl + j;
              if (ih < 0 || ih >= k.h || iw < 0 || iw >= k.w) continue;
              const double v = x[((n * k.h + ih) * k.w + iw) * k.c + c];
              acc = max ? std::max(acc, v) : acc + v;
              ++taps;
            }
          out.push_back(max ? acc : acc / (include_pad ? k.kh * k.kw : taps));
        }
  return out;
}

const PoolCase kPools[] = {
    {1, 8, 8, 3, 2, 2, 2, {}},
    {3, 7, 9, 17, 3, 3, 2, kiln::Padding2d::same()},
    {1, 9, 7, 7, 3, 3, 1, kiln::Padding2d::symmetric(1, 1)},
    {1, 11, 10, 1, 5, 3, 2, kiln::Padding2d::sides(2, 0, 1, 2)},
    {3, 5, 6, 32, 2, 3, 1, kiln::Padding2d::sides(0, 1, 2, 0)},
    {1, 4, 4, 40, 4, 4, 4, {}},  // one window per image
};

}  // namespace

TEST_CASE("max_pool2d and avg_pool2d: compiled and eager vs the naive loop") {
  std::uint32_t seed = 1;
  for (const PoolCase& k : kPools) {
    std::ostringstream d;
    d << "x [" << k.n << ", " << k.h << ", " << k.w << ", " << k.c << "], kernel " << k.kh << 'x' << k.kw << ", stride "
      << k.stride;
    INFO(d.str());
    const auto x = kt::random_tensor({k.n, k.h, k.w, k.c}, seed++);
    const kiln::Pool2dOptions base = kiln::Pool2dOptions(k.kh, k.kw).with_stride(k.stride).with_padding(k.pad);
    kiln::Shape os;
    {
      const auto want = naive_pool(k, x, true, false, os);
      auto model = [&](auto in) { return kiln::max_pool2d(in, base); };
      auto net = kiln::compile(model);
      const auto got = net(x);
      CHECK(got.shape() == os);
      kt::check_close(got, want, {0, 0}, "compiled max_pool2d");
      kt::check_close(kiln::eager(model)(x), want, {0, 0}, "eager max_pool2d");
      CHECK(net.executable()->steps().size() == 1);
      CHECK(net.executable()->steps()[0].kind == kiln::passes::GroupKind::window);
    }
    for (bool include : {true, false}) {
      INFO("count_include_pad " << include);
      const auto want = naive_pool(k, x, false, include, os);
      auto model = [&](auto in) { return kiln::avg_pool2d(in, base.with_count_include_pad(include)); };
      auto net = kiln::compile(model);
      kt::check_close(net(x), want, {1e-6, 1e-6}, "compiled avg_pool2d");
      kt::check_close(kiln::eager(model)(x), want, {1e-6, 1e-6}, "eager avg_pool2d");
    }
  }
}

TEST_CASE("pooling after a producer chain, and of a permuted (channel-strided) input") {
  const auto x = kt::random_tensor({2, 6, 5, 7}, 9);
  auto model = [](auto in) { return kiln::max_pool2d(kiln::relu(in * 3.f - 1.f), 2) + 1.f; };
  auto net = kiln::compile(model);
  kt::check_close(net(x), kiln::eager(model)(x), {0, 0}, "chain -> pool -> add");
  // NCHW storage permuted to NHWC: the window kernel reads a dense copy.
  const auto nchw = kt::random_tensor({2, 7, 6, 5}, 10);
  auto perm = [](auto in) { return kiln::avg_pool2d(kiln::permute(in, {0, 2, 3, 1}), kiln::Pool2dOptions(3).with_stride(1)); };
  auto net2 = kiln::compile(perm);
  kt::check_close(net2(nchw), kiln::eager(perm)(nchw), {1e-6, 1e-6}, "pool of a permuted input");
}

TEST_CASE("global_avg_pool, keepdim both ways") {
  for (kiln::index_t c : {1, 3, 17}) {
    const auto x = kt::random_tensor({3, 5, 7, c}, static_cast<std::uint32_t>(c));
    std::vector<double> want(static_cast<std::size_t>(3 * c), 0.0);
    for (kiln::index_t n = 0; n < 3; ++n)
      for (kiln::index_t p = 0; p < 35; ++p)
        for (kiln::index_t k = 0; k < c; ++k) want[static_cast<std::size_t>(n * c + k)] += x[(n * 35 + p) * c + k] / 35.0;
    for (bool keep : {true, false}) {
      auto model = [keep](auto in) { return kiln::global_avg_pool(in, keep); };
      auto net = kiln::compile(model);
      const auto got = net(x);
      CHECK(got.shape() == (keep ? kiln::Shape{3, 1, 1, c} : kiln::Shape{3, c}));
      kt::check_close(got, want, {1e-6, 1e-5}, "compiled global_avg_pool");
      kt::check_close(kiln::eager(model)(x), want, {1e-6, 1e-5}, "eager global_avg_pool");
    }
  }
}

TEST_CASE("pad and upsample_nearest vs naive loops") {
  const auto x = kt::random_tensor({3, 4, 5, 7}, 3);
  {
    const int t = 2, b = 0, l = 1, r = 3;
    std::vector<double> want;
    for (kiln::index_t n = 0; n < 3; ++n)
      for (kiln::index_t h = 0; h < 4 + t + b; ++h)
        for (kiln::index_t w = 0; w < 5 + l + r; ++w)
          for (kiln::index_t c = 0; c < 7; ++c) {
            const kiln::index_t ih = h - t, iw = w - l;
            want.push_back(ih < 0 || ih >= 4 || iw < 0 || iw >= 5 ? -0.5 : x[((n * 4 + ih) * 5 + iw) * 7 + c]);
          }
    auto model = [&](auto in) { return kiln::pad(in, kiln::Padding2d::sides(t, b, l, r), -0.5f); };
    auto net = kiln::compile(model);
    const auto got = net(x);
    CHECK(got.shape() == kiln::Shape{3, 6, 9, 7});
    kt::check_close(got, want, {0, 0}, "compiled pad");
    kt::check_close(kiln::eager(model)(x), want, {0, 0}, "eager pad");
  }
  for (const auto& scale : {std::pair<int, int>{2, 2}, {1, 3}, {3, 1}}) {
    const int sh = scale.first, sw = scale.second;  // plain ints: lambdas and INFO cannot capture bindings in C++17
    INFO("scale " << sh << 'x' << sw);
    std::vector<double> want;
    for (kiln::index_t n = 0; n < 3; ++n)
      for (kiln::index_t h = 0; h < 4 * sh; ++h)
        for (kiln::index_t w = 0; w < 5 * sw; ++w)
          for (kiln::index_t c = 0; c < 7; ++c) want.push_back(x[((n * 4 + h / sh) * 5 + w / sw) * 7 + c]);
    auto model = [&](auto in) { return kiln::upsample_nearest(in, sh, sw); };
    auto net = kiln::compile(model);
    kt::check_close(net(x), want, {0, 0}, "compiled upsample");
    kt::check_close(kiln::eager(model)(x), want, {0, 0}, "eager upsample");
  }
  // A small U-Net-like join: pad -> conv -> upsample -> concat with the skip path.
  const auto w = kt::random_tensor({4, 3, 3, 7}, 4);
  auto unet = [&](auto in) {
    auto down = kiln::max_pool2d(in, 2);  // [3, 2, 2, 7]
    auto c = kiln::relu(kiln::conv2d(kiln::pad(down, kiln::Padding2d::symmetric(1, 1)), w));
    auto up = kiln::upsample_nearest(c, 2);  // [3, 4, 4, 4]
    return kiln::concat({up, kiln::slice(in, 2, 0, 4)}, 3);
  };
  auto net = kiln::compile(unet);
  kt::check_close(net(x), kiln::eager(unet)(x), {1e-5, 1e-5}, "pool/pad/conv/upsample/concat");
}

TEST_CASE("pooling, pad and upsample type errors") {
  auto message = [](auto fn) -> std::string {
    try {
      fn();
    } catch (const kiln::Error& e) {
      return e.what();
    }
    return "no error";
  };
  const kiln::Tensor<float> x({1, 5, 5, 3});
  const std::string big = message([&] { (void)kiln::max_pool2d(x, 6); });
  CHECK(big.find("max_pool2d") != std::string::npos);
  CHECK(big.find("larger than the padded input [1, 5, 5, 3]") != std::string::npos);
  const std::string pad = message(
      [&] { (void)kiln::avg_pool2d(x, kiln::Pool2dOptions(2).with_padding(kiln::Padding2d::symmetric(2, 0))); });
  CHECK(pad.find("avg_pool2d") != std::string::npos);
  CHECK(pad.find("smaller than the kernel 2x2") != std::string::npos);
  const std::string rank = message([&] { (void)kiln::upsample_nearest(kiln::Tensor<float>({5, 3}), 2); });
  CHECK(rank.find("upsample_nearest") != std::string::npos);
  CHECK(rank.find("[5, 3]") != std::string::npos);
  const std::string scale = message([&] { (void)kiln::upsample_nearest(x, 0); });
  CHECK(scale.find("must be >= 1") != std::string::npos);
  const std::string neg = message([&] { (void)kiln::pad(x, kiln::Padding2d::sides(-1, 0, 0, 0)); });
  CHECK(neg.find("negative padding") != std::string::npos);
}
