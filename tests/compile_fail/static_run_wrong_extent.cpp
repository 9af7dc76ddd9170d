// Must NOT compile: an input array of 5 floats for a model input of 4 elements.
#include "static_run_common.hpp"

alignas(kiln::kAlignment) std::uint8_t arena[kPlan.arena_bytes()];
float x[5], y[3];
int main() { kiln::run<kPlan>(arena, x, y); }
