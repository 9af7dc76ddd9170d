// conv2d (NHWC, OHWI weights): compiled and eager vs a naive double-accumulation loop on odd shapes
// (channels 1/3/7/17, kernels 1/3/5, stride 1/2, dilation 2, same and asymmetric padding, groups,
// depthwise with multiplier 1 and 2, batch 1 and 3); the fused epilogue (bias and clamp in
// registers, residual add in the tail) and batch-norm folding; type errors.
// Tolerance: |err| <= 1e-5 * sum |x * w| + 1e-6 per output (summation order differs).
#include <sstream>

#include "test_util.hpp"

#include <kiln/runtime/executable.hpp>  // the tests read the plan (steps, groups)

namespace {

struct ConvCase {
  kiln::index_t n, h, w, c, o;
  int kh, kw, stride, dilation, groups;
  kiln::Padding2d pad;
};

/// Resolved padding (TF "SAME" computed the way the front-end documents it, independently).
void resolve(const ConvCase& k, int& pt, int& pb, int& pl, int& pr) {
  auto same = [](kiln::index_t in, int kernel, int s, int d, int& lo, int& hi) {
    const kiln::index_t out = (in + s - 1) / s, span = (kernel - 1) * d + 1;
    const kiln::index_t total = std::max<kiln::index_t>((out - 1) * s + span - in, 0);
    lo = static_cast<int>(total / 2);
    hi = static_cast<int>(total - lo);
  };
  if (k.pad.is_same) {
    same(k.h, k.kh, k.stride, k.dilation, pt, pb);
    same(k.w, k.kw, k.stride, k.dilation, pl, pr);
  } else {
    pt = k.pad.top, pb = k.pad.bottom, pl = k.pad.left, pr = k.pad.right;
  }
}

/// out[n, oh, ow, o] = bias[o] + sum over (kh, kw, ci in o's group) x[n, ih, iw, g*cg + ci] * w[o, kh, kw, ci].
kiln::Shape naive_conv(const ConvCase& k, const kiln::Tensor<float>& x, const kiln::Tensor<float>& w,
                       const kiln::Tensor<float>* bias, std::vector<double>& out, std::vector<double>& mag) {
  int pt, pb, pl, pr;
  resolve(k, pt, pb, pl, pr);
  const kiln::index_t span_h = (k.kh - 1) * k.dilation + 1, span_w = (k.kw - 1) * k.dilation + 1;
  const kiln::index_t oh = (k.h + pt + pb - span_h) / k.stride + 1, ow = (k.w + pl + pr - span_w) / k.stride + 1;
  const kiln::index_t cg = k.c / k.groups, og = k.o / k.groups;
  out.assign(static_cast<std::size_t>(k.n * oh * ow * k.o), 0.0);
  mag.assign(out.size(), 0.0);
  for (kiln::index_t n = 0; n < k.n; ++n)
    for (kiln::index_t y = 0; y < oh; ++y)
      for (kiln::index_t xo = 0; xo < ow; ++xo)
        for (kiln::index_t o = 0; o < k.o; ++o) {
          double acc = bias ? (*bias)[o] : 0.0, m = 0;
          const kiln::index_t grp = o / og;
          for (int i = 0; i < k.kh; ++i)
            for (int j = 0; j < k.kw; ++j) {
              const kiln::index_t ih = y * k.stride - pt + i * k.dilation, iw = xo * k.stride - pl + j * k.dilation;
              if (ih < 0 || ih >= k.h || iw < 0 || iw >= k.w) continue;
              for (kiln::index_t ci = 0; ci < cg; ++ci) {
                const double a = x[((n * k.h + ih) * k.w + iw) * k.c + grp * cg + ci];
                const double b = w[((o * k.kh + i) * k.kw + j) * cg + ci];
                acc += a * b;
                m += std::fabs(a * b);
              }
            }
          const std::size_t at = static_cast<std::size_t>(((n * oh + y) * ow + xo) * k.o + o);
          out[at] = acc;
          mag[at] = m;
        }
  return kiln::Shape{k.n, oh, ow, k.o};
}

void check_conv(const kiln::Tensor<float>& got, const std::vector<double>& want, const std::vector<double>& mag,
                const std::string& what) {
  INFO(what);
  REQUIRE(got.size() == static_cast<kiln::index_t>(want.size()));
  for (std::size_t i = 0; i < want.size(); ++i) {
    const double err = std::fabs(got[static_cast<kiln::index_t>(i)] - want[i]);
    if (!(err <= 1e-5 * mag[i] + 1e-6)) {
      INFO("index " << i << ": got " << got[static_cast<kiln::index_t>(i)] << ", want " << want[i]);
      CHECK(false);
      return;
    }
  }
}

std::string describe(const ConvCase& k) {
  std::ostringstream s;
  s << "x [" << k.n << ", " << k.h << ", " << k.w << ", " << k.c << "] -> " << k.o << ", kernel " << k.kh << 'x' << k.kw
    << ", stride " << k.stride << ", dilation " << k.dilation << ", groups " << k.groups << ", padding "
    << (k.pad.is_same ? std::string("same")
                      : std::to_string(k.pad.top) + "," + std::to_string(k.pad.bottom) + "," +
                            std::to_string(k.pad.left) + "," + std::to_string(k.pad.right));
  return s.str();
}

kiln::Conv2dOptions options(const ConvCase& k) {
  return kiln::Conv2dOptions().with_stride(k.stride).with_dilation(k.dilation).with_groups(k.groups).with_padding(k.pad);
}

const kiln::Padding2d kSame = kiln::Padding2d::same();

const ConvCase kCases[] = {
    // pointwise (1x1, stride 1): the GEMM reads the input in place
    {1, 5, 7, 3, 4, 1, 1, 1, 1, 1, {}},
    {3, 4, 3, 17, 7, 1, 1, 1, 1, 1, {}},
    {1, 6, 5, 8, 6, 1, 1, 1, 1, 2, {}},  // grouped pointwise
    // im2col
    {1, 9, 11, 1, 1, 3, 3, 1, 1, 1, kSame},
    {1, 8, 8, 3, 17, 3, 3, 1, 1, 1, kSame},
    {3, 7, 9, 7, 5, 3, 3, 2, 1, 1, kSame},
    {1, 12, 10, 3, 7, 5, 5, 2, 1, 1, kiln::Padding2d::sides(2, 1, 0, 3)},
    {1, 11, 13, 7, 3, 3, 3, 1, 2, 1, kSame},                                  // dilation 2
    {3, 10, 9, 4, 6, 3, 5, 1, 2, 2, kiln::Padding2d::sides(1, 3, 2, 0)},      // groups 2, dilation, asym
    {1, 6, 6, 17, 17, 1, 1, 2, 1, 1, {}},                                     // 1x1 stride 2: im2col
    {2, 5, 5, 3, 2, 5, 5, 1, 1, 1, {}},                                       // kernel == input
    {1, 20, 20, 16, 32, 3, 3, 1, 1, 1, kSame},                                // many rows: several chunks
    // depthwise, multiplier 1 and 2
    {1, 9, 7, 17, 17, 3, 3, 1, 1, 17, kSame},
    {3, 8, 8, 7, 14, 3, 3, 2, 1, 7, kSame},
    {1, 10, 12, 32, 32, 5, 5, 1, 2, 32, kiln::Padding2d::sides(0, 3, 4, 1)},
    {1, 6, 6, 3, 6, 3, 3, 1, 1, 3, kiln::Padding2d::symmetric(1, 1)},
};

}  // namespace

