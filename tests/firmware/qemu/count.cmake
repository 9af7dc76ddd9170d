# Runs a firmware image under qemu-system-arm with the instruction-count plugin and prints the
# count of every fw_mark() window (cmake -P script; a ctest of tests/firmware).
#   -DQEMU=<qemu-system-arm> -DNM=<arm-none-eabi-nm> -DPLUGIN=<libkiln_insn_count.so> -DELF=<image>
execute_process(COMMAND "${NM}" "${ELF}" OUTPUT_VARIABLE syms RESULT_VARIABLE rc)
string(REGEX MATCH "([0-9a-fA-F]+) T fw_mark" m "${syms}")
if(NOT rc EQUAL 0 OR NOT CMAKE_MATCH_1)
  message(FATAL_ERROR "no fw_mark in ${ELF}")
endif()
execute_process(
  COMMAND "${QEMU}" -M mps2-an386 -nographic -monitor none -serial none
          -semihosting-config enable=on,target=native
          -plugin "${PLUGIN},mark=0x${CMAKE_MATCH_1}" -d plugin -kernel "${ELF}"
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 120)
message("${out}${err}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${ELF} failed under the plugin (exit ${rc})")
endif()
string(REGEX MATCHALL "window [0-9]+: [0-9]+" windows "${out}${err}")
if(NOT windows)
  message(FATAL_ERROR "no instruction-count window was reported")
endif()
