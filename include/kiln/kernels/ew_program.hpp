// kiln/kernels/ew_program.hpp — the fused elementwise program the kernels interpret.
//
// A fused group is a straight-line program over a small file of register tiles
// (kEwTile floats each). The executor walks the output in tiles and runs the
// whole program per tile, so a chain of any length makes one pass over memory
// and dispatches once per instruction per tile, never per element.
//
// Contract with the program builder (passes/): all `store` instructions come
// after every other instruction, so an output may alias an input read at the
// same positions (in-place reuse).
#pragma once

#include "../core/config.hpp"
#include "../core/dtype.hpp"
#include "../core/ewfn.hpp"
#include "../core/shape.hpp"

namespace kiln::kernels {

inline constexpr int kEwMaxRegs = 16;
/// Most operands and targets one program may read or write.
inline constexpr int kEwMaxOperands = 24;

enum class EwKind : std::uint8_t {
  load,   // r[dst] = operand a, read at the tile's positions (broadcast by its strides)
  splat,  // r[dst] = p0
  apply,  // r[dst] = fn(r[a], r[b], r[c]; p0, p1)   (unused operands ignored)
  store,  // target dst = r[a]
};

struct EwInstr {
  EwKind kind = EwKind::apply;
  EwFn fn = EwFn::identity;
  std::uint8_t dst = 0, a = 0, b = 0, c = 0;
  float p0 = 0.f, p1 = 0.f;
};

struct EwProgram {
  const EwInstr* code = nullptr;
  int size = 0;
  int num_regs = 0;
};

/// An input of the loop: element strides over the loop shape (0 = broadcast).
/// dtype f32 or boolean (bytes 0/1, read as 0.f/1.f).
struct EwOperand {
  const void* data = nullptr;
  DType dtype = DType::f32;
  Strides strides;
};

/// An output of the loop; boolean targets store (value != 0); i8 targets store the value
/// quantised with scale / zero_point (quant::quantize_value: a quantize fused into the program).
struct EwTarget {
  constexpr EwTarget() = default;
  constexpr EwTarget(void* d, DType t, const Strides& s, float sc = 1.f, std::int32_t zp = 0)
      : data(d), dtype(t), strides(s), scale(sc), zero_point(zp) {}
  void* data = nullptr;
  DType dtype = DType::f32;
  Strides strides;
  float scale = 1.f;
  std::int32_t zero_point = 0;
};

}  // namespace kiln::kernels