TEST_CASE("conv2d: compiled and eager vs the naive loop on odd shapes") {
  std::uint32_t seed = 1;
  for (const ConvCase& k : kCases) {
    INFO(describe(k));
    const auto x = kt::random_tensor({k.n, k.h, k.w, k.c}, seed++);
    const auto w = kt::random_tensor({k.o, k.kh, k.kw, k.c / k.groups}, seed++);
    const auto b = kt::random_tensor({k.o}, seed++);
    std::vector<double> want, mag;
    const kiln::Shape os = naive_conv(k, x, w, &b, want, mag);
    const kiln::Conv2dOptions opt = options(k);
    auto model = [&](auto in) { return kiln::conv2d(in, w, b, opt); };
    auto net = kiln::compile(model);
    const auto got = net(x);
    CHECK(got.shape() == os);
    check_conv(got, want, mag, "compiled, weights captured");
    check_conv(kiln::eager(model)(x), want, mag, "eager");
    CHECK(net.stats().kernels == 1);  // the bias add runs inside the conv
    // The weight as a run-time input: not prepacked, packed (or transposed) at every call.
    auto runtime_w = [&](auto in, auto wt) { return kiln::conv2d(in, wt, b, opt); };
    auto net2 = kiln::compile(runtime_w);
    check_conv(net2(x, w), want, mag, "compiled, weight as an input");
    CHECK(net2.stats().packed_weight_bytes == 0);
  }
}

