// kiln/runtime/executable_offload.hpp — the offload steps of class Executable (a fragment of its
// body, included inside the class: the steps use its private addressing helpers). No #pragma once.
//
// An offloaded region is one step: its operands are the region's inputs, its targets its outputs,
// all in the planned arena (or the caller's buffers); an input the planner left strided is copied
// densely into the step's workspace first. An asynchronous region is submitted at its step and
// waited for before the first step that reads one of its outputs (or at the end); the memory
// plan keeps its inputs, outputs and workspace alive until then (busy_until).

  void lower_offload(Step& s, const passes::Group& grp) {
    const Graph& g = *graph_;
    const accel::RegionBinding& rb = hooks_->binding(*offload_, grp.region);
    s.region = grp.region;
    s.loop = g[s.node].shape;
    s.op_begin = static_cast<int>(specs_.size());
    for (int k = 0; k < rb.num_inputs; ++k) add_spec(spec_over(rb.inputs[k], g[rb.inputs[k]].shape));
    s.num_ops = rb.num_inputs;
    s.tgt_begin = static_cast<int>(specs_.size());
    for (int k = 0; k < rb.num_outputs; ++k) add_spec(spec_over(rb.outputs[k], g[rb.outputs[k]].shape));
    s.num_tgts = rb.num_outputs;
  }

  static bool dense(const Strides& st, const Shape& shape) {
    const Strides want = contiguous_strides(shape);
    for (int d = 0; d < shape.rank(); ++d)
      if (shape[d] != 1 && st[d] != want[d]) return false;
    return true;
  }
  static std::size_t dense_floats(const Shape& shape, DType t) {
    return aligned_floats((shape.numel() * static_cast<index_t>(dtype_size(t)) + 3) / 4);
  }

  std::size_t offload_workspace_bytes(const Step& s) const {
    const accel::RegionBinding& rb = hooks_->binding(*offload_, s.region);
    std::size_t n = 0;
    for (int k = 0; k < s.num_ops; ++k) {
      const ValueSpec& v = specs_[static_cast<std::size_t>(s.op_begin + k)];
      const Shape& shape = (*graph_)[rb.inputs[k]].shape;
      if (!dense(v.strides, shape)) n += dense_floats(shape, v.dtype);
    }
    return n * sizeof(float);
  }

  /// wait_at of every asynchronous offload step: the first later step reading one of its outputs
  /// (through any view), else the end; busy_until[group] for the memory planner.
  void schedule_waits(int* busy_until) {
    const Graph& g = *graph_;
    const passes::Fusion& f = *fusion_;
    const int S = static_cast<int>(steps_.size());
    for (int k = 0; k < S; ++k) busy_until[steps_[static_cast<std::size_t>(k)].group] = k;
    for (int k = 0; k < S; ++k) {
      Step& s = steps_[static_cast<std::size_t>(k)];
      if (s.kind != passes::GroupKind::offload || !hooks_->binding(*offload_, s.region).async) continue;
      s.wait_at = S;
      for (int u = 0; u < g.size() && s.wait_at > k + 1; ++u) {
        const int gu = f.group_of[u];
        if (gu < 0 || gu == s.group) continue;
        for (int q = 0; q < g[u].num_inputs; ++q) {
          const int base = f.layouts[g[u].inputs[q]].base;
          if (base >= 0 && f.group_of[base] == s.group && mem_step(gu) < s.wait_at) s.wait_at = mem_step(gu);
        }
      }
      busy_until[s.group] = s.wait_at;
    }
  }
  int mem_step(int group) const {
    for (int k = 0; k < static_cast<int>(steps_.size()); ++k)
      if (steps_[static_cast<std::size_t>(k)].group == group) return k;
    return static_cast<int>(steps_.size());
  }

  void start_offload(const Step& s, const Bindings& b, Status& st) const {
    const accel::RegionBinding& rb = hooks_->binding(*offload_, s.region);
    const void* ins[kMaxGraphIO]{};
    void* outs[kMaxGraphIO]{};
    float* ws = workspace(b, s);
    for (int k = 0; k < s.num_ops; ++k) {
      const ValueSpec& v = specs_[static_cast<std::size_t>(s.op_begin + k)];
      const Shape& shape = (*graph_)[rb.inputs[k]].shape;
      const char* p = ptr(b, v.base, v.offset, v.dtype);
      if (dense(v.strides, shape)) {
        ins[k] = p;
        continue;
      }
      strided_copy(p, v.dtype, shape, v.strides, ws);
      ins[k] = ws;
      ws += dense_floats(shape, v.dtype);
    }
    for (int k = 0; k < s.num_tgts; ++k) {
      const ValueSpec& v = specs_[static_cast<std::size_t>(s.tgt_begin + k)];
      outs[k] = const_cast<char*>(ptr(b, v.base, v.offset, v.dtype));
    }
    hooks_->start(*offload_, s.region, ins, outs, st);
  }

  /// run() with offload steps: waits before the first reader of an asynchronous region, and for
  /// every region still in flight at the end. A strict-mode failure stops the run (after waiting
  /// for the device) and is reported through fail().
  bool run_offloaded(const Bindings& b) const {
    Status st;
    const int S = static_cast<int>(steps_.size());
    for (int k = 0; k < S && st.ok(); ++k) {
      for (const Step& w : steps_)
        if (w.wait_at == k && st.ok()) hooks_->finish(*offload_, w.region, st);
      if (!st.ok()) break;
      const Step& s = steps_[static_cast<std::size_t>(k)];
      if (s.kind == passes::GroupKind::offload) start_offload(s, b, st);
      else run_step(s, b);
    }
    for (const Step& w : steps_) {
      if (w.wait_at < 0) continue;
      Status late;
      hooks_->finish(*offload_, w.region, st.ok() ? st : late);
    }
    if (st.ok()) return true;
    fail(st);
    return false;
  }
