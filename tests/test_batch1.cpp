// kiln-test: header-only (reads the plan: whether a batch-1 model runs as a RowGemmChain)
// Batch-1 plans (runtime/row_gemm.hpp): a model whose every kernel is a one-row GEMM runs its
// layers straight through the M = 1 kernels. Checked against kiln::eager for layer widths N and
// depths K in 1..17 and 31..33, with and without bias, under each activation the GEMM epilogue
// carries in registers (none, relu, relu6, clamp), a one-output last layer (the dot-product
// path), a bias the model computes at run time, and a strided input row; the chain must be used
// exactly where it applies and the errors of run_into must stay what they were.
// Tolerance: |compiled - eager| <= 1e-5 + 1e-5 |eager| (the kernels sum K in another order).
#include <sstream>

#include "test_util.hpp"

namespace {

const kiln::index_t kSizes[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 31, 32, 33};
const kt::Tol kTol{1e-5, 1e-5};

template <class Net>
bool chain_active(const Net& net) {
  return net.executable() && net.executable()->row_chain().active();
}

struct Layer {
  kiln::Tensor<float> w, b;
};

// act: 0 none, 1 relu, 2 relu6, 3 clamp(-0.3, 0.4).
template <class T>
T activate(const T& h, int act) {
  switch (act) {
    case 1: return kiln::relu(h);
    case 2: return kiln::relu6(h);
    case 3: return kiln::clamp(h, -0.3f, 0.4f);
    default: return h;
  }
}

}  // namespace

TEST_CASE("batch 1: one layer, every N and K tail, with and without bias, each activation") {
  std::uint32_t seed = 100;
  for (kiln::index_t N : kSizes) {
    for (kiln::index_t K : kSizes) {
      const Layer l{kt::random_tensor({N, K}, seed++, -1.f, 1.f), kt::random_tensor({N}, seed++, -1.f, 1.f)};
      const auto x = kt::random_tensor({1, K}, seed++, -1.f, 1.f);
      for (int act = 0; act < 4; ++act) {
        for (bool bias : {false, true}) {
          auto model = [&l, act, bias](const auto& in) {
            return bias ? activate(kiln::linear(in, l.w, l.b), act) : activate(kiln::linear(in, l.w), act);
          };
          auto net = kiln::compile(model);
          const kiln::Tensor<float> got = net(x);
          INFO("N=" << N << " K=" << K << " act=" << act << " bias=" << bias);
          CHECK(chain_active(net));
          kt::check_close(got, kiln::eager(model)(x), kTol, "one layer");
          kiln::Tensor<float> y({1, N});
          REQUIRE(net.run_into(y.view(), x));
          kt::check_close(y, got, {0, 0}, "run_into = net(x)");
        }
      }
    }
  }
}

TEST_CASE("batch 1: an MLP 10-64-32-1 and deeper chains with odd widths") {
  const kiln::index_t widths[][5] = {{10, 64, 32, 1, 0}, {33, 17, 31, 5, 1}, {3, 100, 1, 0, 0}, {16, 16, 16, 16, 16}};
  std::uint32_t seed = 7;
  for (const auto& wd : widths) {
    std::vector<Layer> layers;
    for (int i = 0; i + 1 < 5 && wd[i + 1] > 0; ++i)
      layers.push_back({kt::random_tensor({wd[i + 1], wd[i]}, seed++, -1.f, 1.f), kt::random_tensor({wd[i + 1]}, seed++)});
    auto model = [&layers](const auto& in) {
      auto h = kiln::linear(in, layers[0].w, layers[0].b);
      for (std::size_t i = 1; i < layers.size(); ++i) h = kiln::linear(kiln::relu(h), layers[i].w, layers[i].b);
      return h;
    };
    const auto x = kt::random_tensor({1, wd[0]}, seed++);
    auto net = kiln::compile(model);
    const kiln::Tensor<float> got = net(x);
    INFO("input width " << wd[0] << ", " << layers.size() << " layers");
    CHECK(chain_active(net));
    CHECK(net.executable()->row_chain().layers() == layers.size());
    kt::check_close(got, kiln::eager(model)(x), {1e-5, 1e-5}, "MLP");
    // Later calls with new data reuse the plan (and the chain).
    const auto x2 = kt::random_tensor({1, wd[0]}, seed++);
    kt::check_close(net(x2), kiln::eager(model)(x2), {1e-5, 1e-5}, "MLP, second input");
    CHECK(net.stats().traces == 1);
  }
}

