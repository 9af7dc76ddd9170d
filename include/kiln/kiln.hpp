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
#ifndef KILN_NO_IOSTREAM
#include "ir/print.hpp"
#endif
#include "accel/backend.hpp"  // the accelerator hook's plain data (before the engine, which refers to it)
#include "passes/autodiff.hpp"  // IR-level and constexpr: firmware may differentiate a static graph too
#include "passes/int8_workspace.hpp"  // IR-level: an int8 step's scratch (runtime and kiln::plan)

// The engine: passes, planner, kernels. Left out of a model's TU built with
// KILN_SEPARATE_COMPILATION (it then links the one TU that defines KILN_IMPLEMENTATION).
#if KILN_ENGINE_BODIES
#include "kernels/conv.hpp"
#include "kernels/elementwise.hpp"
#include "kernels/gemm.hpp"
#include "kernels/int8.hpp"  // int8 quantised kernels (TFLite arithmetic)
#include "kernels/pool.hpp"
#include "kernels/reduce.hpp"
#include "kernels/resize.hpp"
#include "passes/fold_channel_affine.hpp"
#include "passes/memory_plan.hpp"
#include "passes/simplify.hpp"
#include "runtime/lower.hpp"     // groups -> kernel steps (shared by compile() and the static runner)
#include "runtime/step_run.hpp"  // and the kernel calls of each step
#endif

// The op front-end (symbolic everywhere; eager where there is a heap), and kiln::plan: a model
// traced and planned in a constant expression.
#include "ops.hpp"
#include "ops_cnn.hpp"  // conv2d, pooling, pad, upsample, batch_norm
#include "ops_int8.hpp"  // quantize, dequantize, qlinear, qconv2d, qmax/qavg_pool2d, qadd, qsoftmax
#if KILN_ENGINE_BODIES
#include "runtime/static_run.hpp"  // kiln::run<plan>(arena, in, out): a static plan run with no heap
#include "trace/static_trace.hpp"
#endif

// The run-time compiler and the eager front-end allocate (owning tensors, plans built at the
// first call): host conveniences. Firmware (KILN_NO_HEAP) gets the IR, the passes and the kernels.
#ifndef KILN_NO_HEAP
#include "trace/compile.hpp"  // and ops.hpp, the op front-end, and grad
#include "accel/offload.hpp"  // accelerator backends: accel::offload(backend) in CompileOptions
#include "train/losses.hpp"
#include "train/optim.hpp"
#endif
