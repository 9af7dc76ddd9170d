// kiln/ir/graph.hpp — a model as a DAG of Nodes in fixed storage.
//
// Nodes are appended in topological order (an input always has a smaller id
// than its user) and passes keep that invariant, so "for id in 0..size" is a
// valid schedule. The first error sticks: later appends are ignored and the
// status says what went wrong, so a trace never has to unwind.
#pragma once

#include "infer.hpp"

namespace kiln {

inline constexpr int kMaxGraphIO = 16;
/// Parameter write-backs per graph (a parameter plus its optimiser state each: 3 per Adam tensor).
inline constexpr int kMaxUpdates = 64;

/// After a run, parameter node `param` holds the value of node `value` (both the same shape).
/// A step flag (`finite_flag`) is a rank-0 parameter an optimiser sets to 0 when it skipped the
/// step for a non-finite gradient: the caller of the run reads it and reports the error
/// (trace/nonfinite.hpp), so the check costs one float read per step.
struct Update {
  int param = -1;
  int value = -1;
  bool finite_flag = false;
};

class Graph {
 public:
  constexpr Graph() = default;

  constexpr int size() const { return size_; }
  constexpr const Node& node(int id) const { return nodes_[id]; }
  constexpr Node& node(int id) { return nodes_[id]; }
  constexpr const Node& operator[](int id) const { return nodes_[id]; }

  constexpr int num_inputs() const { return num_inputs_; }
  constexpr int input(int i) const { return inputs_[i]; }
  constexpr int num_outputs() const { return num_outputs_; }
  constexpr int output(int i) const { return outputs_[i]; }
  constexpr void set_output(int i, int id) { outputs_[i] = id; }
  constexpr int num_constants() const { return num_constants_; }

  constexpr const Status& status() const { return status_; }
  constexpr bool ok() const { return status_.ok(); }
  constexpr void set_error(const Status& s) {
    if (status_.ok()) status_ = s;
  }

  /// Appends a node after inferring its type; returns its id, or -1 (and records the error).
  constexpr int add(Node n) {
    if (!status_.ok()) return -1;
    if (size_ >= kMaxNodes) {
      set_error(Status(Errc::capacity_exceeded) << op_name(n.op) << ": graph is full (" << kMaxNodes
                                                << " nodes; raise KILN_MAX_NODES)");
      return -1;
    }
    Shape shapes[kMaxInputs];
    DType dtypes[kMaxInputs]{};
    for (int i = 0; i < n.num_inputs; ++i) {
      const int id = n.inputs[i];
      if (id < 0 || id >= size_) {
        set_error(Status(Errc::invalid_argument) << op_name(n.op) << ": input " << i << " is not a node of this graph");
        return -1;
      }
      shapes[i] = nodes_[id].shape;
      dtypes[i] = nodes_[id].dtype;
      if (i < 2) n.in_quant[i] = nodes_[id].quant;  // what the int8 type rules and kernels read
    }
    const Status s = infer_node(n, shapes, dtypes);
    if (!s.ok()) {
      set_error(s);
      return -1;
    }
    if (n.op == Op::input) {
      if (num_inputs_ >= kMaxGraphIO) {
        set_error(Status(Errc::capacity_exceeded) << "input: more than " << kMaxGraphIO << " model inputs");
        return -1;
      }
      n.index = num_inputs_;
      inputs_[num_inputs_++] = size_;
    }
    if (n.op == Op::constant) n.index = num_constants_++;
    nodes_[size_] = n;
    return size_++;
  }

  /// Finds an existing constant node bound to `data` with the same shape and dtype.
  constexpr int find_constant(const void* data, const Shape& s, DType t) const {
    for (int i = 0; i < size_; ++i)
      if (nodes_[i].op == Op::constant && nodes_[i].data == data && nodes_[i].shape == s && nodes_[i].dtype == t)
        return i;
    return -1;
  }

  constexpr bool add_output(int id) {
    if (!status_.ok()) return false;
    if (id < 0 || id >= size_) {
      set_error(Status(Errc::invalid_argument) << "output: not a node of this graph");
      return false;
    }
    if (num_outputs_ >= kMaxGraphIO) {
      set_error(Status(Errc::capacity_exceeded) << "output: more than " << kMaxGraphIO << " model outputs");
      return false;
    }
    outputs_[num_outputs_++] = id;
    return true;
  }

  /// Whether `id` is needed after the run: a model output or a parameter's new value.
  constexpr bool is_output(int id) const {
    for (int i = 0; i < num_outputs_; ++i)
      if (outputs_[i] == id) return true;
    for (int i = 0; i < num_updates_; ++i)
      if (updates_[i].value == id) return true;
    return false;
  }

