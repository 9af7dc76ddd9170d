// Compile-only check (target kiln_tflite_noexcept_check): the TFLite reader builds the way
// firmware builds it (-fno-exceptions -fno-rtti -DKILN_NO_HEAP -DKILN_NO_IOSTREAM): a model in
// flash is opened and checked without heap, exceptions or iostream.
#include <kiln/tflite.hpp>

#if KILN_EXCEPTIONS
#error "kiln_tflite_noexcept_check must be compiled with -fno-exceptions"
#endif

namespace kiln_tflite_check {

// What firmware would call with its model array; returns the arena-independent facts it needs.
int open_and_check(const unsigned char* model, unsigned long size) {
  kiln::tflite::Model m;
  if (!m.open(model, size).ok()) return -1;
  if (!kiln::tflite::check_supported(m).ok()) return -2;
  return m.num_operators();
}

}  // namespace kiln_tflite_check
