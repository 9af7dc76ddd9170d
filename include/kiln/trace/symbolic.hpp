// kiln/trace/symbolic.hpp — the tensor a model sees while it is being traced.
//
// A SymTensor is a node id plus the graph being recorded. Every op applied to
// it appends a node instead of computing (TorchDynamo/FX's contract, with C++
// overloads in place of bytecode interpretation). Its shape and dtype are
// known, so model code may branch on them as it would on a real tensor.
#pragma once

#include "../ir/graph.hpp"

namespace kiln {

class SymTensor {
 public:
  SymTensor() = default;
  SymTensor(Graph* g, int id) : graph_(g), id_(id) {}

  bool valid() const { return graph_ && id_ >= 0; }
  int id() const { return id_; }
  Graph* graph() const { return graph_; }

  const Shape& shape() const { return valid() ? graph_->node(id_).shape : empty_shape(); }
  DType dtype() const { return valid() ? graph_->node(id_).dtype : DType::f32; }
  int rank() const { return shape().rank(); }
  index_t size() const { return shape().numel(); }

 private:
  static const Shape& empty_shape() {
    static const Shape s;
    return s;
  }
  Graph* graph_ = nullptr;
  int id_ = -1;
};

}  // namespace kiln
