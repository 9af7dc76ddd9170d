// kiln/kernels/int8.hpp — the int8 quantised kernel layer (TFLite int8 arithmetic, bit-exact).
//
// Kernels on raw pointers + shapes + a params struct, each returning a kiln::Status:
// fully_connected, conv2d, depthwise_conv2d, max_pool2d, avg_pool2d, add, softmax; and the
// array conversion quantize. The integers they take (multipliers, shifts, offsets,
// clamps) come from kiln/quant/. The IR's int8 ops reach them through runtime/int8_steps.hpp.
#pragma once

#include "../quant/fixed_point.hpp"
#include "../quant/fixed_point_exp.hpp"
#include "../quant/multiplier.hpp"
#include "../quant/params.hpp"
#include "../quant/quantize.hpp"
#include "int8/activations.hpp"
#include "int8/add.hpp"
#include "int8/conv2d.hpp"
#include "int8/convert.hpp"
#include "int8/copy.hpp"
#include "int8/depthwise_conv2d.hpp"
#include "int8/dot.hpp"
#include "int8/fully_connected.hpp"
#include "int8/mean.hpp"
#include "int8/mul.hpp"
#include "int8/pooling.hpp"
#include "int8/requant.hpp"
#include "int8/softmax.hpp"
#include "int8/window.hpp"
