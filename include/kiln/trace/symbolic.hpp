// kiln/trace/symbolic.hpp — the tensor a model sees while it is being traced.
//
// A SymTensor is a node id plus the Tracer recording the graph. Every op
// applied to it appends a node instead of computing (TorchDynamo/FX's
// contract, with C++ overloads in place of bytecode interpretation). Its shape
// and dtype are known, so model code may branch on them as on a real tensor.
#pragma once

#include "../ir/graph.hpp"
#ifndef KILN_NO_HEAP
#include <cstring>
#include <memory>
#include <vector>
#endif

namespace kiln {

#ifndef KILN_NO_HEAP

/// The graph being recorded, plus copies of the owning tensors the model captured.
///
/// A kiln::Tensor used by the model may be a temporary (a weight transformed eagerly inside the
/// model, say), so its values are copied when captured: the plan never points at freed memory.
/// A kiln::TensorView is captured by reference: it is how weights in flash or in the user's own
/// storage are used without a copy, and that memory must outlive the compiled model.
class Tracer {
 public:
  Graph graph;
  /// A node whose value gates every kiln::assign while an UpdateGate is alive (-1: none).
  int update_gate = -1;
  /// The loss of the latest kiln::grad call (-1: none): an optimiser also skips the step when it
  /// is not finite (a loss of -inf can have finite gradients).
  int last_loss = -1;

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
#else
class Tracer;  // run-time tracing needs the heap; firmware traces at compile time only
#endif

/// A value of the graph being recorded. It points at the Graph (a literal type), and at the
/// Tracer owning it when there is one: a run-time trace (compile()) has a Tracer that keeps
/// copies of captured owning tensors; a compile-time trace (static_trace.hpp) records into a
/// plain Graph in a constant expression and has none.
class SymTensor {
 public:
  constexpr SymTensor() = default;
#ifndef KILN_NO_HEAP
  SymTensor(Tracer* t, int id) : graph_(t ? &t->graph : nullptr), tracer_(t), id_(id) {}
#endif
  constexpr SymTensor(Graph* g, Tracer* t, int id) : graph_(g), tracer_(t), id_(id) {}

  constexpr bool valid() const { return graph_ && id_ >= 0; }
  constexpr int id() const { return id_; }
  constexpr Tracer* tracer() const { return tracer_; }
  constexpr Graph* graph() const { return graph_; }

  constexpr const Shape& shape() const { return valid() ? graph_->node(id_).shape : kNoShape; }
  constexpr DType dtype() const { return valid() ? graph_->node(id_).dtype : DType::f32; }
  constexpr int rank() const { return shape().rank(); }
  constexpr index_t size() const { return shape().numel(); }

 private:
  static constexpr Shape kNoShape{};
  Graph* graph_ = nullptr;
  Tracer* tracer_ = nullptr;
  int id_ = -1;
};

}  // namespace kiln
