// kiln/train/optim.hpp — SGD, Adam and AdamW with torch.optim's update rules.
//
// An optimiser holds pointers to the kiln::Parameters it trains and owns their state (momentum
// buffers, moments, the step counter) as Parameters too. opt.step(grads) is called inside the
// traced training step with the tuple kiln::grad returned (same order as the parameters): it
// emits the update as elementwise nodes and kiln::assign's every parameter and state tensor, so
// a compiled step is one graph — forward, backward, update — fused and planned once, and each
// call trains in place. The step counter is state, not a trace-time constant, so Adam's bias
// corrections (1 - beta^t, computed in the graph as 1 - exp(t ln beta)) stay right on every call
// of the same plan. Hyper-parameters are baked into the trace: after changing one, reset() the
// compiled step.
//
// Non-finite steps: by default (NonFinite::error) the whole update — parameters, moments, step
// counter — is gated in the graph on "every gradient is finite", so a NaN or Inf step changes
// nothing, and the caller of the step gets an Errc::non_finite error naming the op where the
// first non-finite value appeared (trace/nonfinite.hpp); NonFinite::skip skips silently and
// counts; NonFinite::apply is torch.optim's behaviour (no check, the NaN reaches the weights).
// The check is one reduction over the gradients per step. Under an outer kiln::UpdateGate
// (GradScaler's, which expects overflowing steps and skips them itself) the update is gated on
// both and no error is raised.
#pragma once

#include <cmath>
#include <initializer_list>
#include <memory>
#include <tuple>
#include <vector>

#include "../trace/grad.hpp"
#include "../trace/nonfinite.hpp"
#include "losses.hpp"

namespace kiln {

namespace detail {

/// Calls f(i, grad_i) for each element of a tuple of gradients.
template <class Tuple, class F, std::size_t... I>
void each_grad(const Tuple& grads, F&& f, std::index_sequence<I...>) {
  (f(I, std::get<I>(grads)), ...);
}

/// A Parameter as an operand in the same mode as `like`: a SymTensor of like's trace when
/// tracing (ops on Parameters and numbers alone would otherwise run eagerly at trace time), the
/// Parameter itself when eager.
template <class Like>
auto lift(Parameter& p, const Like& like) {
  if constexpr (is_sym_v<Like>) {
    Tracer* t = like.tracer();
    return t ? SymTensor(t, node_in(*t, p)) : SymTensor();
  } else {
    (void)like;
    return TensorView<const float>(p.data(), p.shape());
  }
}

/// State tensors owned by an optimiser: one per parameter, zeros of its shape.
inline std::vector<std::unique_ptr<Parameter>> zeros_like(const std::vector<Parameter*>& params) {
  std::vector<std::unique_ptr<Parameter>> out;
  for (const Parameter* p : params) out.push_back(std::make_unique<Parameter>(p->shape()));
  return out;
}

/// 1 (rank 0, boolean) when every element of every gradient (and of `also`, rank 0, when given)
/// is finite, else 0. g * 0 is 0 for a finite g and NaN for NaN or Inf, so the sum of all of
/// them is 0 exactly when all are finite.
template <class Tuple, class Also, std::size_t... I>
auto all_finite(const Tuple& grads, const Also* also, std::index_sequence<I...>) {
  auto zeros = (sum(reshape(std::get<I>(grads) * 0.f, Shape{-1}), 0) + ...);
  return also ? eq(zeros + *also * 0.f, 0.f) : eq(zeros, 0.f);
}
template <class... G>
auto all_finite(const std::tuple<G...>& grads) {
  using First = std::tuple_element_t<0, std::tuple<G...>>;
  return all_finite(grads, static_cast<const First*>(nullptr), std::index_sequence_for<G...>{});
}

}  // namespace detail

/// What an optimiser does with a step whose gradients are not all finite (see the header comment).
enum class NonFinite : std::uint8_t {
  error,  ///< skip the update (parameters and state unchanged) and report Errc::non_finite
  skip,   ///< skip the update silently; skipped_steps() counts it
  apply,  ///< no check: apply the update whatever it holds (torch.optim)
};

namespace detail {

/// The non-finite policy of one optimiser: its step flag, its skipped-step counter, and the gate
/// around its update.
class StepGuard {
 public:
  explicit StepGuard(NonFinite policy) : policy_(policy), flag_(Shape()), skipped_(Shape()) { flag_[0] = 1.f; }

