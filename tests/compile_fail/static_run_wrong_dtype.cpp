// Must NOT compile: int8 data for a float model input.
#include "static_run_common.hpp"

alignas(kiln::kAlignment) std::uint8_t arena[kPlan.arena_bytes()];
std::int8_t x[4];
float y[3];
int main() { kiln::run<kPlan>(arena, x, y); }
