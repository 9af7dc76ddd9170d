// kiln/trace/parameter.hpp — kiln::Parameter: a trainable tensor.
//
// A Parameter owns its f32 values like a Tensor and is used in model code like one. Traced, it
// becomes an Op::parameter leaf bound to its buffer by pointer: never a constant (so never
// folded, never prepacked once-and-for-all, never merged with another tensor of equal contents),
// and kiln::assign(p, value) may give it a new value at the end of the step (Graph::add_update).
// A compiled model reads and writes the Parameter's own memory: it must outlive the model.
#pragma once

#include "../core/tensor.hpp"

namespace kiln {

class Parameter {
 public:
  using value_type = float;
  Parameter() = default;
  explicit Parameter(const Shape& shape) : value_(shape) {}
  explicit Parameter(Tensor<float> initial) : value_(std::move(initial)) {}

  float* data() { return value_.data(); }
  const float* data() const { return value_.data(); }
  const Shape& shape() const { return value_.shape(); }
  int rank() const { return value_.rank(); }
  index_t size() const { return value_.size(); }
  float& operator[](index_t i) { return value_[i]; }
  float operator[](index_t i) const { return value_[i]; }
  /// The current values (a copy is a snapshot).
  const Tensor<float>& value() const { return value_; }
  Tensor<float>& value() { return value_; }

 private:
  Tensor<float> value_;
};

}  // namespace kiln
