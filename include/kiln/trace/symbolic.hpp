// kiln/trace/symbolic.hpp — the tensor a model sees while it is being traced.
//
// A SymTensor is a node id plus the Tracer recording the graph. Every op
// applied to it appends a node instead of computing (TorchDynamo/FX's
// contract, with C++ overloads in place of bytecode interpretation). Its shape
// and dtype are known, so model code may branch on them as on a real tensor.
#pragma once

#include <cstring>
#include <memory>
#include <vector>

#include "../ir/graph.hpp"

namespace kiln {

/// The graph being recorded, plus copies of the owning tensors the model captured.
///
/// A kiln::Tensor used by the model may be a temporary (a weight transformed eagerly inside the
/// model, say), so its values are copied when captured: the plan never points at freed memory.
/// A kiln::TensorView is captured by reference: it is how weights in flash or in the user's own
/// storage are used without a copy, and that memory must outlive the compiled model.
class Tracer {
 public:
  Graph graph;

  /// A stable copy of `bytes` bytes at `data`, shared with an earlier capture of equal bytes.
  /// Matching by contents, not address: a temporary freed during the trace may be followed by
  /// another at the same address with other values.
  const void* keep(const void* data, std::size_t bytes) {
    for (const Kept& k : kept_)
      if (k.bytes == bytes && (bytes == 0 || std::memcmp(k.copy.get(), data, bytes) == 0)) return k.copy.get();
    Kept k;
    k.bytes = bytes;
    k.copy.reset(new unsigned char[bytes ? bytes : 1]);
    if (bytes) std::memcpy(k.copy.get(), data, bytes);
    kept_.push_back(std::move(k));
    return kept_.back().copy.get();
  }
  std::size_t kept_bytes() const {
    std::size_t n = 0;
    for (const Kept& k : kept_) n += k.bytes;
    return n;
  }

 private:
  struct Kept {
    std::size_t bytes = 0;
    std::unique_ptr<unsigned char[]> copy;
  };
  std::vector<Kept> kept_;
};

class SymTensor {
 public:
  SymTensor() = default;
  SymTensor(Tracer* t, int id) : tracer_(t), id_(id) {}

  bool valid() const { return tracer_ && id_ >= 0; }
  int id() const { return id_; }
  Tracer* tracer() const { return tracer_; }
  Graph* graph() const { return tracer_ ? &tracer_->graph : nullptr; }

  const Shape& shape() const { return valid() ? tracer_->graph.node(id_).shape : empty_shape(); }
  DType dtype() const { return valid() ? tracer_->graph.node(id_).dtype : DType::f32; }
  int rank() const { return shape().rank(); }
  index_t size() const { return shape().numel(); }

 private:
  static const Shape& empty_shape() {
    static const Shape s;
    return s;
  }
  Tracer* tracer_ = nullptr;
  int id_ = -1;
};

}  // namespace kiln
