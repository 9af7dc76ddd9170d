// The accelerator hook wired into compile() (accel/offload.hpp): which nodes a backend runs, the
// numbers against the pure-CPU plan, CPU fallback of refused/failed regions with the reason in
// stats(), strict mode, predicates that throw or claim everything, deferred (asynchronous) runs,
// and a plan left unchanged by a backend that claims nothing. The backend is tests/
// accel_reference_backend.hpp: its own naive kernels, so agreement with kiln's plan is a real check.
// Links kiln::compiled: everything goes through the engine seam.
#include <doctest/doctest.h>

#include <sstream>
#include <string>

#include <kiln/accel/host_async.hpp>

#include "accel_reference_backend.hpp"
#include "test_util.hpp"

namespace {

using kiln::accel::Where;

struct Mlp {
  kiln::Tensor<float> w1 = kt::random_tensor({24, 10}, 1, -0.5f, 0.5f), b1 = kt::random_tensor({24}, 2);
  kiln::Tensor<float> w2 = kt::random_tensor({12, 24}, 3, -0.5f, 0.5f), b2 = kt::random_tensor({12}, 4);
  kiln::Tensor<float> w3 = kt::random_tensor({5, 12}, 5, -0.5f, 0.5f), b3 = kt::random_tensor({5}, 6);
};

// linear+bias+relu -> linear+bias+relu -> linear+bias -> softmax
auto mlp_model(const Mlp& p) {
  return [&p](auto x) {
    auto h = kiln::relu(kiln::linear(x, p.w1, p.b1));
    h = kiln::relu(kiln::linear(h, p.w2, p.b2));
    return kiln::softmax(kiln::linear(h, p.w3, p.b3), -1);
  };
}

// softmax in the middle of a supported chain: the device cannot run it
auto split_model(const Mlp& p) {
  return [&p](auto x) {
    auto h = kiln::softmax(kiln::relu(kiln::linear(x, p.w1, p.b1)), -1);
    return kiln::linear(h, p.w2, p.b2) * 2.f;
  };
}

kiln::CompileOptions with(const kiln::accel::Backend& b, bool strict = false) {
  kiln::CompileOptions o;
  o.offload = kiln::accel::offload(b, strict);
  return o;
}

int count_where(const kiln::accel::Report& r, const kiln::Graph& g, Where w) {
  int n = 0;
  for (int i = 0; i < g.size(); ++i) n += (!g[i].is_leaf() && r.where[i] == w) ? 1 : 0;
  return n;
}

template <class Net>
const kiln::Graph& planned(const Net& net) {
  return *net.planned_graph();
}

constexpr kt::Tol kTol{1e-5, 1e-5};

}  // namespace

TEST_CASE("an MLP's linear+bias+relu chains run on the device as one region; softmax stays on the CPU") {
  Mlp p;
  refdev::Device dev;
  const auto be = refdev::backend(dev);
  auto net = kiln::compile(mlp_model(p), with(be));
  auto cpu = kiln::compile(mlp_model(p));
  const auto x = kt::random_tensor({7, 10}, 11);
  const auto y = net(x);
  kt::check_close(y, cpu(x), kTol, "offloaded MLP vs CPU plan");
  kt::check_close(net(x), cpu(x), kTol, "second call");

  const kiln::accel::Report* r = net.stats().offload;
  REQUIRE(r != nullptr);
  CHECK(r->offloaded_regions == 1);  // three composites merged into one region
  CHECK(r->offloaded_nodes == 8);    // 3 matmul + 3 add + 2 relu
  CHECK(r->refused_regions == 0);
  const kiln::Graph& g = planned(net);
  for (int i = 0; i < g.size(); ++i) {
    if (g[i].op == kiln::Op::softmax) {
      CHECK(r->where[i] == Where::cpu);
      CHECK(r->placement[i] == kiln::accel::Placement::not_supported);
    }
    if (g[i].op == kiln::Op::matmul) CHECK(r->where[i] == Where::device);
  }
  REQUIRE(dev.log.calls.size() == 3);
  CHECK(dev.log.calls[0] == "compile r0: linear_bias_relu linear_bias_relu linear_bias");
  CHECK(dev.log.calls[1] == "run r0");
  CHECK(dev.log.compiles == 1);
  CHECK(dev.log.runs == 2);
  CHECK(net.stats().kernels == 2);  // the offload step and the softmax

  std::ostringstream graph, plan;
  net.print_graph(graph);
  net.print_plan(plan);
  CHECK(graph.str().find("offload r0") != std::string::npos);
  CHECK(graph.str().find("r0 on refdev: linear_bias_relu: %2 %4 %5 linear_bias_relu: %7 %9 %10 linear_bias: %12 %14") !=
        std::string::npos);
  CHECK(graph.str().find("softmax(axis=1): CPU, not supported by the target") != std::string::npos);
  CHECK(plan.str().find("offload over") != std::string::npos);
  MESSAGE(graph.str());
  net.reset();
  CHECK(dev.log.releases == 1);
}

