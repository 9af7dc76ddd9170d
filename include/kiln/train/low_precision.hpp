// kiln/train/low_precision.hpp — quantisation-aware and cyclic-precision training.
//
// The pieces Cyclic Precision Training (CPT, shared/seeds/002) is made of, as ordinary graph
// ops, so a compiled training step stays one fused plan:
//   * fake_quantize: symmetric B-bit linear quantisation of weights or activations (max-abs
//     scale, per tensor or per output channel) with the straight-through estimator;
//   * GradientQuantizer: B-bit gradients with stochastic rounding (unbiased) from a seeded
//     generator, so runs are reproducible;
//   * CyclicPrecision: CPT's cosine schedule of B between B_min and B_max over N cycles, and
//     precision_range_test, CPT's way of finding B_min;
//   * count_macs / training_bitops: the cost the schedule saves, in BitOPs.
// The bit width reaches the graph as a number in a kiln::Parameter (its quantisation levels), not
// as a trace-time constant: changing it every step reuses the same compiled plan.
#pragma once

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <random>
#include <tuple>
#include <type_traits>
#include <vector>

#include "optim.hpp"

namespace kiln {

/// Positive levels of a symmetric B-bit quantiser: 2^(B-1) - 1 (127 for 8 bits, 1 for 2 bits).
constexpr float quant_levels(int bits) { return static_cast<float>((1L << (bits - 1)) - 1); }

/// A bit width the graph reads at run time: set() changes it between calls of a compiled step.
class BitWidth {
 public:
  explicit BitWidth(int bits) : levels_(Shape()) { set(bits); }
  void set(int bits) {
    bits_ = bits < 2 ? 2 : (bits > 24 ? 24 : bits);
    levels_[0] = quant_levels(bits_);
  }
  int bits() const { return bits_; }
  /// The quantisation levels as a graph operand (a rank-0 Parameter, never folded).
  Parameter& levels() { return levels_; }

 private:
  Parameter levels_;
  int bits_ = 32;
};

namespace detail {

/// max |x| over all elements (rank 0), or per index of axis 0 shaped to broadcast against x.
template <class X>
auto abs_max(const X& x, bool per_channel) {
  auto a = abs(detach(x));
  if (!per_channel || x.rank() < 2) return max(reshape(a, Shape{-1}), 0);
  Shape keep = Shape::of_rank(x.rank(), 1);
  keep[0] = x.shape()[0];
  return reshape(max(reshape(a, Shape{x.shape()[0], -1}), 1, true), keep);
}

}  // namespace detail

/// Symmetric linear quantisation of x to the given levels (BitWidth::levels(), or a number):
/// scale = max|x| / levels (per tensor, or per index of axis 0 — a weight's output channel —
/// when per_channel), q = round(x / scale) * scale. Forward: q. Backward: the straight-through
/// estimator (the gradient of x passes unchanged; nothing is clipped, since |x / scale| <=
/// levels). An all-zero x stays zero.
template <class X, class L, std::enable_if_t<!std::is_same_v<X, Parameter>, int> = 0>
auto fake_quantize(const X& x, L&& levels, bool per_channel = false) {
  auto lv = [&]() {
    if constexpr (std::is_same_v<std::decay_t<L>, Parameter>) return detail::lift(levels, x);
    else return static_cast<float>(levels);
  }();
  const auto scale = maximum(detail::abs_max(x, per_channel), 1e-30f) / lv;
  const auto q = round(detach(x) / scale) * scale;
  return q + (x - detach(x));  // exactly q forward (x - x = 0); gradient 1 through x
}

/// fake_quantize of a weight: `like` (any tensor of the step, e.g. the layer's input) brings the
/// Parameter into the trace; alone it would be quantised once, at trace time, with no gradient.
template <class Like, class L>
auto fake_quantize(Parameter& w, L&& levels, const Like& like, bool per_channel = true) {
  return fake_quantize(detail::lift(w, like), std::forward<L>(levels), per_channel);
}

/// A quantisation-aware linear layer (CPT's FW precision): input and weight fake-quantised to
/// their bit widths (the weight per output channel), bias in full precision.
template <class X>
auto quantized_linear(const X& x, Parameter& w, Parameter& b, BitWidth& weight_bits, BitWidth& activation_bits) {
  return linear(fake_quantize(x, activation_bits.levels()), fake_quantize(w, weight_bits.levels(), x), detail::lift(b, x));
}

/// B-bit gradients with stochastic rounding: q(g) = floor(g / s + u) s with s = max|g| / levels
/// and u uniform in [0, 1): E[q(g)] = g. The noise lives in one Parameter per trained tensor,
/// drawn again by refill() (call it before each step) from a generator seeded at construction,
/// so a run is reproducible and the compiled step never changes.
class GradientQuantizer {
 public:
  GradientQuantizer(std::initializer_list<Parameter*> params, int bits = 8, std::uint32_t seed = 0)
      : params_(params), width_(bits), rng_(seed) {
    for (const Parameter* p : params_) noise_.push_back(std::make_unique<Parameter>(p->shape()));
    refill();
  }
  /// New uniform noise for the next step.
  void refill() {
    std::uniform_real_distribution<float> u(0.f, 1.f);
    for (auto& n : noise_)
      for (index_t i = 0; i < n->size(); ++i) (*n)[i] = u(rng_);
  }
  BitWidth& width() { return width_; }

