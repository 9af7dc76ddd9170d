// Shape ops: reshape, flatten, transpose/permute, slice, concat — values against index arithmetic,
// and the plan: views are not copied.
#include "test_util.hpp"

namespace {
kiln::Tensor<float> iota(const kiln::Shape& s) {
  kiln::Tensor<float> t(s);
  for (kiln::index_t i = 0; i < t.size(); ++i) t[i] = static_cast<float>(i);
  return t;
}
}  // namespace

TEST_CASE("reshape and flatten keep row-major order; -1 is inferred") {
  const auto x = iota({2, 3, 4});
  auto model = [](auto t) { return std::make_tuple(kiln::reshape(t, {4, -1}), kiln::flatten(t, 1), kiln::flatten(t)); };
  auto net = kiln::compile(model);
  auto [a, b, c] = net(x);
  CHECK(a.shape() == kiln::Shape{4, 6});
  CHECK(b.shape() == kiln::Shape{2, 12});
  CHECK(c.shape() == kiln::Shape{24});
  for (kiln::index_t i = 0; i < 24; ++i) {
    CHECK(a[i] == static_cast<float>(i));
    CHECK(b[i] == static_cast<float>(i));
    CHECK(c[i] == static_cast<float>(i));
  }
}

TEST_CASE("permute and transpose are views: a following op reads through strides") {
  const auto x = iota({2, 3, 5});
  auto model = [](auto t) { return kiln::permute(t, {2, 0, 1}) * 2.f; };
  auto net = kiln::compile(model);
  const auto y = net(x);
  CHECK(y.shape() == kiln::Shape{5, 2, 3});
  for (kiln::index_t k = 0; k < 5; ++k)
    for (kiln::index_t i = 0; i < 2; ++i)
      for (kiln::index_t j = 0; j < 3; ++j) CHECK(y(k, i, j) == 2.f * x(i, j, k));
  CHECK(net.stats().kernels == 1);  // the permute costs no kernel of its own
  kt::check_close(y, kiln::eager(model)(x), {0, 0}, "eager permute");

  auto tr = kiln::compile([](auto t) { return kiln::transpose(t, 0, 2); });
  const auto z = tr(x);
  CHECK(z.shape() == kiln::Shape{5, 3, 2});
  CHECK(z(4, 2, 1) == x(1, 2, 4));
  // A double transpose simplifies away entirely.
  auto tt = kiln::compile([](auto t) { return kiln::transpose(kiln::transpose(t)) + 1.f; });
  const auto w = tt(x);
  for (kiln::index_t i = 0; i < 30; ++i) CHECK(w[i] == x[i] + 1.f);
  CHECK(tt.stats().simplified >= 1);
}

TEST_CASE("slice with steps and negative indices, as a view") {
  const auto x = iota({4, 10});
  auto model = [](auto t) { return kiln::slice(kiln::slice(t, 1, 1, -1, 3), 0, -3, 100); };
  auto net = kiln::compile(model);
  const auto y = net(x);
  CHECK(y.shape() == kiln::Shape{3, 3});  // rows 1..3, cols 1,4,7
  for (kiln::index_t i = 0; i < 3; ++i)
    for (kiln::index_t j = 0; j < 3; ++j) CHECK(y(i, j) == x(i + 1, 1 + 3 * j));
  kt::check_close(y, kiln::eager(model)(x), {0, 0}, "eager slice");
  auto empty = kiln::compile([](auto t) { return kiln::slice(t, 1, 5, 2); });
  CHECK(empty(x).shape() == kiln::Shape{4, 0});
}

TEST_CASE("concat along each axis, with views as inputs") {
  const auto a = iota({2, 3}), b = kt::random_tensor({2, 4}, 1), c = kt::random_tensor({5, 3}, 2);
  auto cols = kiln::compile([](auto x, auto y) { return kiln::concat({x, y, x}, 1); });
  const auto r = cols(a, b);
  CHECK(r.shape() == kiln::Shape{2, 10});
  for (kiln::index_t i = 0; i < 2; ++i) {
    for (kiln::index_t j = 0; j < 3; ++j) CHECK(r(i, j) == a(i, j));
    for (kiln::index_t j = 0; j < 4; ++j) CHECK(r(i, 3 + j) == b(i, j));
    for (kiln::index_t j = 0; j < 3; ++j) CHECK(r(i, 7 + j) == a(i, j));
  }
  auto rows = kiln::compile([](auto x, auto y) { return kiln::concat({kiln::relu(x), kiln::transpose(kiln::transpose(y))}, 0); });
  const auto s = rows(a, c);
  CHECK(s.shape() == kiln::Shape{7, 3});
  for (kiln::index_t i = 0; i < 5; ++i)
    for (kiln::index_t j = 0; j < 3; ++j) CHECK(s(2 + i, j) == c(i, j));
  auto perm = kiln::compile([](auto x) { return kiln::concat({kiln::transpose(x), kiln::transpose(x)}, 0); });
  const auto p = perm(a);
  CHECK(p.shape() == kiln::Shape{6, 2});
  CHECK(p(4, 1) == a(1, 1));
  kt::check_close(p, kiln::eager([](auto x) { return kiln::concat({kiln::transpose(x), kiln::transpose(x)}, 0); })(a),
                  {0, 0}, "eager concat of views");
}

TEST_CASE("reshape of a non-contiguous view is materialised once") {
  const auto x = iota({3, 4});
  auto model = [](auto t) { return kiln::reshape(kiln::transpose(t), {2, 6}); };
  auto net = kiln::compile(model);
  const auto y = net(x);
  const auto e = kiln::eager(model)(x);
  kt::check_close(y, e, {0, 0}, "reshape(transpose)");
  CHECK(y(0, 1) == x(1, 0));
}

TEST_CASE("an output that is an input, a view of an input, or repeated") {
  const auto x = iota({2, 3});
  auto net = kiln::compile([](auto t) { return std::make_tuple(t, kiln::transpose(t), kiln::relu(t), kiln::relu(t)); });
  auto [a, b, c, d] = net(x);
  kt::check_close(a, x, {0, 0}, "identity output");
  CHECK(b(2, 1) == x(1, 2));
  kt::check_close(c, x, {0, 0}, "relu");
  kt::check_close(d, x, {0, 0}, "same node twice");
}
