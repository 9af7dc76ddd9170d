// Built with -fno-exceptions: a failing op records kiln::last_error() and yields an empty result;
// later ops pass the empty result through; the compiled model returns empty tensors.
// Its own doctest main: doctest's configuration must agree across a binary's translation units.
#define DOCTEST_CONFIG_NO_EXCEPTIONS_BUT_WITH_ALL_ASSERTS
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include "test_util.hpp"

#if KILN_EXCEPTIONS
#error "this test must be built with -fno-exceptions"
#endif

TEST_CASE("without exceptions, errors are a status the caller reads") {
  kiln::clear_error();
  const auto a = kt::random_tensor({3, 4}, 1), b = kt::random_tensor({5, 4}, 2);
  auto model = [](auto x, auto y) { return kiln::relu(x + y) * 2.f; };
  const auto e = kiln::eager(model)(a, b);
  CHECK(e.empty());
  CHECK(kiln::last_error().code() == kiln::Errc::shape_mismatch);
  CHECK(std::string(kiln::last_error().message()).find("[5, 4]") != std::string::npos);

  kiln::clear_error();
  auto net = kiln::compile(model);
  const auto c = net(a, b);
  CHECK(c.empty());
  CHECK(kiln::last_error().code() == kiln::Errc::shape_mismatch);
  CHECK(std::string(kiln::last_error().message()).find("add") != std::string::npos);

  kiln::clear_error();
  const auto ok = net(a, a);
  CHECK(kiln::last_error().ok());
  CHECK(ok.shape() == a.shape());
}
