// Test helper: a synthetic .tflite model with the common int8 operators (PAD, HARD_SWISH, MEAN,
// MUL, STRIDED_SLICE, LOGISTIC, TANH, CONCATENATION) for test_tflite_common_ops.cpp, and the seed
// the fuzz target starts from (tests/tflite/seeds/common_ops.tflite, written by
// tests/tflite/write_seed.cpp from this function).
#pragma once

#include <kiln/quant/params.hpp>

#include <cstdint>
#include <vector>

#include "tflite_builder.hpp"

namespace kiln_test::common_ops {

namespace q = kiln::quant;
using kiln_test::fbb::make_table;
using kiln_test::fbb::scalar;

// Tensor quantisations of the model below.
inline const q::TensorQuant kX{0.05f, 2}, kHs{0.04f, -60}, kMean{0.03f, -50}, kMul{0.01f, -20}, kLog{1.f / 256, -128},
    kTanh{1.f / 128, 0}, kOut{0.004f, -100};

//  t0  x [1,4,6,3]  -PAD [[0,0],[1,2],[0,1],[0,0]]-> t2 [1,7,7,3] -HARD_SWISH-> t3
//  t3 -MEAN axes {1,2} keep-> t5 [1,1,1,3];  MUL(t3, t5) RELU -> t6 [1,7,7,3]
//  t6 -STRIDED_SLICE begin {0,-1,1,0} end {1,0,7,0} strides {1,-2,2,1} end_mask 0b1000-> t10 [1,3,3,3]
//  t10 -LOGISTIC-> t11;  t10 -TANH-> t12 -LOGISTIC-> t13;  CONCATENATION(t11, t13, t11) axis -1 -> t14 [1,3,3,9]
//  t14 -STRIDED_SLICE begin {0,1} end {0,2} strides {1,1} ellipsis 0b1 shrink 0b10-> t18 [1,3,3]
//  t18 -MEAN axes {-1}-> t20 [1,3]
inline kiln_test::TfModel common_ops_model() {
  kiln_test::TfModel m;
  // PAD 34, HARD_SWISH 117, MEAN 40, MUL 18, STRIDED_SLICE 45, LOGISTIC 14, TANH 28, CONCATENATION 2
  m.opcodes = {{34, 2}, {117, 1}, {40, 2}, {18, 2}, {45, 4}, {14, 2}, {28, 2}, {2, 2}};
  auto b32 = [&m](std::vector<std::int32_t> v) { return m.add_buffer(v); };
  auto qt = [](std::vector<std::int32_t> shape, q::TensorQuant t) {
    return kiln_test::TfTensor{shape, 9, 0, {t.scale}, {t.zero_point}, 0};
  };
  auto it = [](std::vector<std::int32_t> shape, std::uint32_t buf) { return kiln_test::TfTensor{shape, 2, buf, {}, {}, 0}; };
  m.tensors = {qt({1, 4, 6, 3}, kX),                                   // t0
               it({4, 2}, b32({0, 0, 1, 2, 0, 1, 0, 0})),             // t1 paddings
               qt({1, 7, 7, 3}, kX),                                   // t2
               qt({1, 7, 7, 3}, kHs),                                  // t3
               it({2}, b32({1, 2})),                                   // t4 axes
               qt({1, 1, 1, 3}, kMean),                                // t5
               qt({1, 7, 7, 3}, kMul),                                 // t6
               it({4}, b32({0, -1, 1, 0})),                            // t7 begin
               it({4}, b32({1, 0, 7, 0})),                             // t8 end
               it({4}, b32({1, -2, 2, 1})),                            // t9 strides
               qt({1, 3, 3, 3}, kMul),                                 // t10
               qt({1, 3, 3, 3}, kLog),                                 // t11
               qt({1, 3, 3, 3}, kTanh),                                // t12
               qt({1, 3, 3, 3}, kLog),                                 // t13
               qt({1, 3, 3, 9}, kLog),                                 // t14
               it({2}, b32({0, 1})),                                   // t15 begin
               it({2}, b32({0, 2})),                                   // t16 end
               it({2}, b32({1, 1})),                                   // t17 strides
               qt({1, 3, 3}, kLog),                                    // t18
               it({1}, b32({-1})),                                     // t19 axes
               qt({1, 3}, kOut)};                                      // t20
  // Option tables (ids from schema.fbs): MulOptions 21 {activation 0}, ReducerOptions 27
  // {keep_dims 0}, StridedSliceOptions 32 {begin_mask 0, end_mask 1, ellipsis_mask 2,
  // new_axis_mask 3, shrink_axis_mask 4}, ConcatenationOptions 10 {axis 0}, PadOptions 22,
  // HardSwishOptions 91.
  m.operators = {{0, {0, 1}, {2}, 22, make_table({})},
                 {1, {2}, {3}, 91, make_table({})},
                 {2, {3, 4}, {5}, 27, make_table({scalar<std::uint8_t>(0, 1)})},
                 {3, {3, 5}, {6}, 21, make_table({scalar<std::int8_t>(0, 1)})},  // RELU
                 {4, {6, 7, 8, 9}, {10}, 32, make_table({scalar<std::int32_t>(1, 0b1000)})},
                 {5, {10}, {11}, 0, nullptr},
                 {6, {10}, {12}, 0, nullptr},
                 {5, {12}, {13}, 0, nullptr},
                 {7, {11, 13, 11}, {14}, 10, make_table({scalar<std::int32_t>(0, -1)})},
                 {4, {14, 15, 16, 17}, {18}, 32, make_table({scalar<std::int32_t>(2, 1), scalar<std::int32_t>(4, 2)})},
                 {2, {18, 19}, {20}, 27, make_table({})}};
  m.inputs = {0};
  return m;
}

}  // namespace kiln_test::common_ops