  /// Runs `update` (the optimiser's assign calls) gated as the policy says.
  template <class... G, class Update>
  void gated(const std::tuple<G...>& grads, Update&& update) {
    using Anchor = std::remove_cv_t<std::remove_reference_t<decltype(std::get<0>(grads))>>;
    if constexpr (is_sym_v<Anchor>) {
      Tracer* t = std::get<0>(grads).tracer();
      if (policy_ != NonFinite::apply && t) {
        const SymTensor loss = t->last_loss >= 0 ? SymTensor(t, t->last_loss) : SymTensor();
        const auto finite = all_finite(grads, loss.valid() ? &loss : nullptr, std::index_sequence_for<G...>{});
        const int outer = t->update_gate;  // GradScaler's: it handles overflowing steps itself
        if (policy_ == NonFinite::error && outer < 0) assign_finite_flag(flag_, where(finite, 1.f, 0.f));
        assign(skipped_, lift(skipped_, finite) + where(finite, 0.f, 1.f));
        const SymTensor gate = outer >= 0 ? where(SymTensor(t, outer), where(finite, 1.f, 0.f), 0.f) : finite;
        UpdateGate g(gate);
        update();
        return;
      }
    }
    update();
  }
  /// Steps whose update was skipped for a non-finite gradient (under NonFinite::error or skip).
  long skipped() const { return static_cast<long>(skipped_[0]); }

 private:
  NonFinite policy_;
  Parameter flag_;     // 1 after a finite step, 0 after a skipped one (read by the step's caller)
  Parameter skipped_;  // count of skipped steps, kept by the graph
};

}  // namespace detail

struct SGDOptions {
  float lr = 0.01f;
  float momentum = 0.f;
  float dampening = 0.f;
  float weight_decay = 0.f;
  bool nesterov = false;
  NonFinite on_nonfinite = NonFinite::error;
};

/// torch.optim.SGD: g += wd p; with momentum, buf = g at the first step, then
/// buf = momentum buf + (1 - dampening) g; g = nesterov ? g + momentum buf : buf; p -= lr g.
class SGD {
 public:
  SGD(std::initializer_list<Parameter*> params, SGDOptions o = {})
      : params_(params), o_(o), momentum_(detail::zeros_like(params_)), steps_(Shape()), guard_(o.on_nonfinite) {}

  template <class... G>
  void step(const std::tuple<G...>& grads) {
    if (!check_count(sizeof...(G), params_.size(), "SGD")) return;
    guard_.gated(grads, [&] {
      const auto& anchor = std::get<0>(grads);
      const auto first = eq(detail::lift(steps_, anchor), 0.f);  // torch: buf = g at the first step
      detail::each_grad(grads, [&](std::size_t i, const auto& grad) {
        const auto p = detail::lift(*params_[i], grad);
        if (o_.weight_decay == 0.f) update(i, p, grad, first);
        else update(i, p, grad + p * o_.weight_decay, first);
      }, std::index_sequence_for<G...>{});
      assign(steps_, detail::lift(steps_, anchor) + 1.f);
    });
  }

  const std::vector<Parameter*>& params() const { return params_; }
  /// Steps taken (also state: updated by the graph).
  float steps() const { return steps_[0]; }
  /// Steps skipped for a non-finite gradient (not counted in steps()).
  long skipped_steps() const { return guard_.skipped(); }

 private:
  template <class P, class Grad, class First>
  void update(std::size_t i, const P& p, const Grad& g, const First& first) {
    if (o_.momentum == 0.f) {
      assign(*params_[i], p - g * o_.lr);
      return;
    }
    const auto buf = detail::lift(*momentum_[i], g);
    const auto next = where(first, g, buf * o_.momentum + g * (1.f - o_.dampening));
    assign(*momentum_[i], next);
    if (o_.nesterov) assign(*params_[i], p - (g + next * o_.momentum) * o_.lr);
    else assign(*params_[i], p - next * o_.lr);
  }
  static bool check_count(std::size_t grads, std::size_t params, const char* who) {
    if (grads == params) return true;
    fail(Status(Errc::invalid_argument) << who << ".step: " << static_cast<long long>(grads) << " gradients for "
                                        << static_cast<long long>(params) << " parameters");
    return false;
  }

