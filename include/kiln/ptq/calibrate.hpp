// kiln/ptq/calibrate.hpp — observe every value of a float graph on calibration samples.
//
// Post-training quantisation needs, for each activation, the real range its int8 version must
// cover. The traced float graph is interpreted node by node on each sample (trace/interpret.hpp:
// every intermediate materialised) and each f32 value's range is recorded: its min and max, and
// with Calibration::percentile a subsample of its values, from which the range is the
// (100 - p)th .. pth percentile (clipping rare outliers for a finer scale). Host only.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "../trace/interpret.hpp"

namespace kiln::ptq {

enum class Calibration : std::uint8_t { min_max, percentile };

/// The real range a value was observed in.
struct Range {
  float lo = std::numeric_limits<float>::infinity();
  float hi = -std::numeric_limits<float>::infinity();
  constexpr bool seen() const { return lo <= hi; }
};

/// Per-tensor asymmetric int8 parameters covering [lo, hi] (widened to contain 0, so a real 0 is
/// exact): scale (hi - lo) / 255, zero point -128 - lo / scale rounded (TFLite's converter).
inline QuantParams quant_for_range(Range r) {
  const float lo = std::min(r.seen() ? r.lo : 0.f, 0.f), hi = std::max(r.seen() ? r.hi : 0.f, 0.f);
  float scale = (hi - lo) / 255.f;
  if (!(scale > 0.f) || !std::isfinite(scale)) scale = 1.f / 255.f;  // a constant-zero value
  const double zp = std::round(-128.0 - static_cast<double>(lo) / scale);
  return QuantParams{scale, static_cast<std::int32_t>(std::clamp(zp, -128.0, 127.0))};
}

/// Ranges of every node of a float graph over calibration samples.
class Observer {
 public:
  /// `keep` values per node and sample for the percentile option (0: min/max only).
  Observer(const Graph& g, std::size_t keep) : g_(g), keep_(keep), ranges_(static_cast<std::size_t>(g.size())),
                                                samples_(keep ? static_cast<std::size_t>(g.size()) : 0) {}

  /// Runs the graph on one sample (dense data of each graph input) and records every f32 value.
  void observe(const void* const* inputs) {
    detail::Interpreter run(g_);
    run.run(inputs);
    for (int id = 0; id < g_.size(); ++id) {
      const Node& n = g_[id];
      if (n.dtype != DType::f32 || n.op == Op::constant || n.op == Op::parameter || n.op == Op::scalar) continue;
      const auto* v = static_cast<const float*>(run.value(id));
      const index_t count = n.shape.numel();
      Range& r = ranges_[static_cast<std::size_t>(id)];
      for (index_t i = 0; i < count; ++i) {
        r.lo = std::min(r.lo, v[i]);
        r.hi = std::max(r.hi, v[i]);
      }
      if (keep_ == 0 || count == 0) continue;
      const index_t step = std::max<index_t>(1, count / static_cast<index_t>(keep_));
      std::vector<float>& s = samples_[static_cast<std::size_t>(id)];
      for (index_t i = 0; i < count; i += step) s.push_back(v[i]);
    }
  }

  /// The observed range of node `id`: min/max, or the percentile range of the kept values.
  Range range(int id, Calibration c, double percentile) const {
    const Range mm = ranges_[static_cast<std::size_t>(id)];
    if (c == Calibration::min_max || samples_.empty()) return mm;
    std::vector<float> s = samples_[static_cast<std::size_t>(id)];
    if (s.empty()) return mm;
    auto at = [&](double p) {
      const auto k = static_cast<std::size_t>(std::llround(p / 100.0 * static_cast<double>(s.size() - 1)));
      std::nth_element(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(k), s.end());
      return s[k];
    };
    return Range{at(100.0 - percentile), at(percentile)};
  }

 private:
  const Graph& g_;
  std::size_t keep_;
  std::vector<Range> ranges_;
  std::vector<std::vector<float>> samples_;
};

}  // namespace kiln::ptq