  constexpr int num_updates() const { return num_updates_; }
  constexpr const Update& update(int i) const { return updates_[i]; }
  /// Records that parameter node `param` takes the value of `value` when the run ends: every
  /// read of the old value happens during the run, the write-back after it (so the order of
  /// updates and reads never matters). One update per parameter.
  constexpr bool add_update(int param, int value, bool finite_flag = false) {
    if (!status_.ok()) return false;
    if (param < 0 || param >= size_ || value < 0 || value >= size_ || nodes_[param].op != Op::parameter) {
      set_error(Status(Errc::invalid_argument) << "assign: the target is not a parameter of this graph");
      return false;
    }
    if (nodes_[param].shape != nodes_[value].shape || nodes_[param].dtype != nodes_[value].dtype) {
      set_error(Status(Errc::shape_mismatch) << "assign: parameter " << nodes_[param].shape << ' '
                                             << nodes_[param].dtype << " given a value " << nodes_[value].shape << ' '
                                             << nodes_[value].dtype);
      return false;
    }
    for (int i = 0; i < num_updates_; ++i)
      if (updates_[i].param == param) {
        set_error(Status(Errc::invalid_argument) << "assign: parameter %" << param << " is assigned twice in one step");
        return false;
      }
    if (num_updates_ >= kMaxUpdates) {
      set_error(Status(Errc::capacity_exceeded) << "assign: more than " << kMaxUpdates << " parameter updates");
      return false;
    }
    updates_[num_updates_++] = Update{param, value, finite_flag};
    return true;
  }

  /// Finds the parameter node bound to `data`, or -1.
  constexpr int find_parameter(const void* data) const {
    for (int i = 0; i < size_; ++i)
      if (nodes_[i].op == Op::parameter && nodes_[i].data == data) return i;
    return -1;
  }

  /// Number of uses of every node (as an input of a node or as a graph output).
  constexpr void count_uses(int* uses) const {
    for (int i = 0; i < size_; ++i) uses[i] = 0;
    for (int i = 0; i < size_; ++i)
      for (int k = 0; k < nodes_[i].num_inputs; ++k) ++uses[nodes_[i].inputs[k]];
    for (int i = 0; i < num_outputs_; ++i) ++uses[outputs_[i]];
    for (int i = 0; i < num_updates_; ++i) ++uses[updates_[i].value];
  }

  /// Redirects every use of `from` to `to` (to < from keeps the order valid).
  constexpr void replace_uses(int from, int to) {
    for (int i = 0; i < size_; ++i)
      for (int k = 0; k < nodes_[i].num_inputs; ++k)
        if (nodes_[i].inputs[k] == from) nodes_[i].inputs[k] = to;
    for (int i = 0; i < num_outputs_; ++i)
      if (outputs_[i] == from) outputs_[i] = to;
    for (int i = 0; i < num_updates_; ++i)
      if (updates_[i].value == from) updates_[i].value = to;
  }

  /// Removes nodes not reachable from the outputs (inputs are kept: they are the signature).
  /// Returns the number removed. Ids are compacted; relative order is preserved.
  constexpr int remove_dead() {
    bool live[kMaxNodes]{};
    for (int i = 0; i < num_outputs_; ++i) live[outputs_[i]] = true;
    for (int i = 0; i < num_updates_; ++i) live[updates_[i].value] = live[updates_[i].param] = true;
    for (int i = size_ - 1; i >= 0; --i) {
      if (nodes_[i].op == Op::input) live[i] = true;
      if (!live[i]) continue;
      for (int k = 0; k < nodes_[i].num_inputs; ++k) live[nodes_[i].inputs[k]] = true;
    }
    int remap[kMaxNodes]{};
    int n = 0;
    for (int i = 0; i < size_; ++i) {
      if (!live[i]) {
        remap[i] = -1;
        continue;
      }
      remap[i] = n;
      Node nd = nodes_[i];
      for (int k = 0; k < nd.num_inputs; ++k) nd.inputs[k] = remap[nd.inputs[k]];
      nodes_[n++] = nd;
    }
    const int removed = size_ - n;
    size_ = n;
    for (int i = 0; i < num_inputs_; ++i) inputs_[i] = remap[inputs_[i]];
    for (int i = 0; i < num_outputs_; ++i) outputs_[i] = remap[outputs_[i]];
    for (int i = 0; i < num_updates_; ++i) updates_[i] = Update{remap[updates_[i].param], remap[updates_[i].value], updates_[i].finite_flag};
    return removed;
  }

 private:
  Node nodes_[kMaxNodes]{};
  int size_ = 0;
  int inputs_[kMaxGraphIO]{};
  int num_inputs_ = 0;
  int outputs_[kMaxGraphIO]{};
  int num_outputs_ = 0;
  Update updates_[kMaxUpdates]{};
  int num_updates_ = 0;
  int num_constants_ = 0;
  Status status_;
};

}  // namespace kiln
