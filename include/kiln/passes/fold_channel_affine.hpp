// kiln/passes/fold_channel_affine.hpp — folds per-output-channel scales and shifts into the
// conv2d / linear that produces them (inference batch norm after a conv, at compile time).
//
// batch_norm is a per-channel x * scale + shift in the front-end; once constant folding has
// turned scale and shift into constants, three rewrites absorb them:
//   (A) P * s            -> P'             W' = W * s (row o of the weight scaled by s[o])
//   (B) (P + b) * s      -> P' + b'        W' = W * s, b' = b * s
//   (C) (P + b) + t      -> P + b'         b' = b + t   (then the GEMM adds one bias in registers)
// where P is conv2d (OHWI weight) or linear (matmul with trans_b, weight [out, in]) with a constant
// weight, and s, b, t are constants with one value per output channel (shape [O] or [1, ..., O]).
// Every value rewritten must have no other use: the constant nodes W and b are changed in place
// (their data pointer replaced by storage from `affine`), so no node is added and the
// topological order holds. Other users would still need the original values.
//
// `affine(const void* data, index_t rows, index_t cols, const void* scale, const void* shift)`
// returns f32 storage that outlives the graph holding data[r][c] * scale[r] + shift[r] (all f32;
// scale or shift may be null), or nullptr to leave the graph alone. Pointers stay `const void*`
// here because a constant expression cannot cast them: the pass stays constexpr.
#pragma once

#include "../ir/graph.hpp"

namespace kiln::passes {

namespace detail {

/// Output channels of a conv2d / linear node whose weight is a constant used by it alone; else 0.
constexpr index_t foldable_producer(const Graph& g, const int* uses, int id) {
  const Node& p = g.node(id);
  const bool linear = p.op == Op::matmul && p.trans_b && g.node(p.inputs[1]).shape.rank() == 2;
  if (!(linear || p.op == Op::conv2d) || uses[id] != 1) return 0;
  const Node& w = g.node(p.inputs[1]);
  if (w.op != Op::constant || w.dtype != DType::f32 || uses[p.inputs[1]] != 1 || w.data == nullptr) return 0;
  return w.shape[0];
}

/// Whether `id` is a constant f32 with one value per channel of a [..., channels] value.
constexpr bool per_channel_constant(const Graph& g, int id, index_t channels, const Shape& over) {
  const Node& c = g.node(id);
  if (c.op != Op::constant || c.dtype != DType::f32 || c.data == nullptr || c.shape.rank() > over.rank()) return false;
  if (c.shape.rank() == 0 || c.shape.back() != channels) return false;
  for (int d = 0; d + 1 < c.shape.rank(); ++d)
    if (c.shape[d] != 1) return false;
  return true;
}

/// Uses by nodes reachable from the outputs only: a node bypassed by an earlier rewrite (dead
/// until remove_dead) does not keep its inputs shared.
constexpr void count_live_uses(const Graph& g, int* uses) {
  bool live[kMaxNodes]{};
  for (int i = 0; i < g.size(); ++i) uses[i] = 0;
  for (int k = 0; k < g.num_outputs(); ++k) {
    live[g.output(k)] = true;
    ++uses[g.output(k)];
  }
  for (int i = g.size() - 1; i >= 0; --i) {
    if (!live[i]) continue;
    for (int k = 0; k < g.node(i).num_inputs; ++k) {
      live[g.node(i).inputs[k]] = true;
      ++uses[g.node(i).inputs[k]];
    }
  }
}

constexpr void replace_weight(Graph& g, int id, const void* data) {
  Node& w = g.node(id);
  w.data = data;
  w.index = -1;  // owned by the compiled model now, not the captured tensor
}

}  // namespace detail

/// Applies rewrites (A), (B), (C) until none applies; returns the number made.
template <class Affine>
constexpr int fold_channel_affine(Graph& g, Affine&& affine) {
  int rewrites = 0;
  int uses[kMaxNodes]{};
  for (int i = 0; i < g.size(); ++i) {
    const Node& n = g.node(i);
    if (n.op != Op::elementwise || (n.fn != EwFn::mul && n.fn != EwFn::add) || n.dtype != DType::f32) continue;
    detail::count_live_uses(g, uses);  // earlier rewrites change counts
    if (uses[i] == 0) continue;          // dead: rewriting its inputs would change live values
    for (int side = 0; side < 2; ++side) {
      const int z = n.inputs[side], c = n.inputs[1 - side];
      const Node& zn = g.node(z);
      if (zn.shape != n.shape || zn.shape.rank() == 0) continue;
      const index_t channels = zn.shape.back();
      if (!detail::per_channel_constant(g, c, channels, n.shape)) continue;
      const void* cdata = g.node(c).data;
      if (n.fn == EwFn::mul) {
        // (A) P * s, or (B) (P + b) * s.
        int producer = z, bias = -1;
        if (zn.op == Op::elementwise && zn.fn == EwFn::add && uses[z] == 1) {
          for (int bs = 0; bs < 2 && bias < 0; ++bs) {
            const int p = zn.inputs[bs], b = zn.inputs[1 - bs];
            if (g.node(p).shape == zn.shape && detail::foldable_producer(g, uses, p) == channels &&
                detail::per_channel_constant(g, b, channels, zn.shape) && uses[b] == 1) {
              producer = p;
              bias = b;
            }
          }
          if (bias < 0) continue;
        } else if (detail::foldable_producer(g, uses, z) != channels) {
          continue;
        }
        const int w = g.node(producer).inputs[1];
        const index_t per_row = g.node(w).shape.numel() / channels;
        const void* nw = affine(g.node(w).data, channels, per_row, cdata, nullptr);
        const void* nb = bias >= 0 ? affine(g.node(bias).data, channels, 1, cdata, nullptr) : nullptr;
        if (!nw || (bias >= 0 && !nb)) continue;
        detail::replace_weight(g, w, nw);
        if (bias >= 0) detail::replace_weight(g, bias, nb);
        g.replace_uses(i, z);
        ++rewrites;
        break;
      }
      // (C) (P + b) + t: the inner add must be a bias add of a foldable producer, so the result is
      // still one bias for the GEMM's registers.
      if (zn.op != Op::elementwise || zn.fn != EwFn::add || uses[z] != 1) continue;
      int bias = -1;
      for (int bs = 0; bs < 2 && bias < 0; ++bs) {
        const int p = zn.inputs[bs], b = zn.inputs[1 - bs];
        const Op pop = g.node(p).op;
        if (g.node(p).shape == zn.shape && (pop == Op::conv2d || pop == Op::matmul) &&
            detail::per_channel_constant(g, b, channels, zn.shape) && uses[b] == 1)
          bias = b;
      }
      if (bias < 0) continue;
      const void* nb = affine(g.node(bias).data, channels, 1, nullptr, cdata);
      if (!nb) continue;
      detail::replace_weight(g, bias, nb);
      g.replace_uses(i, z);
      ++rewrites;
      break;
    }
  }
  return rewrites;
}

}  // namespace kiln::passes
