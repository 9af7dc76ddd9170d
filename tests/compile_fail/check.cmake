# Runs the compiler on a file that must not compile and checks the diagnostic (cmake -P script).
#   -DCXX=<compiler> -DSOURCE=<file> -DINCLUDE=<kiln include dir> -DEXPECT="a;b" (all must appear)
execute_process(
  COMMAND "${CXX}" -std=c++17 -fsyntax-only "-I${INCLUDE}" "${SOURCE}"
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(rc EQUAL 0)
  message(FATAL_ERROR "${SOURCE} compiled, but it must not")
endif()
foreach(word IN LISTS EXPECT)
  string(FIND "${out}${err}" "${word}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "the diagnostic for ${SOURCE} does not mention '${word}':\n${out}${err}")
  endif()
endforeach()
message(STATUS "${SOURCE}: rejected as expected, the diagnostic names: ${EXPECT}")
