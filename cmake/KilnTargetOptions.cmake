# Build settings shared by kiln's own tests, benchmarks, examples and compile checks.
# Nothing here is exported or applied to consumers of kiln::kiln.

# Warnings: every kiln-owned target is warning-clean (-Werror unless KILN_WERROR=OFF).
# Third-party headers (xsimd, doctest, benchmark, Eigen) come in as system headers.
add_library(kiln_dev_options INTERFACE)
if(MSVC)
  target_compile_options(kiln_dev_options INTERFACE /W4 /permissive- $<$<BOOL:${KILN_WERROR}>:/WX>)
else()
  target_compile_options(kiln_dev_options INTERFACE
    -Wall -Wextra -Wpedantic $<$<BOOL:${KILN_WERROR}>:-Werror>)
endif()

if(KILN_SANITIZE)
  if(MSVC)
    message(FATAL_ERROR "kiln: KILN_SANITIZE supports GCC and Clang only")
  endif()
  set(_kiln_san -fsanitize=address,undefined)
  target_compile_options(kiln_dev_options INTERFACE
    ${_kiln_san} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  target_link_options(kiln_dev_options INTERFACE ${_kiln_san})
  unset(_kiln_san)
endif()

# kiln_dev_target(<target>): link kiln::kiln and apply the settings above.
# Strict ISO C++17 (-std=c++17, not gnu++17) so GNU extensions do not slip in.
function(kiln_dev_target target)
  target_link_libraries(${target} PRIVATE kiln::kiln kiln_dev_options)
  set_target_properties(${target} PROPERTIES CXX_EXTENSIONS OFF)
endfunction()
