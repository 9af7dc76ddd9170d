// kiln/runtime/row_gemm.hpp — a plan that is nothing but batch-1 layers, run without the step
// machinery.
//
// A small MLP at batch 1 does ~1 k instructions of arithmetic per call; the general path
// (Executable::run's step loop, step_run::gemm building a GemmEpilogue and MatrixRefs, gemm()'s
// dispatch, the small-M row kernels with run-time flags) spent as much again around it. When
// every step of a plan is a GEMM with one row (M = 1), weights prepacked, no batch and no tail
// program, Executable::build also records this chain: per layer, where its row and its output
// are (Locs resolved after memory planning, as slots of a per-run table of base addresses), the packed panels, the bias and the clamp. run()
// then resolves two addresses and calls one M = 1 kernel per layer (kernels/gemm_m1.hpp); a
// layer with one output (N = 1) runs a dot product over a contiguous copy of its weight column.
// Anything else (outputs copied out, parameter updates, offload, other step kinds) keeps the
// general path.
#pragma once

#include <vector>

#include "lower.hpp"

namespace kiln::runtime {

class RowGemmChain {
 public:
  /// Whether a lowered step can be one layer of the chain.
  static bool eligible(const Step& s) {
    if (s.kind != passes::GroupKind::gemm || s.conv || s.direct || s.packed < 0) return false;
    if (s.M != 1 || s.N < 1 || s.K < 1 || s.batch.rank() != 0 || s.code_size != 0) return false;
    if (s.a_at.root == Loc::Root::fixed || s.c_at.root == Loc::Root::fixed) return false;  // not a layer's row
    return s.a.dtype == DType::f32 && s.c.dtype == DType::f32;
  }

  /// Records the chain when every step is eligible and `plain` (the plan copies nothing out and
  /// writes no parameter back); `packed(s)` gives step s's prepacked weight. Else stays inactive.
  template <class PackedOf>
  void build(const std::vector<Step>& steps, bool plain, PackedOf&& packed) {
    layers_.clear();
    columns_.clear();
    active_ = false;
    if (!plain || steps.empty()) return;
    for (const Step& s : steps)
      if (!eligible(s)) return;
    for (const Step& s : steps) {
      Layer l;
      const int r = s.loop.rank();
      l.a = address_of(s.a_at);
      l.c = address_of(s.c_at);
      if (s.bias >= 0 && s.bias_at.root == Loc::Root::fixed)
        l.ep.bias = reinterpret_cast<const float*>(s.bias_at.fixed);  // a constant: resolved once
      else if (s.bias >= 0)
        l.bias = address_of(s.bias_at), l.bias_per_run = true;  // computed by the model: looked up per run
      l.K = s.K;
      l.N = s.N;
      l.xs = s.a.strides[r - 1];
      l.packed = packed(s);
      l.ep.clamp = s.clamp;
      l.ep.lo = s.lo;
      l.ep.hi = s.hi;
      if (s.N == 1) {  // column 0 of the single packed panel, every kNR-th float: made contiguous
        l.column = static_cast<int>(columns_.size());
        for (index_t k = 0; k < s.K; ++k) columns_.push_back(l.packed[k * kernels::gemm_detail::kNR]);
      }
      layers_.push_back(l);
    }
    for (Layer& l : layers_)
      if (l.column >= 0) l.packed = columns_.data() + l.column;  // columns_ no longer grows
    active_ = true;
  }

  bool active() const { return active_; }
  std::size_t layers() const { return layers_.size(); }

  void run(const void* const* inputs, void* const* outputs, char* arena) const {
    // Every operand is roots[root][index] + bytes: two loads and an add, where a switch on each
    // Loc's root cost more than the address arithmetic of the whole chain.
    const void* const arena_root[1] = {arena};
    const void* const* const roots[3] = {arena_root, inputs, outputs};
    auto at = [&roots](const Address& a) {
      return const_cast<char*>(static_cast<const char*>(roots[a.root][a.index])) + a.bytes;
    };
    for (const Layer& l : layers_) {
      const auto* x = reinterpret_cast<const float*>(at(l.a));
      auto* y = reinterpret_cast<float*>(at(l.c));
      kernels::RowEpilogue ep = l.ep;
      if (l.bias_per_run) ep.bias = reinterpret_cast<const float*>(at(l.bias));
      if (l.column >= 0) kernels::dot_m1(l.K, x, l.xs, l.packed, y, ep);
      else kernels::gemv_m1_packed(l.K, l.N, x, l.xs, l.packed, y, ep);
    }
  }

 private:
  /// An operand in one run's buffers: root 0 the arena (index 0), 1 input `index`, 2 output `index`.
  struct Address {
    int root = 0, index = 0;
    index_t bytes = 0;
  };
  static Address address_of(const Loc& l) {
    const int root = l.root == Loc::Root::input ? 1 : l.root == Loc::Root::output ? 2 : 0;
    return Address{root, root ? l.index : 0, l.bytes};  // Root::fixed: not eligible (a, c), resolved at build (bias)
  }

  struct Layer {
    Address a, c, bias;
    bool bias_per_run = false;  // a bias the model computes (else a constant, in ep.bias)
    index_t K = 0, N = 0, xs = 1;
    const float* packed = nullptr;  // the panels, or the contiguous column when column >= 0
    int column = -1;                // N == 1: offset of the weight column in columns_
    kernels::RowEpilogue ep;
  };
  std::vector<Layer> layers_;
  std::vector<float> columns_;
  bool active_ = false;
};

}  // namespace kiln::runtime