  std::vector<Parameter*> params_;
  SGDOptions o_;
  std::vector<std::unique_ptr<Parameter>> momentum_;
  Parameter steps_;
  detail::StepGuard guard_;
};

struct AdamOptions {
  float lr = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 0.f;
  NonFinite on_nonfinite = NonFinite::error;
};

/// torch.optim.Adam (decoupled = false: g += wd p) and AdamW (decoupled = true: p *= 1 - lr wd),
/// then m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; with t the new step count,
/// p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps) — eps added after the bias
/// correction of sqrt(v), exactly as torch.optim. (amsgrad and maximize are not implemented.)
class Adam {
 public:
  Adam(std::initializer_list<Parameter*> params, AdamOptions o = {}, bool decoupled = false)
      : params_(params), o_(o), decoupled_(decoupled), m_(detail::zeros_like(params_)), v_(detail::zeros_like(params_)),
        steps_(Shape()), guard_(o.on_nonfinite) {}

  template <class... G>
  void step(const std::tuple<G...>& grads) {
    if (sizeof...(G) != params_.size()) {
      fail(Status(Errc::invalid_argument) << (decoupled_ ? "AdamW" : "Adam") << ".step: "
                                          << static_cast<long long>(sizeof...(G)) << " gradients for "
                                          << static_cast<long long>(params_.size()) << " parameters");
      return;
    }
    guard_.gated(grads, [&] {
      const auto& anchor = std::get<0>(grads);
      auto t = detail::lift(steps_, anchor) + 1.f;
      auto bc1 = 1.f - exp(t * std::log(o_.beta1));  // 1 - beta1^t
      auto bc2 = 1.f - exp(t * std::log(o_.beta2));
      auto step_size = o_.lr / bc1;  // a rank-0 value, broadcast
      auto bc2_sqrt = sqrt(bc2);
      detail::each_grad(
          grads,
          [&](std::size_t i, const auto& grad) {
            const auto p = detail::lift(*params_[i], grad);
            if (o_.weight_decay != 0.f && !decoupled_) update(i, p, grad + p * o_.weight_decay, step_size, bc2_sqrt);
            else update(i, p, grad, step_size, bc2_sqrt);
          },
          std::index_sequence_for<G...>{});
      assign(steps_, t);
    });
  }

  const std::vector<Parameter*>& params() const { return params_; }
  float steps() const { return steps_[0]; }
  /// Steps skipped for a non-finite gradient (not counted in steps()).
  long skipped_steps() const { return guard_.skipped(); }

 private:
  template <class P, class Grad, class S, class B>
  void update(std::size_t i, const P& p, const Grad& g, const S& step_size, const B& bc2_sqrt) {
    const auto m = detail::lift(*m_[i], g);
    const auto v = detail::lift(*v_[i], g);
    auto m_next = m * o_.beta1 + g * (1.f - o_.beta1);
    auto v_next = v * o_.beta2 + g * g * (1.f - o_.beta2);
    auto denom = sqrt(v_next) / bc2_sqrt + o_.eps;
    assign(*m_[i], m_next);
    assign(*v_[i], v_next);
    Parameter& target = *params_[i];
    if (decoupled_ && o_.weight_decay != 0.f)
      assign(target, p * (1.f - o_.lr * o_.weight_decay) - step_size * m_next / denom);
    else assign(target, p - step_size * m_next / denom);
  }

  std::vector<Parameter*> params_;
  AdamOptions o_;
  bool decoupled_;
  std::vector<std::unique_ptr<Parameter>> m_, v_;
  Parameter steps_;
  detail::StepGuard guard_;
};

/// torch.optim.AdamW: Adam with decoupled weight decay (default weight_decay 0.01, as torch).
inline Adam AdamW(std::initializer_list<Parameter*> params,
                  AdamOptions o = {0.001f, 0.9f, 0.999f, 1e-8f, 0.01f, NonFinite::error}) {
  return Adam(params, o, true);
}

}  // namespace kiln
