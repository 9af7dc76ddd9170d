// int8 quantize over arrays (kernels/int8/convert.hpp) equals the element definition of
// quant/quantize.hpp (TFLite's QUANTIZE) bit for bit: over a sweep of float bit
// patterns (every exponent, both signs, NaN and infinities), values at and next to the rounding
// ties, several scales and zero points, lengths that leave every tail size, and short calls.
// Built twice (test_int8_convert with the AVX2 path where available, _scalar with KILN_NO_SIMD).
#include <doctest/doctest.h>

#include <kiln/kernels/int8/convert.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

namespace {

namespace q = kiln::quant;
using kiln::index_t;

std::vector<float> probe_values(q::TensorQuant tq) {
  std::vector<float> v;
  for (std::uint64_t bits = 0; bits <= 0xFFFFFFFFull; bits += 65521) {  // every exponent, both signs
    const auto b = static_cast<std::uint32_t>(bits);
    float f;
    std::memcpy(&f, &b, sizeof f);
    v.push_back(f);
  }
  for (int k = -300; k <= 300; ++k) {  // the ties (k + 1/2) * scale and their float neighbours
    const float tie = (static_cast<float>(k) + 0.5f) * tq.scale;
    v.push_back(tie);
    v.push_back(std::nextafter(tie, 1e30f));
    v.push_back(std::nextafter(tie, -1e30f));
    v.push_back(static_cast<float>(k) * tq.scale);
  }
  for (float f : {0.f, -0.f, std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                  std::numeric_limits<float>::quiet_NaN(), 1e9f * tq.scale, -1e9f * tq.scale, 512.f * tq.scale,
                  -512.5f * tq.scale})
    v.push_back(f);
  return v;
}

}  // namespace

TEST_CASE("quantize over arrays equals quantize_value element by element") {
  for (const q::TensorQuant tq : {q::TensorQuant{0.02f, 3}, q::TensorQuant{1.f, -128}, q::TensorQuant{0.0039215689f, 127},
                                  q::TensorQuant{7.5f, 0}}) {
    const std::vector<float> x = probe_values(tq);
    std::vector<std::int8_t> got(x.size() + 1, 0x5A);
    kiln::kernels::int8::quantize(x.data(), got.data(), static_cast<index_t>(x.size()), tq);
    index_t bad = 0, first = -1;
    for (std::size_t i = 0; i < x.size(); ++i)
      if (got[i] != q::quantize_value(x[i], tq)) {
        if (first < 0) first = static_cast<index_t>(i);
        ++bad;
      }
    INFO("scale " << tq.scale << " zero point " << tq.zero_point << ", first mismatch at " << first);
    CHECK(bad == 0);
    CHECK(got[x.size()] == 0x5A);  // nothing written past the end
  }
  // The probe values through short calls (8..31 long: the 8-wide step and the scalar tail alone, as
  // the elementwise kernel's fused i8 store calls it on short rows).
  {
    const q::TensorQuant tq{0.02f, 3};
    const std::vector<float> x = probe_values(tq);
    index_t bad = 0;
    for (index_t len = 8; len < 32; ++len)
      for (index_t at = 0; at + len <= static_cast<index_t>(x.size()); at += len) {
        std::int8_t got[32];
        kiln::kernels::int8::quantize(x.data() + at, got, len, tq);
        for (index_t i = 0; i < len; ++i) bad += got[i] != q::quantize_value(x[static_cast<std::size_t>(at + i)], tq);
      }
    CHECK(bad == 0);
  }
  // Every tail length of the 32-wide path.
  std::vector<float> x(70);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i) * 0.37f - 12.f;
  for (index_t n = 0; n <= 70; ++n) {
    std::vector<std::int8_t> got(static_cast<std::size_t>(n) + 1, 0x5A);
    kiln::kernels::int8::quantize(x.data(), got.data(), n, {0.1f, -7});
    for (index_t i = 0; i < n; ++i) CHECK(got[static_cast<std::size_t>(i)] == q::quantize_value(x[static_cast<std::size_t>(i)], {0.1f, -7}));
    CHECK(got[static_cast<std::size_t>(n)] == 0x5A);
  }
}

TEST_CASE("quantize_value is TFLite's float rounding: std::round(x / scale) + zero point, saturated") {
  // The reference rounds with the C library's roundf (half away from zero, TfLiteRound); kiln
  // rounds in float by truncation and the exact fraction (no double arithmetic on FPUs without it).
  for (const q::TensorQuant tq : {q::TensorQuant{0.02f, 3}, q::TensorQuant{1.f, -128}, q::TensorQuant{0.0039215689f, 127},
                                  q::TensorQuant{7.5f, 0}, q::TensorQuant{3e-7f, -5}}) {
    index_t bad = 0, checked = 0;
    for (const float x : probe_values(tq)) {
      const float r = x / tq.scale;
      std::int32_t want;
      if (r != r) want = tq.zero_point;
      else if (r >= 1e9f) want = 127;
      else if (r <= -1e9f) want = -128;
      else {
        const long v = static_cast<long>(std::round(r)) + tq.zero_point;
        want = static_cast<std::int32_t>(v < -128 ? -128 : v > 127 ? 127 : v);
      }
      bad += q::quantize_value(x, tq) != want;
      ++checked;
    }
    INFO("scale " << tq.scale << " zero point " << tq.zero_point);
    CHECK(bad == 0);
    CHECK(checked > 60000);
  }
}