TEST_CASE("conv2d reads strided inputs: an NCHW tensor permuted to NHWC, a sliced batch") {
  const ConvCase k{2, 7, 6, 5, 4, 3, 3, 1, 1, 1, kSame};
  const auto x = kt::random_tensor({k.n, k.h, k.w, k.c}, 11);
  const auto w = kt::random_tensor({k.o, 3, 3, k.c}, 12);
  std::vector<double> want, mag;
  naive_conv(k, x, w, nullptr, want, mag);
  // The same values stored NCHW: the model permutes back to NHWC (a view, channel stride != 1).
  kiln::Tensor<float> nchw({k.n, k.c, k.h, k.w});
  for (kiln::index_t n = 0; n < k.n; ++n)
    for (kiln::index_t c = 0; c < k.c; ++c)
      for (kiln::index_t h = 0; h < k.h; ++h)
        for (kiln::index_t q = 0; q < k.w; ++q) nchw(n, c, h, q) = x(n, h, q, c);
  const auto opt = options(k);
  auto model = [&](auto in) { return kiln::conv2d(kiln::permute(in, {0, 2, 3, 1}), w, opt); };
  auto net = kiln::compile(model);
  check_conv(net(nchw), want, mag, "permuted input");
  check_conv(kiln::eager(model)(nchw), want, mag, "permuted input, eager");
  // A pointwise conv of a slice along W (pixels unevenly strided): copied densely first.
  const auto w1 = kt::random_tensor({4, 1, 1, 5}, 13);
  auto sliced = [&](auto in) { return kiln::conv2d(kiln::slice(in, 2, 1, 4), w1); };
  auto net2 = kiln::compile(sliced);
  kt::check_close(net2(x), kiln::eager(sliced)(x), {1e-5, 1e-5}, "pointwise conv of a W slice");
}

