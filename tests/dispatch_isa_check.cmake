# ctest dispatch_isa_check: the linked test_dispatch binary keeps every AVX instruction inside the
# AVX2 engine. Any function holding a VEX-encoded instruction (mnemonic v..., GNU or LLVM objdump) must be named in
# kiln_arch_avx2:: (cmake/kiln_engine_arch.cpp renames kiln per arch) or be an xsimd template on an
# AVX arch tag (its arch is in its own signature), else AVX2 code leaked into
# the SSE2 engine or the baseline program, e.g. a weak inline copy the linker kept from the AVX2
# TU: the program would die with SIGILL on a CPU without AVX2. And the AVX2 engine must really use
# 256-bit registers. Run: cmake -DOBJDUMP=<objdump> -DBINARY=<test_dispatch> -P dispatch_isa_check.cmake
set(_awk [=[
/^[0-9a-f]+ <.*>:$/ { fn = $0; next }
/:[ \t]+v[a-z0-9]+([ \t]|$)/ {
  if (fn ~ /kiln_arch_avx2::/) { avx2[fn] = 1; if ($0 ~ /%ymm/) ymm++ }
  else if (fn ~ /xsimd::(fma3<xsimd::)?avx/) { next }  # an xsimd template on an AVX arch tag (out of line
                                                       # at -O1): the tag is in its mangled name, no ODR merge
  else if (!(fn in leak)) { leak[fn] = 1; print "LEAK " fn }
}
END { n = 0; for (f in avx2) n++; print "AVX2_FUNCTIONS " n; print "YMM_INSTRUCTIONS " ymm + 0 }
]=])
execute_process(COMMAND "${OBJDUMP}" -d --no-show-raw-insn -C "${BINARY}"
                COMMAND awk "${_awk}"
                OUTPUT_VARIABLE _out RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "dispatch_isa_check: objdump | awk failed (${_rc})")
endif()
string(REGEX MATCHALL "LEAK [^\n]*" _leaks "${_out}")
string(REGEX MATCH "AVX2_FUNCTIONS ([0-9]+)" _ "${_out}")
set(_funcs "${CMAKE_MATCH_1}")
string(REGEX MATCH "YMM_INSTRUCTIONS ([0-9]+)" _ "${_out}")
set(_ymm "${CMAKE_MATCH_1}")
message(STATUS "dispatch_isa_check: ${_funcs} functions of the AVX2 engine use AVX, ${_ymm} instructions on ymm registers")
if(_leaks)
  string(REPLACE ";" "\n  " _list "${_leaks}")
  message(FATAL_ERROR "dispatch_isa_check: AVX instructions outside the AVX2 engine:\n  ${_list}")
endif()
if(NOT _funcs GREATER 0 OR NOT _ymm GREATER 0)
  message(FATAL_ERROR "dispatch_isa_check: the AVX2 engine has no AVX2 code (flags lost?)")
endif()
