// kiln/trace/interpret.hpp — run a traced graph node by node with the eager kernels.
//
// This is how kiln::eager runs a function that calls kiln::grad: the gradient only exists as
// graph nodes, so eager traces the function and then executes that graph exactly as written —
// no simplification, CSE, folding or fusion, every intermediate materialised in its own buffer,
// each node run by engine::run_node (the kernels the op-by-op front-end uses).
#pragma once

#include <cstring>
#include <vector>

#include "../core/tensor.hpp"
#include "../ir/graph.hpp"
#include "../runtime/engine.hpp"

namespace kiln::detail {

/// Values of every node of `g`, computed in id order; inputs[i] is the dense data of graph input i.
class Interpreter {
 public:
  explicit Interpreter(const Graph& g) : g_(g), values_(static_cast<std::size_t>(g.size())), ptrs_(values_.size()) {}

  /// Runs every node; `write_back` false leaves the parameters as they were (a re-run that only
  /// looks at the values, as the non-finite diagnosis does).
  void run(const void* const* inputs, bool write_back = true) {
    for (int id = 0; id < g_.size(); ++id) {
      const Node& n = g_[id];
      const auto i = static_cast<std::size_t>(id);
      switch (n.op) {
        case Op::input: ptrs_[i] = inputs[n.index]; continue;
        case Op::constant:
        case Op::parameter: ptrs_[i] = n.data; continue;
        case Op::scalar: ptrs_[i] = &n.p0; continue;
        default: break;
      }
      const void* in[kMaxInputs]{};
      Shape shapes[kMaxInputs];
      DType dtypes[kMaxInputs]{};
      for (int k = 0; k < n.num_inputs; ++k) {
        in[k] = ptrs_[static_cast<std::size_t>(n.inputs[k])];
        shapes[k] = g_[n.inputs[k]].shape;
        dtypes[k] = g_[n.inputs[k]].dtype;
      }
      // Float words, so the buffer is aligned like a Tensor<float> whatever the dtype.
      const index_t bytes = n.shape.numel() * dtype_size(n.dtype);
      values_[i] = Tensor<float>(Shape{(bytes + 3) / 4 + 1}, uninitialized);  // run_node writes it all
      const std::size_t ws = engine::node_workspace_floats(n, shapes);
      if (static_cast<index_t>(ws) > workspace_.size()) workspace_ = Tensor<float>(Shape{static_cast<index_t>(ws)});
      engine::run_node(n, in, shapes, dtypes, values_[i].data(), workspace_.data());
      ptrs_[i] = values_[i].data();
    }
    // Parameter write-back after the whole graph ran (Graph::add_update).
    for (int k = 0; write_back && k < g_.num_updates(); ++k) {
      const Update& u = g_.update(k);
      const Node& p = g_[u.param];
      std::memcpy(const_cast<void*>(p.data), ptrs_[static_cast<std::size_t>(u.value)],
                  static_cast<std::size_t>(p.shape.numel()) * dtype_size(p.dtype));
    }
  }
  /// Dense data of node `id` after run().
  const void* value(int id) const { return ptrs_[static_cast<std::size_t>(id)]; }

 private:
  const Graph& g_;
  std::vector<Tensor<float>> values_;
  std::vector<const void*> ptrs_;
  Tensor<float> workspace_;
};

}  // namespace kiln::detail