TEST_CASE("conv2d fusion: bias and relu/relu6/clamp in registers, residual add in the tail") {
  const auto w = kt::random_tensor({16, 3, 3, 8}, 21), b = kt::random_tensor({16}, 22);
  const auto x = kt::random_tensor({2, 9, 10, 8}, 23), r = kt::random_tensor({2, 9, 10, 16}, 24);
  const auto opt = kiln::Conv2dOptions().with_padding(kiln::Padding2d::same());
  auto simple = [&](auto in) { return kiln::relu6(kiln::conv2d(in, w, b, opt)); };
  auto net = kiln::compile(simple);
  kt::check_close(net(x), kiln::eager(simple)(x), {1e-5, 1e-5}, "conv + bias + relu6");
  REQUIRE(net.executable()->steps().size() == 1);
  const auto& s = net.executable()->steps()[0];
  CHECK(s.kind == kiln::passes::GroupKind::gemm);
  CHECK(s.conv);
  CHECK(s.bias >= 0);
  CHECK(s.clamp);
  CHECK(s.hi == 6.f);
  CHECK(s.code_size == 0);  // nothing left for the tail
  CHECK(s.packed >= 0);
  std::ostringstream table, plan;
  net.print_graph(table);
  net.print_plan(plan);
  CHECK(table.str().find("conv2d 3x3/1 p1") != std::string::npos);
  CHECK(plan.str().find("conv2d implicit im2col gemm; M=180 N=16 K=72") != std::string::npos);
  CHECK(plan.str().find("clamp [0, 6] in registers") != std::string::npos);

  // A ResNet block's end: relu(conv + bias + residual). The residual is the tail program.
  auto block = [&](auto in, auto res) { return kiln::relu(kiln::conv2d(in, w, b, opt) + res); };
  auto net2 = kiln::compile(block);
  kt::check_close(net2(x, r), kiln::eager(block)(x, r), {1e-5, 1e-5}, "residual block");
  REQUIRE(net2.executable()->steps().size() == 1);
  const auto& s2 = net2.executable()->steps()[0];
  CHECK(s2.bias >= 0);
  CHECK(s2.code_size > 0);
  CHECK(s2.rows_merge);

  // A residual broadcast over the batch (rows do not merge): the tail goes row by row.
  const auto r1 = kt::random_tensor({1, 9, 10, 16}, 25);
  auto net3 = kiln::compile(block);
  kt::check_close(net3(x, r1), kiln::eager(block)(x, r1), {1e-5, 1e-5}, "broadcast residual");
  CHECK(!net3.executable()->steps()[0].rows_merge);

  // Depthwise: the same epilogue, in the direct kernel (bias + clamp in registers, residual tail).
  const auto wd = kt::random_tensor({8, 3, 3, 1}, 26), bd = kt::random_tensor({8}, 27);
  const auto xr = kt::random_tensor({2, 9, 10, 8}, 28);
  auto dw = [&](auto in, auto res) {
    return kiln::clamp(kiln::conv2d(in, wd, bd, opt.with_groups(8)), -1.f, 1.5f) * 2.f + res;
  };
  auto net4 = kiln::compile(dw);
  kt::check_close(net4(x, xr), kiln::eager(dw)(x, xr), {1e-5, 1e-5}, "depthwise + clamp + residual");
  REQUIRE(net4.executable()->steps().size() == 1);
  CHECK(net4.executable()->steps()[0].clamp);
  CHECK(net4.executable()->steps()[0].code_size > 0);
}

