// kiln/trace/guard.hpp — what a cached plan assumes about its call's arguments.
//
// A guard records the rank, shape and dtype of every tensor argument and the
// address of every other argument (a different parameter object means
// different constants, as TorchDynamo guards on object identity). Checking it
// is a few compares; building one needs no heap.
#pragma once

#include "../core/shape.hpp"
#include "../core/dtype.hpp"

namespace kiln {

inline constexpr int kMaxGuardArgs = 16;

struct Guard {
  struct Arg {
    bool tensor = false;
    DType dtype = DType::f32;
    Shape shape;
    const void* identity = nullptr;  // non-tensor arguments
  };
  Arg args[kMaxGuardArgs]{};
  int count = 0;
  // Checked against a call's arguments in place by Compiled::guard_matches (no key is built).
};

}  // namespace kiln
