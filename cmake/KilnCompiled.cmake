# kiln_add_compiled(<target> <engine.cpp> <kiln interface target>)
#
# Defines <target>: kiln with its engine (passes, planner, kernels, runtime) compiled once into a
# static library from <engine.cpp>. Code linking it is built with KILN_SEPARATE_COMPILATION, so
# a model's translation unit includes only the front-end and compiles several times faster than
# header-only (README "Build time"). Same headers, same results; header-only stays the default.
# Used by kiln's own CMakeLists.txt (kiln::compiled) and by the installed kilnConfig.cmake, which
# builds the library in the consumer's project with the consumer's flags.
function(kiln_add_compiled target engine_source kiln_target)
  add_library(${target} STATIC "${engine_source}")
  target_link_libraries(${target} PUBLIC ${kiln_target})
  target_compile_definitions(${target} PUBLIC KILN_SEPARATE_COMPILATION PRIVATE KILN_IMPLEMENTATION)
  target_compile_features(${target} PUBLIC cxx_std_17)
endfunction()
