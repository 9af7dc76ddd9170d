// The firmware has no heap: every allocation entry point stops the program with status 99, so a
// test that allocates (directly, or through a library call that does) fails loudly. With the
// heap-free link there is no _sbrk either, so most heap use already fails to link.
#include <cstddef>

#include "semihost.hpp"

namespace {
[[noreturn]] void heap_used(const char* what) {
  fw::semihost::write("FATAL: heap use in firmware: ");
  fw::semihost::write(what);
  fw::semihost::write("\n");
  fw::semihost::exit(99);
}
}  // namespace

extern "C" {
void* malloc(std::size_t) { heap_used("malloc"); }
void* calloc(std::size_t, std::size_t) { heap_used("calloc"); }
void* realloc(void*, std::size_t) { heap_used("realloc"); }
void free(void* p) {
  if (p) heap_used("free");
}
}
void* operator new(std::size_t) { heap_used("operator new"); }
void* operator new[](std::size_t) { heap_used("operator new[]"); }
void operator delete(void*) noexcept { heap_used("operator delete"); }
void operator delete[](void*) noexcept { heap_used("operator delete[]"); }
void operator delete(void*, std::size_t) noexcept { heap_used("operator delete"); }
void operator delete[](void*, std::size_t) noexcept { heap_used("operator delete[]"); }
