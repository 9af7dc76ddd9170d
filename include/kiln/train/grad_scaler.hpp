// kiln/train/grad_scaler.hpp — loss-scaled mixed precision (torch.cuda.amp.GradScaler's rules).
//
// Mixed precision keeps FP32 master weights (the kiln::Parameters) and computes the forward with
// weights and activations rounded to FP16 or BF16 (kiln::round_f16 / round_bf16 where the model
// stores them). Gradients in FP16 underflow: the loss is multiplied by a large scale before the
// backward and the gradients divided by it after. Too large a scale overflows instead: the step is
// then skipped, and the scale shrinks; after `growth_interval` good steps in a row it grows.
//
// Inside a traced step:
//   auto [grads, finite] = scaler.grad(loss, w1, b1, w2, b2);   // scaled backward, unscaled grads
//   { kiln::UpdateGate gate(finite); opt.step(grads); }         // skipped in the graph if not finite
//   return std::make_tuple(loss, finite);
// and after each call, on the host: scaler.update(finite_value).
// The scale is a Parameter read by the graph: changing it never re-traces the step.
#pragma once

#include <tuple>
#include <utility>

#include "optim.hpp"

namespace kiln {

/// How the scaled gradients are stored before unscaling: FP32 (no rounding), or rounded to FP16 /
/// BF16 (overflow to inf as the real formats do, which is what dynamic scaling reacts to).
enum class GradStorage : std::uint8_t { f32, f16, bf16 };

struct GradScalerOptions {
  float init_scale = 65536.f;  // 2^16, torch's default
  float growth_factor = 2.f;
  float backoff_factor = 0.5f;
  int growth_interval = 2000;
  GradStorage storage = GradStorage::f16;
};

class GradScaler {
 public:
  explicit GradScaler(GradScalerOptions o = {}) : o_(o), scale_(Shape()) { scale_[0] = o.init_scale; }

  /// Gradients of loss * scale with respect to `params`, stored as GradStorage says and divided
  /// by the scale, and a rank-0 mask: 1 when every gradient is finite, else 0.
  template <class L, class... P>
  auto grad(const L& loss, P&... params) {
    const auto s = detail::lift(scale_, loss);
    const auto scaled = kiln::grad(loss * s, params...);
    return unscale(scaled, s, std::index_sequence_for<P...>{});
  }

  /// After a step, with the value of the mask grad() returned: a step with a non-finite gradient
  /// backs off the scale and restarts the count; growth_interval finite steps in a row grow it.
  /// Returns whether the step was applied.
  bool update(float finite) {
    const bool ok = finite != 0.f;
    if (!ok) {
      scale_[0] *= o_.backoff_factor;
      good_steps_ = 0;
      ++skipped_;
    } else if (++good_steps_ >= o_.growth_interval) {
      scale_[0] *= o_.growth_factor;
      good_steps_ = 0;
    }
    return ok;
  }
  float scale() const { return scale_[0]; }
  long skipped_steps() const { return skipped_; }

 private:
  template <class G>
  G stored(const G& g) const {
    switch (o_.storage) {
      case GradStorage::f16: return round_f16(g);
      case GradStorage::bf16: return round_bf16(g);
      case GradStorage::f32: break;
    }
    return g;
  }
  template <class Tuple, class S, std::size_t... I>
  auto unscale(const Tuple& scaled, const S& s, std::index_sequence<I...>) const {
    const Tuple kept{stored(std::get<I>(scaled))...};
    return std::make_pair(Tuple{std::get<I>(kept) / s...}, detail::all_finite(kept));
  }

  GradScalerOptions o_;
  Parameter scale_;
  int good_steps_ = 0;
  long skipped_ = 0;
};

}  // namespace kiln
