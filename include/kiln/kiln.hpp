// kiln/kiln.hpp — the one include.
//
//   auto net = kiln::compile(model);   // traced, fused and planned at the first call
//   auto y   = net(x, params);         // later calls: guard check + run
//   auto ref = kiln::eager(model)(x, params);
#pragma once

#include "core/config.hpp"
#include "core/dtype.hpp"
#include "core/ewfn.hpp"
#include "core/shape.hpp"
#include "core/status.hpp"
#include "core/tensor.hpp"
#include "ir/graph.hpp"
#include "ops.hpp"
#include "trace/compile.hpp"
