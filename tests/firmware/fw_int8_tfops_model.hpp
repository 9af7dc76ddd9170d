// The int8 TFLite operators (qmul, qlogistic, qtanh, qhard_swish, qmean, qpad, qslice, qconcat) in
// one small model, and the same computation as direct kernel calls with the parameters TFLite's
// Prepare derives from each tensor's quantisation. Shared by tests/test_static_run_int8_tfops.cpp
// (host: eager, compile(), the static runner) and fw_int8_tfops.cpp (the static runner on a
// Cortex-M4F): no heap, fixed-size arrays.
#pragma once

#include <kiln/kiln.hpp>

#include <cstdint>

namespace tfops {

using kiln::QuantParams;
inline constexpr QuantParams kIn{0.06f, 5}, kHs{0.05f, -40}, kMean{0.045f, -30}, kMul{0.004f, -100}, kCat{0.009f, 2};
inline constexpr kiln::index_t kInputSize = 1 * 4 * 5 * 3, kOutputSize = 1 * 12 * 3 * 3;

inline constexpr auto model = [](auto x) {  // x i8 [1, 4, 5, 3] with kIn
  auto q = kiln::as_quantized(x, kIn);
  auto lg = kiln::qlogistic(q);                                        // 1/256, -128
  auto th = kiln::qtanh(q);                                            // 1/128, 0
  auto hs = kiln::qhard_swish(q, kHs);
  auto m = kiln::qmean(hs, kiln::axes_mask({1, 2}), kMean, true);     // [1, 1, 1, 3]
  auto mul = kiln::qmul(lg, m, kMul, kiln::FusedActivation::relu());  // broadcast -> [1, 4, 5, 3]
  auto pad = kiln::qpad(mul, 1, 1, 2);                                 // [1, 7, 5, 3]
  auto sl = kiln::qslice(pad, 2, 4, 3, -2);                            // [1, 7, 3, 3]: columns 4, 2, 0
  auto tr = kiln::qslice(kiln::permute(th, {0, 2, 1, 3}), 2, 3, 3, -1);  // strided input, [1, 5, 3, 3]
  return kiln::qconcat(sl, tr, 1, kCat);                               // [1, 12, 3, 3], both requantised
};

/// The model, kernel by kernel; false if a kernel refuses its arguments.
inline bool direct(const std::int8_t* x, std::int8_t* y) {
  namespace k8 = kiln::kernels::int8;
  namespace q = kiln::quant;
  auto tq = [](QuantParams p) { return q::TensorQuant{p.scale, p.zero_point}; };
  const kiln::Shape s{1, 4, 5, 3};
  constexpr kiln::index_t n = kInputSize;
  bool ok = true, prep = false;
  std::int8_t lg[n], th[n], hs[n], m[3], mul[n], pad[7 * 5 * 3], sl[7 * 3 * 3], tr[n], tsl[5 * 3 * 3];
  ok &= k8::unary(k8::make_sigmoid_params(k8::UnaryFn::logistic, kIn.scale, kIn.zero_point, prep), x, lg, n).ok() && prep;
  ok &= k8::unary(k8::make_sigmoid_params(k8::UnaryFn::tanh, kIn.scale, kIn.zero_point, prep), x, th, n).ok() && prep;
  ok &= k8::unary(k8::make_hard_swish_params(kIn.scale, kIn.zero_point, kHs.scale, kHs.zero_point, prep), x, hs, n).ok() &&
        prep;
  ok &= k8::mean(k8::make_mean_params(tq(kHs), tq(kMean), 0b110u, 20), s, hs, m).ok();
  const k8::MulParams mp = k8::make_mul_params(tq(kiln::kLogisticOutputQuant), tq(kMean), tq(kMul),
                                               q::activation_range(q::Activation::relu, tq(kMul)));
  for (kiln::index_t i = 0; i < n; ++i) mul[i] = k8::mul_one(mp, lg[i], m[i % 3]);
  ok &= k8::pad_axis(s, 1, 1, 2, static_cast<std::int8_t>(kMul.zero_point), mul, pad).ok();
  ok &= k8::slice_axis({1, 7, 5, 3}, 2, 4, -2, 3, pad, sl).ok();
  for (int h = 0; h < 4; ++h)  // permute {0, 2, 1, 3}: [1, 5, 4, 3]
    for (int w = 0; w < 5; ++w)
      for (int c = 0; c < 3; ++c) tr[(w * 4 + h) * 3 + c] = th[(h * 5 + w) * 3 + c];
  ok &= k8::slice_axis({1, 5, 4, 3}, 2, 3, -1, 3, tr, tsl).ok();
  ok &= k8::concat2({1, 7, 3, 3}, sl, k8::make_requant(tq(kMul), tq(kCat)), {1, 5, 3, 3}, tsl,
                    k8::make_requant(tq(kiln::kTanhOutputQuant), tq(kCat)), 1, y)
            .ok();
  return ok;
}

}  // namespace tfops
