# kiln's optional dependency on xsimd.
#
# kiln_find_xsimd() sets in the caller's scope:
#   KILN_WITH_XSIMD  ON when the `xsimd` CMake target is usable (kiln links it)
#   KILN_WITH_XTL    ON when that target needs xtl (then kilnConfig.cmake finds xtl too)
#
# Debian's xsimd 8.1 package links its `xsimd` target against `xtl` but its config never
# finds xtl, so xtl has to be found first (or the link fails with "cannot find -lxtl").
# xsimd >= 9 needs no xtl. Without a usable xsimd, kiln's headers fall back to their
# scalar kernels (config.hpp also probes <xsimd/xsimd.hpp> with __has_include).
function(kiln_find_xsimd)
  set(with_xsimd OFF)
  set(with_xtl OFF)
  find_package(xtl QUIET)
  find_package(xsimd QUIET)
  if(xsimd_FOUND AND TARGET xsimd)
    get_target_property(deps xsimd INTERFACE_LINK_LIBRARIES)
    if(deps AND "xtl" IN_LIST deps)
      if(TARGET xtl)
        set(with_xsimd ON)
        set(with_xtl ON)
      else()
        message(WARNING "kiln: xsimd's CMake target needs xtl, which was not found "
                        "(install xtl-dev); building without xsimd")
      endif()
    else()
      set(with_xsimd ON)
    endif()
  endif()
  # Cross builds: Debian installs xsimd's config under the *host's* multiarch directory
  # (/usr/lib/x86_64-linux-gnu/cmake/xsimd), which a cross find_package never searches. The
  # headers are arch-independent and xsimd 8.1 needs xtl's only for XSIMD_ENABLE_XTL_COMPLEX,
  # so an imported target for the headers alone is the same dependency. Without it the cross
  # compiler (which does not search /usr/include) would silently build scalar kernels only.
  if(NOT with_xsimd AND CMAKE_CROSSCOMPILING)
    find_path(KILN_XSIMD_INCLUDE_DIR NAMES xsimd/xsimd.hpp
              DOC "xsimd headers for a cross build (arch-independent)")
    if(KILN_XSIMD_INCLUDE_DIR)
      if(NOT TARGET xsimd)
        add_library(xsimd INTERFACE IMPORTED GLOBAL)
        set_target_properties(xsimd PROPERTIES
          INTERFACE_INCLUDE_DIRECTORIES "${KILN_XSIMD_INCLUDE_DIR}")
      endif()
      set(with_xsimd ON)
      file(STRINGS "${KILN_XSIMD_INCLUDE_DIR}/xsimd/config/xsimd_config.hpp" _v
           REGEX "^#define XSIMD_VERSION_(MAJOR|MINOR|PATCH) ")
      string(REGEX REPLACE "[^;]*_MAJOR ([0-9]+);[^;]*_MINOR ([0-9]+);[^;]*_PATCH ([0-9]+)" "\\1.\\2.\\3"
             xsimd_VERSION "${_v}")
      set(xsimd_DIR "headers in ${KILN_XSIMD_INCLUDE_DIR}, cross build")
    endif()
  endif()
  if(with_xsimd)
    message(STATUS "kiln: using xsimd ${xsimd_VERSION} (${xsimd_DIR})")
  else()
    message(STATUS "kiln: xsimd not found: scalar kernels only")
  endif()
  set(KILN_WITH_XSIMD ${with_xsimd} PARENT_SCOPE)
  set(KILN_WITH_XTL ${with_xtl} PARENT_SCOPE)
endfunction()