TEST_CASE("an unsupported op in the middle of a supported chain splits it into two regions") {
  Mlp p;
  refdev::Device dev;
  const auto be = refdev::backend(dev);
  auto net = kiln::compile(split_model(p), with(be));
  const auto x = kt::random_tensor({3, 10}, 12);
  kt::check_close(net(x), kiln::compile(split_model(p))(x), kTol, "split chain vs CPU plan");
  const kiln::accel::Report& r = *net.stats().offload;
  CHECK(r.offloaded_regions == 2);
  CHECK(count_where(r, planned(net), Where::cpu) == 1);  // the softmax
  CHECK(dev.log.calls[0] == "compile r0: linear_bias_relu");
  CHECK(dev.log.calls[1] == "compile r1: linear_bias mul");  // the pattern, then the predicate's mul
}

TEST_CASE("conv2d+bias+relu with a residual add, offloaded, matches the CPU plan") {
  const auto w = kt::random_tensor({8, 3, 3, 4}, 21, -0.5f, 0.5f), b = kt::random_tensor({8}, 22);
  const auto w2 = kt::random_tensor({8, 1, 1, 8}, 23, -0.5f, 0.5f), b2 = kt::random_tensor({8}, 24);
  auto model = [&](auto x) {
    auto h = kiln::relu(kiln::conv2d(x, w, b, kiln::Conv2dOptions().with_padding(kiln::Padding2d::same())));
    return kiln::conv2d(h, w2, b2) + h;  // conv2d_bias, then the residual add (predicate)
  };
  refdev::Device dev;
  const auto be = refdev::backend(dev);
  auto net = kiln::compile(model, with(be));
  const auto x = kt::random_tensor({2, 6, 5, 4}, 25);
  kt::check_close(net(x), kiln::compile(model)(x), kTol, "conv chain vs CPU plan");
  CHECK(net.stats().offload->offloaded_regions == 1);
  CHECK(dev.log.calls[0] == "compile r0: conv2d_bias_relu conv2d_bias add");
}

TEST_CASE("a region the backend refuses to compile runs on the CPU, with the reason in stats()") {
  Mlp p;
  refdev::Device dev;
  dev.opt.refuse_compile = true;
  const auto be = refdev::backend(dev);
  auto net = kiln::compile(mlp_model(p), with(be));
  const auto x = kt::random_tensor({4, 10}, 13);
  kt::check_close(net(x), kiln::compile(mlp_model(p))(x), kTol, "refused region on the CPU");
  const kiln::accel::Report& r = *net.stats().offload;
  CHECK(r.offloaded_regions == 0);
  CHECK(r.refused_regions == 1);
  CHECK(std::string(r.regions[0].status.message()) == "refdev: device out of memory");
  CHECK(count_where(r, planned(net), Where::compile_failed) == 8);
  auto cpu = kiln::compile(mlp_model(p));
  (void)cpu(x);
  CHECK(net.stats().kernels == cpu.stats().kernels);  // fused like any CPU plan
  CHECK(dev.log.runs == 0);
  std::ostringstream os;
  net.print_graph(os);
  CHECK(os.str().find("refused at compile, runs on the CPU: refdev: device out of memory") != std::string::npos);
}

TEST_CASE("a failing run falls back to the CPU for that call; strict mode makes it an error") {
  Mlp p;
  const auto x = kt::random_tensor({4, 10}, 14);
  const auto want = kiln::compile(mlp_model(p))(x);
  for (const bool throws : {false, true}) {
    CAPTURE(throws);
    refdev::Device dev;
    dev.opt.fail_run = !throws;
    dev.opt.throw_run = throws;
    const auto be = refdev::backend(dev);
    auto net = kiln::compile(mlp_model(p), with(be));
    kt::check_close(net(x), want, kTol, "run failure: CPU fallback");
    kt::check_close(net(x), want, kTol, "again");
    const kiln::accel::Report& r = *net.stats().offload;
    CHECK(r.offloaded_regions == 1);
    CHECK(r.run_fallbacks == 2);
    CHECK(std::string(r.regions[0].status.message()) == (throws ? "the backend threw" : "refdev: device busy"));

    auto strict = kiln::compile(mlp_model(p), with(be, /*strict*/ true));
    try {
      (void)strict(x);
      FAIL("strict offload should have failed");
    } catch (const kiln::Error& e) {
      CHECK(std::string(e.what()).find("offload (strict): backend 'refdev' failed to run region r0") != std::string::npos);
    }
  }
}