TEST_CASE("batch_norm folds into the preceding conv and linear") {
  const auto w = kt::random_tensor({6, 3, 3, 5}, 31), b = kt::random_tensor({6}, 32);
  const auto gamma = kt::random_tensor({6}, 33), beta = kt::random_tensor({6}, 34);
  const auto mean = kt::random_tensor({6}, 35), var = kt::random_tensor({6}, 36, 0.5f, 2.f);
  const auto x = kt::random_tensor({2, 8, 7, 5}, 37);
  const auto opt = kiln::Conv2dOptions().with_padding(kiln::Padding2d::same());
  for (bool with_bias : {false, true}) {
    INFO("conv bias " << with_bias);
    auto model = [&](auto in) {
      auto c = with_bias ? kiln::conv2d(in, w, b, opt) : kiln::conv2d(in, w, opt);
      return kiln::relu(kiln::batch_norm(c, gamma, beta, mean, var, 1e-3f));
    };
    auto net = kiln::compile(model);
    kt::check_close(net(x), kiln::eager(model)(x), {1e-5, 1e-5}, "conv + batch_norm + relu");
    const auto& p = *net.executable();
    REQUIRE(p.steps().size() == 1);
    CHECK(p.steps()[0].bias >= 0);     // beta - mean * scale (+ b * scale) is the GEMM's bias
    CHECK(p.steps()[0].clamp);
    CHECK(p.steps()[0].code_size == 0);  // no multiply left
    // input, weight, bias constant, conv, add, relu: the scale is gone into the weight.
    CHECK(p.graph().size() == 6);
  }
  // Non-constant parameters: no folding, elementwise ops fused into the epilogue, same values.
  auto runtime = [&](auto in, auto g) { return kiln::batch_norm(kiln::conv2d(in, w, opt), g, beta, mean, var); };
  auto net2 = kiln::compile(runtime);
  kt::check_close(net2(x, gamma), kiln::eager(runtime)(x, gamma), {1e-5, 1e-5}, "batch_norm with runtime gamma");
  CHECK(net2.stats().kernels == 2);  // the scale computed from gamma, then conv + its epilogue
  // A weight shared by two convs is not rewritten in place (the other user needs it).
  auto shared = [&](auto in) {
    auto c = kiln::conv2d(in, w, opt);
    return std::make_pair(kiln::batch_norm(c, gamma, beta, mean, var), kiln::conv2d(in * 2.f, w, opt));
  };
  auto net3 = kiln::compile(shared);
  auto [u, v] = net3(x);
  auto [eu, ev] = kiln::eager(shared)(x);
  kt::check_close(u, eu, {1e-5, 1e-5}, "shared weight, bn branch");
  kt::check_close(v, ev, {1e-5, 1e-5}, "shared weight, plain branch");
  // linear + batch norm over features.
  const auto wl = kt::random_tensor({6, 10}, 38);
  const auto xl = kt::random_tensor({4, 10}, 39);
  auto lin = [&](auto in) { return kiln::batch_norm(kiln::linear(in, wl), gamma, beta, mean, var); };
  auto net4 = kiln::compile(lin);
  kt::check_close(net4(xl), kiln::eager(lin)(xl), {1e-5, 1e-5}, "linear + batch_norm");
  CHECK(net4.executable()->steps().size() == 1);
  CHECK(net4.executable()->steps()[0].code_size == 0);
}

TEST_CASE("conv2d type errors name the op and the shapes") {
  auto message = [](auto fn) -> std::string {
    try {
      fn();
    } catch (const kiln::Error& e) {
      return e.what();
    }
    return "no error";
  };
  const kiln::Tensor<float> x({1, 5, 5, 6});
  const std::string bad_c = message([&] { (void)kiln::conv2d(x, kiln::Tensor<float>({4, 3, 3, 5})); });
  CHECK(bad_c.find("conv2d") != std::string::npos);
  CHECK(bad_c.find("[4, 3, 3, 5]") != std::string::npos);
  CHECK(bad_c.find("[1, 5, 5, 6]") != std::string::npos);
  const std::string groups = message(
      [&] { (void)kiln::conv2d(x, kiln::Tensor<float>({4, 3, 3, 2}), kiln::Conv2dOptions().with_groups(4)); });
  CHECK(groups.find("groups 4 must divide") != std::string::npos);
  const std::string big = message([&] { (void)kiln::conv2d(x, kiln::Tensor<float>({2, 7, 3, 6})); });
  CHECK(big.find("larger than the padded input [1, 5, 5, 6]") != std::string::npos);
  const std::string dil = message([&] {
    (void)kiln::conv2d(x, kiln::Tensor<float>({2, 3, 3, 6}), kiln::Conv2dOptions().with_dilation(3));
  });
  CHECK(dil.find("dilation 3x3") != std::string::npos);
  const std::string rank = message([&] { (void)kiln::conv2d(kiln::Tensor<float>({5, 5, 6}), kiln::Tensor<float>({2, 1, 1, 6})); });
  CHECK(rank.find("NHWC") != std::string::npos);
  const std::string stride = message(
      [&] { (void)kiln::conv2d(x, kiln::Tensor<float>({2, 1, 1, 6}), kiln::Conv2dOptions().with_stride(0)); });
  CHECK(stride.find("must be >= 1") != std::string::npos);
  // The same rules while tracing: the error surfaces at the first call.
  auto net = kiln::compile([](auto in) { return kiln::conv2d(in, kiln::Tensor<float>({3, 3, 3, 4})); });
  const std::string traced = message([&] { (void)net(x); });
  CHECK(traced.find("conv2d") != std::string::npos);
}