  /// The quantised gradients (same order as the parameters given at construction).
  template <class... G>
  std::tuple<G...> operator()(const std::tuple<G...>& grads) {
    return quantise(grads, std::index_sequence_for<G...>{});
  }

 private:
  template <class Tuple, std::size_t... I>
  Tuple quantise(const Tuple& grads, std::index_sequence<I...>) {
    if (sizeof...(I) != noise_.size()) {
      fail(Status(Errc::invalid_argument) << "GradientQuantizer: " << static_cast<long long>(sizeof...(I))
                                          << " gradients for " << static_cast<long long>(noise_.size()) << " parameters");
      return grads;
    }
    return Tuple{one(std::get<I>(grads), I)...};
  }
  template <class G>
  G one(const G& g, std::size_t i) {
    const auto s = maximum(detail::abs_max(g, false), 1e-30f) / detail::lift(width_.levels(), g);
    return floor(g / s + detail::lift(*noise_[i], g)) * s;
  }

  std::vector<Parameter*> params_;
  std::vector<std::unique_ptr<Parameter>> noise_;
  BitWidth width_;
  std::mt19937 rng_;
};

/// CPT's cosine schedule (its equation 1): within each of `cycles` cycles of length
/// T = total_steps / cycles, B_t = round(B_min + (B_max - B_min) (1 - cos(pi (t mod T) / T)) / 2),
/// rising from B_min to just under B_max. N = 32 cycles by default, as in the paper.
struct CyclicPrecision {
  int b_min = 3, b_max = 8;
  int cycles = 32;
  long total_steps = 0;

  int bits_at(long step) const {
    const long period = total_steps / (cycles > 0 ? cycles : 1);
    if (period <= 0) return b_max;
    const double phase = static_cast<double>(step % period) / static_cast<double>(period);
    const double b = b_min + 0.5 * (b_max - b_min) * (1.0 - std::cos(3.14159265358979323846 * phase));
    return static_cast<int>(std::lround(b));
  }
};

struct PrecisionRangeTestOptions {
  int start_bits = 2;
  int max_bits = 8;
  /// The rise in training accuracy over one probe that marks training as working.
  double threshold = 0.05;
};

/// CPT's precision range test: from start_bits up, `probe(bits)` trains a few iterations at that
/// precision and returns how much the training accuracy rose over them; the first precision whose
/// rise exceeds the threshold is B_min (training at least partly converges there). Returns
/// max_bits when none does.
template <class Probe>
int precision_range_test(Probe&& probe, PrecisionRangeTestOptions o = {}) {
  for (int b = o.start_bits; b < o.max_bits; ++b)
    if (probe(b) > o.threshold) return b;
  return o.max_bits;
}

/// Multiply-accumulates of the matmul and conv2d nodes of a graph (a forward pass traced with
/// compile() or plan()).
inline double count_macs(const Graph& g) {
  double macs = 0;
  for (int id = 0; id < g.size(); ++id) {
    const Node& n = g[id];
    if (n.op == Op::matmul) {
      const Shape& a = g[n.inputs[0]].shape;
      macs += static_cast<double>(n.shape.numel()) * static_cast<double>(a.rank() ? a[a.rank() - 1] : 1);
    } else if (n.op == Op::conv2d) {
      const Shape& w = g[n.inputs[1]].shape;  // [out_c, kh, kw, in_c / groups]
      macs += static_cast<double>(n.shape.numel()) * static_cast<double>(w.numel() / (w[0] ? w[0] : 1));
    }
  }
  return macs;
}

/// BitOPs of one training step: the forward GEMMs (weights x activations), and the backward's two
/// (errors x weights for the input gradient, errors x activations for the weight gradient), each
/// MAC costed at the product of its operands' bit widths — CPT's cost measure.
constexpr double training_bitops(double forward_macs, int weight_bits, int activation_bits, int gradient_bits) {
  return forward_macs * (static_cast<double>(weight_bits) * activation_bits +
                         static_cast<double>(gradient_bits) * weight_bits +
                         static_cast<double>(gradient_bits) * activation_bits);
}

}  // namespace kiln
