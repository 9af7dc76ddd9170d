// main.cpp — your firmware's side of a model converted by tflite2kiln (README: "From a .tflite
// file to firmware in three commands"). The generated header holds the model, its weights as
// constexpr arrays and its compile-time plan; this file gives the plan one static arena of the
// size the plan computed and runs it with kiln::run<plan>: no heap, no exceptions, no interpreter.
//
//   tflite2kiln model.tflite model.hpp my_model
//   arm-none-eabi-g++ -std=c++17 -O2 -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16 \
//     -fno-exceptions -fno-rtti -I kiln/include -c main.cpp
//
// Link main.o into your firmware and call classify() after filling model_input.
#define KILN_NO_HEAP
#define KILN_NO_IOSTREAM
#include <kiln/kiln.hpp>

#include "model.hpp"

alignas(kiln::kAlignment) static std::uint8_t arena[my_model::kArenaBytes];
std::int8_t model_input[my_model::kInputShape.numel()];    // quantised with my_model::kInputQuant
std::int8_t model_output[my_model::kOutputShape.numel()];  // quantised with my_model::kOutputQuant

/// One inference on model_input into model_output; returns the index of the largest output.
int classify() {
  kiln::run<my_model::plan>(arena, model_input, model_output);
  int best = 0;
  for (int i = 1; i < static_cast<int>(my_model::kOutputShape.numel()); ++i)
    if (model_output[i] > model_output[best]) best = i;
  return best;
}