TEST_CASE("strict mode: a refused compile fails compile() with the backend's reason") {
  Mlp p;
  refdev::Device dev;
  dev.opt.refuse_compile = true;
  const auto be = refdev::backend(dev);
  auto net = kiln::compile(mlp_model(p), with(be, true));
  try {
    (void)net(kt::random_tensor({4, 10}, 15));
    FAIL("strict offload should have failed");
  } catch (const kiln::Error& e) {
    CHECK(std::string(e.what()) ==
          "offload (strict): backend 'refdev' refused region r0 of 8 nodes: refdev: device out of memory");
  }
}

namespace {
bool throwing_predicate(const kiln::Graph& g, int id) {
  if (g[id].op == kiln::Op::elementwise && g[id].fn == kiln::EwFn::mul) throw std::runtime_error("driver says no");
  return refdev::supports(g, id);
}
bool claims_everything(const kiln::Graph&, int) { return true; }
}  // namespace

TEST_CASE("a predicate that throws refuses the node; one that claims everything cannot break the graph") {
  Mlp p;
  const auto x = kt::random_tensor({3, 10}, 16);
  const auto want = kiln::compile(split_model(p))(x);
  {
    refdev::Device dev;
    const auto be = refdev::backend(dev, throwing_predicate);
    auto net = kiln::compile(split_model(p), with(be));
    kt::check_close(net(x), want, kTol, "throwing predicate");
    const kiln::accel::Report& r = *net.stats().offload;
    const kiln::Graph& g = planned(net);
    for (int i = 0; i < g.size(); ++i)
      if (g[i].op == kiln::Op::elementwise && g[i].fn == kiln::EwFn::mul) {
        CHECK(r.where[i] == Where::cpu);
        CHECK(r.placement[i] == kiln::accel::Placement::predicate_threw);
      }
  }
  {
    // Claims softmax too: one region of every node, which the backend's compile refuses (no
    // softmax kernel): all of it back on the CPU, numbers intact.
    refdev::Device dev;
    const auto be = refdev::backend(dev, claims_everything);
    auto net = kiln::compile(split_model(p), with(be));
    kt::check_close(net(x), want, kTol, "greedy predicate");
    const kiln::accel::Report& r = *net.stats().offload;
    CHECK(r.refused_regions == 1);
    CHECK(std::string(r.regions[0].status.message()) == "refdev: no kernel for softmax");
  }
}

TEST_CASE("deferred (asynchronous) regions: inputs and outputs stay untouched until wait") {
  // Two independent branches off x: the device's (linear chain) and the CPU's (exp, sum); the
  // device only computes at wait(), so any buffer the planner reused in between would show.
  Mlp p;
  auto model = [&p](auto x) {
    // The region reads t from the arena; the CPU branch's exp(x), the same size, would take t's
    // slot if the planner forgot that the device still reads it.
    auto t = kiln::tanh(x);
    auto dev_branch = kiln::relu(kiln::linear(kiln::relu(kiln::linear(t, p.w1, p.b1)), p.w2, p.b2));
    auto cpu_branch = kiln::sigmoid(kiln::sum(kiln::exp(x) - t, -1, true));  // nothing the device takes
    return kiln::softmax(dev_branch - cpu_branch, -1);
  };
  refdev::Device dev;
  dev.opt.deferred = true;
  const auto be = refdev::backend(dev);
  auto net = kiln::compile(model, with(be));
  const auto x = kt::random_tensor({5, 10}, 17);
  kt::check_close(net(x), kiln::compile(model)(x), kTol, "deferred region vs CPU plan");
  const kiln::accel::Report& r = *net.stats().offload;
  CHECK(r.offloaded_regions == 1);
  CHECK(r.regions[0].async);
  // submitted before the CPU branch ran, waited for only before the add that reads it
  std::ostringstream plan;
  net.print_plan(plan);
  MESSAGE(plan.str());
  CHECK(plan.str().find("submitted, waited for before k") != std::string::npos);
  CHECK(dev.log.calls.back() == "wait r0");

  dev.opt.fail_run = true;  // submit fails: the CPU runs the region at once
  kt::check_close(net(x), kiln::compile(model)(x), kTol, "failed submit");
  CHECK(r.run_fallbacks == 1);
}

