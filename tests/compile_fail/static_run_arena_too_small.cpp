// Must NOT compile: an arena smaller than the plan's arena_bytes(); the diagnostic names the
// check and the needed and given bytes (ArenaTooSmall<needed, given>).
#include "static_run_common.hpp"

alignas(kiln::kAlignment) std::uint8_t arena[16];
float x[4], y[3];
int main() { kiln::run<kPlan>(arena, x, y); }