TEST_CASE("batch 1: a bias computed at run time and a strided input row") {
  const Layer l{kt::random_tensor({13, 9}, 1), kt::random_tensor({13}, 2)};
  // The bias is the model's second input: added in registers from where that input lies.
  auto model = [&l](const auto& in, const auto& extra) { return kiln::relu(kiln::linear(in, l.w) + extra); };
  const auto x = kt::random_tensor({1, 9}, 3), extra = kt::random_tensor({13}, 4);
  auto net = kiln::compile(model);
  kt::check_close(net(x, extra), kiln::eager(model)(x, extra), kTol, "run-time bias");
  CHECK(chain_active(net));
  const auto extra2 = kt::random_tensor({13}, 6);
  kt::check_close(net(x, extra2), kiln::eager(model)(x, extra2), kTol, "run-time bias, another value");

  // Every other element of an input row: the GEMM reads A with a column stride of 2.
  auto strided = [&l](const auto& in) { return kiln::linear(kiln::slice(in, 1, 0, 18, 2), l.w, l.b); };
  const auto wide = kt::random_tensor({1, 18}, 5);
  auto snet = kiln::compile(strided);
  kt::check_close(snet(wide), kiln::eager(strided)(wide), kTol, "strided row");
  CHECK(chain_active(snet));
}

TEST_CASE("batch 1: plans the chain does not cover keep the general path") {
  const Layer l{kt::random_tensor({8, 5}, 1), kt::random_tensor({8}, 2)};
  auto lin = [&l](const auto& in) { return kiln::relu(kiln::linear(in, l.w, l.b)); };
  // Batch 2 (M = 2): the small-M kernels.
  const auto x2 = kt::random_tensor({2, 5}, 3);
  auto net2 = kiln::compile(lin);
  kt::check_close(net2(x2), kiln::eager(lin)(x2), kTol, "batch 2");
  CHECK_FALSE(chain_active(net2));
  // A tail program after the GEMM (tanh is not a register epilogue).
  auto tail = [&l](const auto& in) { return kiln::tanh(kiln::linear(in, l.w, l.b)); };
  const auto x1 = kt::random_tensor({1, 5}, 4);
  auto tnet = kiln::compile(tail);
  kt::check_close(tnet(x1), kiln::eager(tail)(x1), kTol, "tail program");
  CHECK_FALSE(chain_active(tnet));
  // Two outputs, one of them a hidden layer also feeding the next: still all batch-1 GEMMs.
  const Layer l2{kt::random_tensor({3, 8}, 5), kt::random_tensor({3}, 6)};
  auto two = [&l, &l2](const auto& in) {
    auto h = kiln::relu(kiln::linear(in, l.w, l.b));
    return std::make_tuple(h, kiln::linear(h, l2.w, l2.b));
  };
  auto n2 = kiln::compile(two);
  const auto [h, out] = n2(x1);
  const auto [eh, eout] = kiln::eager(two)(x1);
  kt::check_close(h, eh, kTol, "two outputs: hidden");
  kt::check_close(out, eout, kTol, "two outputs: last");
  CHECK(chain_active(n2));
}

#if KILN_EXCEPTIONS
TEST_CASE("batch 1: run_into and guards still report bad outputs and shapes") {
  const Layer l{kt::random_tensor({8, 5}, 1), kt::random_tensor({8}, 2)};
  auto lin = [&l](const auto& in) { return kiln::relu(kiln::linear(in, l.w, l.b)); };
  auto net = kiln::compile(lin);
  const auto x = kt::random_tensor({1, 5}, 3);
  (void)net(x);
  REQUIRE(chain_active(net));
  kiln::Tensor<float> wrong({1, 7});
  const std::string msg = kt::error_of([&] { (void)net.run_into(wrong.view(), x); });
  CHECK(msg.find("output 0 has shape [1, 7], the model produces [1, 8]") != std::string::npos);
  // An input of another width is not this plan: the model is traced again and the op names it.
  const auto bad = kt::random_tensor({1, 6}, 4);
  const std::string shape_msg = kt::error_of([&] { (void)net(bad); });
  CHECK(shape_msg.find("linear: inner dimensions differ") != std::string::npos);
  CHECK(shape_msg.find("[1, 6]") != std::string::npos);
}
#endif
