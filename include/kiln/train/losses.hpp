// kiln/train/losses.hpp — loss functions built from kiln ops (PyTorch semantics, mean reduction).
//
// Each loss is an ordinary composition of front-end ops, so it traces, fuses (the elementwise
// part joins the reduction's group) and differentiates (kiln::grad) like model code, and runs
// eagerly on concrete tensors. Every loss returns a single value of shape [] (rank 0).
#pragma once

#include <vector>

#include "../ops.hpp"

namespace kiln {

/// Mean of all elements, as a rank-0 value.
template <class A, std::enable_if_t<detail::is_tensor_v<A>, int> = 0>
auto mean_all(const A& a) {
  return mean(reshape(a, Shape{-1}), 0);
}
/// Sum of all elements, as a rank-0 value.
template <class A, std::enable_if_t<detail::is_tensor_v<A>, int> = 0>
auto sum_all(const A& a) {
  return sum(reshape(a, Shape{-1}), 0);
}

/// torch.nn.functional.mse_loss(pred, target) (reduction "mean"): mean((pred - target)^2).
/// Shapes broadcast like the subtraction (torch warns, then does the same).
template <class P, class T, std::enable_if_t<detail::is_tensor_v<P> && detail::is_tensor_v<T>, int> = 0>
auto mse_loss(const P& pred, const T& target) {
  const auto d = pred - target;
  return mean_all(d * d);
}

/// torch.nn.functional.cross_entropy(logits, target) with class-probability targets (reduction
/// "mean"): -sum_c target * log_softmax(logits) over the class axis, averaged over every other
/// element. logits and target have the same shape: [C] or [N, C, d1, ...] (class axis 1, as torch).
/// Integer class labels: the IR has no gather, so pass one_hot(labels, C) — for one-hot targets
/// this is exactly torch's cross_entropy(logits, labels). log_softmax keeps it stable for any
/// logits.
template <class L, class T, std::enable_if_t<detail::is_tensor_v<L> && detail::is_tensor_v<T>, int> = 0>
auto cross_entropy(const L& logits, const T& target) {
  const int class_axis = logits.shape().rank() == 1 ? 0 : 1;
  return -mean_all(sum(target * log_softmax(logits, class_axis), class_axis));
}

/// torch.nn.functional.binary_cross_entropy_with_logits(x, y) (reduction "mean"):
/// mean(max(x, 0) - x y + log(1 + exp(-|x|))), which never overflows. Its gradient is
/// (sigmoid(x) - y) / n, also at x = 0 (maximum splits a tie evenly, |x|' = 0 there).
template <class X, class Y, std::enable_if_t<detail::is_tensor_v<X> && detail::is_tensor_v<Y>, int> = 0>
auto binary_cross_entropy_with_logits(const X& x, const Y& y) {
  return mean_all(maximum(x, 0.f) - x * y + log(exp(-abs(x)) + 1.f));
}

/// One-hot rows for integer class labels: [n, classes], 1 at (i, labels[i]). A label outside
/// [0, classes) is an error (empty result).
inline Tensor<float> one_hot(const std::vector<int>& labels, int classes) {
  Tensor<float> t(Shape{static_cast<index_t>(labels.size()), classes});
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] < 0 || labels[i] >= classes) {
      fail(Status(Errc::invalid_argument) << "one_hot: label " << labels[i] << " at " << static_cast<long long>(i)
                                          << " outside [0, " << classes << ')');
      return Tensor<float>();
    }
    t.data()[i * static_cast<std::size_t>(classes) + static_cast<std::size_t>(labels[i])] = 1.f;
  }
  return t;
}

}  // namespace kiln