TEST_CASE("no backend, or one that claims nothing, leaves the plan unchanged") {
  Mlp p;
  const auto x = kt::random_tensor({4, 10}, 18);
  auto plain = kiln::compile(mlp_model(p));
  (void)plain(x);
  CHECK(plain.stats().offload == nullptr);
  refdev::Device dev;
  kiln::accel::Backend nothing = refdev::backend(dev, [](const kiln::Graph&, int) { return false; });
  nothing.target.num_patterns = 0;
  auto net = kiln::compile(mlp_model(p), with(nothing));
  kt::check_close(net(x), plain(x), {0, 0}, "bit-identical");
  std::ostringstream a, b;
  plain.print_plan(a);
  net.print_plan(b);
  CHECK(a.str() == b.str());
  CHECK(net.stats().arena_bytes == plain.stats().arena_bytes);
  CHECK(net.stats().offload->offloaded_regions == 0);
  CHECK(dev.log.compiles == 0);
}

TEST_CASE("a strided region input is copied densely; a region value read by the CPU and returned") {
  Mlp p;
  auto model = [&p](auto x) {
    auto h = kiln::relu(kiln::linear(kiln::transpose(x), p.w1, p.b1));  // reads x [10, 6] as [6, 10]
    auto doubled = h * 2.f;                                              // same region (predicate)
    return std::make_tuple(kiln::exp(h), doubled, h);                    // h: CPU input and output
  };
  refdev::Device dev;
  const auto be = refdev::backend(dev);
  auto net = kiln::compile(model, with(be));
  auto cpu = kiln::compile(model);
  const auto x = kt::random_tensor({10, 6}, 19);
  const auto [e, d, h] = net(x);
  const auto [e0, d0, h0] = cpu(x);
  kt::check_close(e, e0, kTol, "exp of a region output");
  kt::check_close(d, d0, kTol, "region output");
  kt::check_close(h, h0, kTol, "region value that is also an output");
  const kiln::accel::Report& r = *net.stats().offload;
  CHECK(r.offloaded_regions == 1);
  CHECK(dev.log.calls[0] == "compile r0: linear_bias_relu mul");
  const kiln::Graph& g = planned(net);
  for (int i = 0; i < g.size(); ++i)
    if (g[i].op == kiln::Op::permute) CHECK(r.placement[i] == kiln::accel::Placement::view);
}

TEST_CASE("two backends: the first one's regions win, the second takes what is left") {
  Mlp p;
  refdev::Device dev_a, dev_b;
  kiln::accel::Backend both[2] = {refdev::backend(dev_a, nullptr), refdev::backend(dev_b)};  // patterns only; all
  both[1].target.name = "second";
  both[1].target.num_patterns = 0;  // single ops only
  kiln::CompileOptions o;
  o.offload = kiln::accel::offload(both, 2);
  auto net = kiln::compile(split_model(p), o);
  const auto x = kt::random_tensor({3, 10}, 20);
  kt::check_close(net(x), kiln::compile(split_model(p))(x), kTol, "two backends vs CPU plan");
  const kiln::accel::Report& r = *net.stats().offload;
  CHECK(r.offloaded_regions == 3);
  CHECK(dev_a.log.calls[0] == "compile r0: linear_bias_relu");
  CHECK(dev_a.log.calls[1] == "compile r1: linear_bias");
  REQUIRE(!dev_b.log.calls.empty());
  CHECK(dev_b.log.calls[0] == "compile r2: mul");
  CHECK(r.regions[2].backend == 1);
  std::ostringstream os;
  net.print_graph(os);
  CHECK(os.str().find("r2 on second: %") != std::string::npos);
}

TEST_CASE("HostAsync runs a synchronous backend on a worker thread") {
  Mlp p;
  refdev::Device dev;
  kiln::accel::HostAsync worker(refdev::backend(dev));  // outlives the model below
  const kiln::accel::Backend be = worker.backend();
  CHECK(be.is_async());
  auto net = kiln::compile(mlp_model(p), with(be));
  const auto x = kt::random_tensor({9, 10}, 21);
  const auto want = kiln::compile(mlp_model(p))(x);
  for (int call = 0; call < 3; ++call) kt::check_close(net(x), want, kTol, "HostAsync vs CPU plan");
  CHECK(net.stats().offload->regions[0].async);
  CHECK(dev.log.runs == 3);  // the inner run, once per call, on the worker
  dev.opt.fail_run = true;   // a failure on the worker surfaces at wait: CPU fallback
  kt::check_close(net(x), want, kTol, "HostAsync run failure");
  CHECK(net.stats().offload->run_fallbacks == 1);
}
