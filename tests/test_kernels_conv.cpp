// The window kernels on their own (kernels/conv.hpp, pool.hpp, resize.hpp), built twice: with SIMD
// and as test_kernels_conv_scalar (-DKILN_NO_SIMD), so the scalar twins are checked too.
// conv2d on each algorithm (pointwise, depthwise, im2col), prepacked or not, with the epilogue
// (bias, clamp in registers; the tail sees global block coordinates that tile the output
// exactly once); pooling on channel counts around the vector width.
// Tolerance: conv |err| <= 1e-5 * sum |x * w| + 1e-6; pooling averages 1e-6; copies exact.
#include <cstring>
#include <limits>
#include <vector>

#include "test_util.hpp"

namespace {

using kiln::index_t;
using namespace kiln::kernels;

std::vector<float> random_vec(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

/// 64-byte aligned float scratch (the kernels' workspace contract).
struct Scratch {
  explicit Scratch(std::size_t n) : buf(n + 16) {}
  float* get() { return kiln::align_up(buf.data()); }
  std::vector<float> buf;
};

WindowGeometry geometry(index_t n, index_t h, index_t w, index_t c, index_t o, int k, int s, int pad, int d, int groups) {
  WindowGeometry g;
  g.batch = n, g.in_h = h, g.in_w = w, g.in_c = c, g.out_c = o;
  g.kernel_h = g.kernel_w = k;
  g.stride_h = g.stride_w = s;
  g.pad_top = g.pad_left = pad;
  g.dilation_h = g.dilation_w = d;
  g.groups = groups;
  g.out_h = (h + 2 * pad - (k - 1) * d - 1) / s + 1;
  g.out_w = (w + 2 * pad - (k - 1) * d - 1) / s + 1;
  return g;
}

struct TailLog {
  std::vector<int> hits;  // times each output element was handed to the tail
  index_t out_c;
  static void call(void* ctx, index_t i0, index_t j0, index_t m, index_t n, float* c, index_t ldc) {
    auto& t = *static_cast<TailLog*>(ctx);
    for (index_t i = 0; i < m; ++i)
      for (index_t j = 0; j < n; ++j) {
        ++t.hits[static_cast<std::size_t>((i0 + i) * t.out_c + j0 + j)];
        c[i * ldc + j] *= 2.f;  // visible in the output: the tail ran on this block's C
      }
  }
};

/// The epilogue under test: bias or not, a clamp [lo, hi] or none, a tail or none.
struct EpilogueCase {
  bool bias = true, clamp = true, tail = true;
  float lo = -0.5f, hi = 0.75f;
};

/// `pixel_gap` > 0 reads the input as a view whose pixels are in_c + pixel_gap floats apart.
void check_conv_kernel(const WindowGeometry& g, bool prepack, const EpilogueCase& e = {}, index_t pixel_gap = 0) {
  const index_t sw = g.in_c + pixel_gap;
  const auto xs = random_vec(static_cast<std::size_t>(g.batch * g.in_h * g.in_w * sw), 1);
  std::vector<float> x(static_cast<std::size_t>(g.batch * g.in_h * g.in_w * g.in_c));  // dense, for the reference
  for (std::size_t p = 0; p < x.size() / static_cast<std::size_t>(g.in_c); ++p)
    for (index_t c = 0; c < g.in_c; ++c)
      x[p * static_cast<std::size_t>(g.in_c) + static_cast<std::size_t>(c)] =
          xs[p * static_cast<std::size_t>(sw) + static_cast<std::size_t>(c)];
  const auto w = random_vec(static_cast<std::size_t>(g.out_c * g.depth()), 2);
  const auto bias = random_vec(static_cast<std::size_t>(g.out_c), 3);
  std::vector<float> out(static_cast<std::size_t>(g.rows() * g.out_c), -99.f);
  std::vector<float> packed(conv_packed_weight_floats(g));
  if (prepack) conv_pack_weights(g, w.data(), packed.data());
  Scratch ws(conv_workspace_floats(g, prepack));
  TailLog log{std::vector<int>(out.size(), 0), g.out_c};
  GemmEpilogue ep;
  ep.bias = e.bias ? bias.data() : nullptr;
  ep.clamp = e.clamp;
  ep.lo = e.lo;
  ep.hi = e.hi;
  if (e.tail) {
    ep.tail = &TailLog::call;
    ep.ctx = &log;
  }
  const NhwcIn xv{xs.data(), g.in_h * g.in_w * sw, g.in_w * sw, sw};
  conv2d(g, xv, prepack ? nullptr : w.data(), prepack ? packed.data() : nullptr,
         out.data(), g.out_c, ep, ws.get());
  const index_t cg = g.in_c_group(), og = g.out_c_group();
  for (index_t r = 0; r < g.rows(); ++r) {
    const index_t ow = r % g.out_w, oh = (r / g.out_w) % g.out_h, n = r / (g.out_w * g.out_h);
    for (index_t o = 0; o < g.out_c; ++o) {
      double acc = e.bias ? bias[static_cast<std::size_t>(o)] : 0.0, mag = 0;
      for (int i = 0; i < g.kernel_h; ++i)
        for (int j = 0; j < g.kernel_w; ++j) {
          const index_t ih = oh * g.stride_h - g.pad_top + i * g.dilation_h;
          const index_t iw = ow * g.stride_w - g.pad_left + j * g.dilation_w;
          if (ih < 0 || ih >= g.in_h || iw < 0 || iw >= g.in_w) continue;
          for (index_t ci = 0; ci < cg; ++ci) {
            const double a = x[static_cast<std::size_t>(((n * g.in_h + ih) * g.in_w + iw) * g.in_c + (o / og) * cg + ci)];
            const double b = w[static_cast<std::size_t>(((o * g.kernel_h + i) * g.kernel_w + j) * cg + ci)];
            acc += a * b;
            mag += std::fabs(a * b);
          }
        }
      const double clamped = e.clamp ? std::min(std::max(acc, double{e.lo}), double{e.hi}) : acc;
      const double want = e.tail ? 2.0 * clamped : clamped;
      const std::size_t at = static_cast<std::size_t>(r * g.out_c + o);
      REQUIRE(log.hits[at] == (e.tail ? 1 : 0));
      if (!(std::fabs(out[at] - want) <= 2e-5 * mag + 1e-6)) {
        INFO("row " << r << " channel " << o << ": got " << out[at] << ", want " << want);
        CHECK(false);
        return;
      }
    }
  }
}

}  // namespace

TEST_CASE("conv2d kernel: every algorithm, prepacked or not, with bias, clamp and tail") {
  struct C {
    WindowGeometry g;
    ConvAlgorithm algo;
  };
  const C cases[] = {
      {geometry(2, 5, 6, 7, 9, 1, 1, 0, 1, 1), ConvAlgorithm::pointwise},
      {geometry(1, 7, 7, 12, 10, 1, 1, 0, 1, 2), ConvAlgorithm::pointwise},
      {geometry(1, 9, 8, 3, 17, 3, 1, 1, 1, 1), ConvAlgorithm::im2col},
      {geometry(3, 11, 10, 4, 6, 5, 2, 2, 1, 2), ConvAlgorithm::im2col},
      {geometry(1, 30, 30, 16, 32, 3, 1, 1, 1, 1), ConvAlgorithm::im2col},  // several tail blocks
      {geometry(1, 9, 7, 17, 17, 3, 1, 1, 1, 17), ConvAlgorithm::depthwise},
      {geometry(2, 8, 9, 40, 40, 3, 2, 1, 2, 40), ConvAlgorithm::depthwise},
      {geometry(1, 6, 6, 5, 10, 3, 1, 1, 1, 5), ConvAlgorithm::depthwise},  // multiplier 2
      // 3-wide stride-1 rows of 8 pixels sharing input columns: several blocks, border pixels
      // on both sides, a channel tail (19 = 2 vectors of 8 + 3), no padding.
      {geometry(1, 5, 29, 19, 19, 3, 1, 1, 1, 19), ConvAlgorithm::depthwise},
      {geometry(2, 6, 20, 24, 24, 3, 1, 0, 1, 24), ConvAlgorithm::depthwise},
  };
  for (const C& c : cases) {
    INFO("algorithm " << conv_algorithm_name(c.algo) << ", in_c " << c.g.in_c << ", out_c " << c.g.out_c);
    CHECK(conv_algorithm(c.g) == c.algo);
    for (bool prepack : {false, true}) {
      INFO("prepacked " << prepack);
      check_conv_kernel(c.g, prepack);
    }
  }
}

TEST_CASE("implicit GEMM: border tiles walked per tap, interior rows merged, big kernels gathered") {
  // Tiles of MR output pixels run across output rows, so at these widths most tiles hold border
  // pixels (padding taps read zeros, all-padding taps are skipped) next to interior ones.
  for (index_t w : {1, 2, 3, 4, 5, 6, 7, 8, 9, 31, 32, 33}) {
    INFO("width " << w);
    check_conv_kernel(geometry(1, 5, w, 3, 8, 3, 1, 1, 1, 1), true);
    check_conv_kernel(geometry(1, 4, w, 16, 32, 3, 1, 1, 1, 1), true);
  }
  struct C {
    WindowGeometry g;
    const char* what;
  };
  const C cases[] = {
      {geometry(1, 32, 32, 16, 32, 3, 1, 1, 1, 1), "the bench_conv problem"},
      {geometry(2, 7, 9, 20, 24, 3, 1, 1, 1, 1), "C 20 (not a multiple of 8), N 24, batch 2"},
      {geometry(1, 9, 11, 16, 40, 3, 1, 1, 1, 1), "N 40: a partial column panel"},
      {geometry(1, 11, 13, 3, 8, 3, 2, 1, 1, 1), "stride 2"},
      {geometry(1, 10, 12, 16, 24, 3, 1, 2, 2, 1), "dilation 2"},
      {geometry(1, 8, 10, 20, 32, 3, 1, 1, 1, 2), "groups 2"},
      {geometry(1, 9, 9, 16, 8, 3, 1, 0, 1, 1), "no padding: every tile interior"},
      {geometry(1, 6, 7, 5, 9, 3, 2, 3, 1, 1), "padding 3: taps in the padding for whole tiles"},
      {geometry(2, 10, 9, 4, 10, 7, 1, 3, 1, 1), "7x7: the biggest per-tap walk"},
      {geometry(1, 12, 11, 3, 8, 9, 1, 4, 1, 1), "9x9: border tiles gathered"},
  };
  for (const C& c : cases) {
    INFO(c.what);
    REQUIRE(conv_algorithm(c.g) == ConvAlgorithm::im2col);
    check_conv_kernel(c.g, true);
    check_conv_kernel(c.g, false);
  }
  // Non-square kernels with one-sided padding, and a strided 1x1 (one tap, never padded).
  WindowGeometry wide = geometry(1, 6, 11, 5, 12, 1, 1, 0, 1, 1);
  wide.kernel_w = 5, wide.pad_left = 3, wide.out_w = 11 + 3 - 4;
  WindowGeometry tall = geometry(2, 9, 5, 8, 16, 1, 1, 0, 1, 1);
  tall.kernel_h = 4, tall.pad_top = 2, tall.stride_h = 2, tall.out_h = (9 + 2 - 3 - 1) / 2 + 1;
  for (const WindowGeometry& g : {wide, tall, geometry(1, 9, 9, 16, 24, 1, 2, 0, 1, 1)}) {
    REQUIRE(conv_algorithm(g) == ConvAlgorithm::im2col);
    check_conv_kernel(g, true);
  }
  // Pixels further apart than C: interior rows cannot merge their taps into one run.
  check_conv_kernel(geometry(1, 6, 8, 16, 16, 3, 1, 1, 1, 1), true, EpilogueCase{}, 5);
  check_conv_kernel(geometry(1, 6, 8, 3, 16, 3, 2, 1, 1, 1), true, EpilogueCase{}, 1);
}

namespace {

/// A depthwise geometry with its own kernel height and per-axis stride, padding and dilation.
WindowGeometry depthwise_geometry(index_t n, index_t h, index_t w, index_t c, int kh, int sh, int dh, int pad_top,
                                  int pad_left, int pad_right) {
  WindowGeometry g = geometry(n, h, w, c, c, 3, 1, 0, 1, static_cast<int>(c));
  g.kernel_h = kh;
  g.stride_h = sh;
  g.dilation_h = dh;
  g.pad_top = pad_top;
  g.pad_left = pad_left;
  g.out_h = (h + 2 * pad_top - (kh - 1) * dh - 1) / sh + 1;
  g.out_w = w + pad_left + pad_right - 2;
  return g;
}

}  // namespace

TEST_CASE("depthwise kernel: 3-wide stride-1 rows streamed, in row pairs and runs, at every border") {
  // The streamed path (DepthwiseStream3): 1, 2 or 3 kernel rows inside the input, two output rows
  // at once where both see all three, runs of pixels shorter than the row (C = 64 and 128: runs of
  // 16 and 8 pixels), channel counts that are not a multiple of the vector width (the last vector
  // overlaps the previous one), left/right padding 0..2, inputs narrower than the window, and
  // the geometries it leaves to the generic path (kernel_h 5, pad_left 3).
  const WindowGeometry cases[] = {
      depthwise_geometry(1, 7, 40, 64, 3, 1, 1, 1, 1, 1),     // odd rows: pairs and a single row
      depthwise_geometry(1, 4, 37, 128, 3, 1, 1, 1, 1, 1),    // runs of 8 pixels, a short last run
      depthwise_geometry(2, 5, 19, 12, 3, 1, 1, 1, 1, 1),     // C = 12: one vector + an overlapping one
      depthwise_geometry(1, 6, 11, 9, 3, 1, 1, 0, 0, 0),      // no padding ("valid")
      depthwise_geometry(1, 6, 11, 17, 3, 1, 1, 2, 2, 2),     // padding 2: rows with one kernel row
      depthwise_geometry(1, 5, 10, 8, 3, 1, 1, 1, 2, 0),      // asymmetric left/right padding
      depthwise_geometry(1, 4, 1, 16, 3, 1, 1, 1, 1, 1),      // one input column
      depthwise_geometry(1, 4, 2, 16, 3, 1, 1, 1, 2, 2),      // two input columns, wide padding
      depthwise_geometry(1, 9, 13, 24, 3, 2, 1, 1, 1, 1),     // stride 2 along H: no pairs
      depthwise_geometry(1, 9, 13, 24, 3, 1, 2, 2, 1, 1),     // dilation 2 along H: no pairs
      depthwise_geometry(1, 6, 12, 16, 2, 1, 1, 0, 1, 1),     // kernel 2x3
      depthwise_geometry(1, 6, 12, 16, 1, 1, 1, 0, 1, 1),     // kernel 1x3
      depthwise_geometry(1, 8, 12, 16, 5, 1, 1, 2, 1, 1),     // kernel 5x3: generic path
      depthwise_geometry(1, 5, 12, 16, 3, 1, 1, 1, 3, 3),     // pad_left 3: generic path
  };
  for (const WindowGeometry& g : cases) {
    INFO("depthwise " << g.batch << "x" << g.in_h << "x" << g.in_w << "x" << g.in_c << ", kernel " << g.kernel_h
                      << "x3, stride_h " << g.stride_h << ", dilation_h " << g.dilation_h << ", pad top/left "
                      << g.pad_top << "/" << g.pad_left << ", out " << g.out_h << "x" << g.out_w);
    REQUIRE(conv_algorithm(g) == ConvAlgorithm::depthwise);
    for (bool prepack : {false, true}) check_conv_kernel(g, prepack);
  }
}

TEST_CASE("pool kernels: max and average around the vector width, with padding") {
  for (index_t c : {1, 3, 8, 9, 33}) {
    WindowGeometry g = geometry(2, 7, 6, c, c, 3, 2, 1, 1, 1);
    const auto x = random_vec(static_cast<std::size_t>(2 * 7 * 6 * c), 7);
    std::vector<float> mx(static_cast<std::size_t>(g.rows() * c)), av(mx.size()), avx(mx.size());
    const NhwcIn in = dense_nhwc(x.data(), 7, 6, c);
    max_pool2d(g, in, mx.data());
    avg_pool2d(g, in, true, av.data());
    avg_pool2d(g, in, false, avx.data());
    for (index_t r = 0; r < g.rows(); ++r) {
      const index_t ow = r % g.out_w, oh = (r / g.out_w) % g.out_h, n = r / (g.out_w * g.out_h);
      for (index_t k = 0; k < c; ++k) {
        double m = -1e30, s = 0;
        int taps = 0;
        for (int i = 0; i < 3; ++i)
          for (int j = 0; j < 3; ++j) {
            const index_t ih = oh * 2 - 1 + i, iw = ow * 2 - 1 + j;
            if (ih < 0 || ih >= 7 || iw < 0 || iw >= 6) continue;
            const double v = x[static_cast<std::size_t>(((n * 7 + ih) * 6 + iw) * c + k)];
            m = std::max(m, v);
            s += v;
            ++taps;
          }
        const std::size_t at = static_cast<std::size_t>(r * c + k);
        CHECK(mx[at] == static_cast<float>(m));
        CHECK(std::fabs(av[at] - s / 9) <= 1e-6);
        CHECK(std::fabs(avx[at] - s / taps) <= 1e-6);
      }
    }
  }
}

TEST_CASE("pad2d and upsample_nearest2d read strided pixels") {
  // Input pixels strided (every other W column of a wider buffer): the row memcpy fast path is off.
  const index_t N = 2, H = 3, W = 4, C = 5;
  const auto buf = random_vec(static_cast<std::size_t>(N * H * 2 * W * C), 9);
  const NhwcIn x{buf.data(), H * 2 * W * C, 2 * W * C, 2 * C};
  std::vector<float> p(static_cast<std::size_t>(N * (H + 1) * (W + 3) * C));
  pad2d(x, N, H, W, C, 1, 0, 2, 1, 7.f, p.data());
  std::vector<float> u(static_cast<std::size_t>(N * H * 2 * W * 3 * C));
  upsample_nearest2d(x, N, H, W, C, 2, 3, u.data());
  for (index_t n = 0; n < N; ++n)
    for (index_t c = 0; c < C; ++c) {
      for (index_t h = 0; h < H + 1; ++h)
        for (index_t w = 0; w < W + 3; ++w) {
          const bool inside = h >= 1 && w >= 2 && w < W + 2;
          const float want = inside ? x.at(n, h - 1, w - 2)[c] : 7.f;
          CHECK(p[static_cast<std::size_t>(((n * (H + 1) + h) * (W + 3) + w) * C + c)] == want);
        }
      for (index_t h = 0; h < 2 * H; ++h)
        for (index_t w = 0; w < 3 * W; ++w)
          CHECK(u[static_cast<std::size_t>(((n * 2 * H + h) * 3 * W + w) * C + c)] == x.at(n, h / 2, w / 3)[c]);
    }
}

namespace {

/// Bias + clamp [-0.5, 0.75] + tail; nothing; bias + ReLU; bias + clamp [0, 0.5] (both bounds bite).
std::vector<EpilogueCase> epilogue_variants() {
  EpilogueCase plain, relu, clamp;
  plain.bias = plain.clamp = plain.tail = false;
  relu.tail = clamp.tail = false;
  relu.lo = clamp.lo = 0.f;
  relu.hi = std::numeric_limits<float>::infinity();
  clamp.hi = 0.5f;
  return {EpilogueCase{}, plain, relu, clamp};
}

}  // namespace

TEST_CASE("depthwise kernel: groups of 1-4 output rows, odd widths and channel counts, every epilogue") {
  // Stride-1 3x3 rows are streamed in groups of up to four output rows (two where the target has
  // 16 vector registers) while every row of the group sees all three kernel rows: heights 1..9
  // with "same" padding give every mix of groups and border rows, widths 1..9 every border case
  // of a run, and C = 3 (narrower than a vector: generic path), 12 and 20 (a last vector that
  // overlaps the previous one). Each with every epilogue_variants().
  const auto epilogues = epilogue_variants();
  for (index_t c : {3, 12, 20})
    for (index_t h = 1; h <= 9; ++h)
      for (index_t w = 1; w <= 9; ++w) {
        const WindowGeometry g = depthwise_geometry(1, h, w, c, 3, 1, 1, 1, 1, 1);
        INFO("depthwise 1x" << h << "x" << w << "x" << c);
        for (const EpilogueCase& e : epilogues) check_conv_kernel(g, true, e);
      }
  // Rows wider than one run (64 pixels: two runs of 35), two images, C = 64, no padding on top.
  const WindowGeometry wide[] = {depthwise_geometry(2, 11, 70, 64, 3, 1, 1, 1, 1, 1),
                                 depthwise_geometry(1, 10, 66, 24, 3, 1, 1, 0, 0, 0)};
  for (const WindowGeometry& g : wide)
    for (const EpilogueCase& e : epilogues) check_conv_kernel(g, false, e);
  // Pixels 5 floats further apart than C (an input view): the streams step by the pixel stride.
  check_conv_kernel(depthwise_geometry(1, 9, 13, 24, 3, 1, 1, 1, 1, 1), true, EpilogueCase{}, 5);
  // More channels than kDepthwiseLongStreamChannels: row pairs only.
  const index_t wide_c = conv_detail::kDepthwiseLongStreamChannels + 8;
  check_conv_kernel(depthwise_geometry(1, 7, 6, wide_c, 3, 1, 1, 1, 1, 1), true);
}

TEST_CASE("depthwise kernel: 3x3 stride 2 streamed, odd sizes, every padding, epilogue variants") {
  // DepthwiseStream3Stride2: pixel p reads columns 2p - pad .. 2p - pad + 2. Odd and even input
  // sizes 1..9 (the last pixel's window ends inside, on, or past the input), left/right padding
  // 0..2 (pad 2: the first pixel's middle column is padding), stride 2 along H too (row pairs
  // sharing an input row, and a single last row) or stride 1 along H, C = 3 (generic path), 12, 20.
  const auto epilogues = epilogue_variants();
  auto stride2 = [](index_t h, index_t w, index_t c, int sh, int pad_top, int pad_left, int pad_right) {
    WindowGeometry g = depthwise_geometry(1, h, w, c, 3, sh, 1, pad_top, pad_left, pad_right);
    g.stride_w = 2;
    g.out_w = (w + pad_left + pad_right - 3) / 2 + 1;
    return g;
  };
  for (index_t c : {3, 12, 20})
    for (index_t h = 1; h <= 9; h += 2)
      for (index_t w = 1; w <= 9; ++w)
        for (int pad : {0, 1, 2}) {
          if (w + 2 * pad < 3 || h + 2 < 3) continue;
          for (int sh : {2, 1}) {
            const WindowGeometry g = stride2(h + (w % 2), w, c, sh, 1, pad, pad);
            if (g.out_w < 1 || g.out_h < 1) continue;
            INFO("depthwise stride 2: 1x" << g.in_h << "x" << w << "x" << c << ", stride_h " << sh << ", pad left/right "
                                          << pad);
            REQUIRE(conv_algorithm(g) == ConvAlgorithm::depthwise);
            for (const EpilogueCase& e : epilogues) check_conv_kernel(g, true, e);
          }
        }
  // TF "same" padding of an even input (pad 0 left, 1 right), MobileNet-like sizes, two images,
  // a dilated H (no row pairs), and 5x5 (generic path: no stride-2 stream).
  WindowGeometry dilated = stride2(13, 14, 24, 2, 2, 0, 1);
  dilated.dilation_h = 2;
  dilated.out_h = (13 + 4 - 4 - 1) / 2 + 1;
  WindowGeometry five = geometry(1, 11, 12, 16, 16, 5, 2, 2, 1, 16);
  const WindowGeometry more[] = {stride2(16, 16, 32, 2, 0, 0, 1), stride2(15, 29, 64, 2, 1, 1, 1), dilated, five};
  for (WindowGeometry g : more)
    for (const EpilogueCase& e : epilogues) check_conv_kernel(g, false, e);
  WindowGeometry two = stride2(10, 11, 16, 2, 1, 1, 1);
  two.batch = 2;
  check_conv_kernel(two, true);
  check_conv_kernel(stride2(9, 13, 20, 2, 1, 1, 1), true, EpilogueCase{}, 3);  // strided pixels
  // Up to kDepthwiseLongStreamChannels channels streamed, more through the register blocks.
  for (index_t c : {conv_detail::kDepthwiseLongStreamChannels, conv_detail::kDepthwiseLongStreamChannels + 8})
    check_conv_kernel(stride2(7, 9, c, 2, 1, 1, 1), true);
}
