// examples/accel_async.cpp — an asynchronous accelerator overlapping with an independent CPU branch.
//
// The "device" is a slow simulated NPU: a backend whose run computes linear+bias+relu with its own
// loops and then sleeps (transfer and launch latency). kiln::accel::HostAsync runs it on a host
// worker thread, so the compiled model submits the device's region, runs its CPU-only branch
// meanwhile, and waits only before the result is needed. The program prints the wall time of one
// call beside the time of each part alone: overlapped, the call takes about the longer part, not
// the sum. Needs host threads (not built with KILN_NO_THREADS).
#include <kiln/accel/host_async.hpp>
#include <kiln/kiln.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <random>
#include <thread>

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

// ---- the simulated device -----------------------------------------------------------------------
struct SlowNpu {
  int latency_ms = 8;
  double best_ms = 1e30;  // shortest run (compute + latency)
};

struct Layer {  // one linear_bias_relu composite of the region
  const float *w = nullptr, *b = nullptr;
  kiln::index_t in = 0, out = 0;
};
struct Program {
  std::vector<Layer> layers;
  kiln::index_t rows = 0;
  std::vector<float> a, b;  // ping-pong activations
};

// Accepts regions made only of linear_bias_relu composites with constant weights.
void* npu_compile(void*, const kiln::accel::Region& r, kiln::Status& why) {
  const kiln::Graph& g = *r.graph;
  auto p = std::make_unique<Program>();
  for (int i = 0; i < g.size(); ++i) {
    const kiln::Node& n = g[i];
    if (n.is_leaf() || n.op != kiln::Op::matmul) continue;
    int add = i + 1;  // the composite's add: the matmul's only consumer
    while (add < g.size() && !(g[add].num_inputs == 2 && (g[add].inputs[0] == i || g[add].inputs[1] == i))) ++add;
    if (add == g.size()) return nullptr;
    const kiln::Node& bias_add = g[add];
    const int bias = bias_add.inputs[0] == i ? bias_add.inputs[1] : bias_add.inputs[0];
    if (!r.composite[i] || std::strcmp(r.composite[i], "linear_bias_relu") != 0 || !n.trans_b ||
        g[n.inputs[1]].op != kiln::Op::constant || g[bias].op != kiln::Op::constant) {
      why = kiln::Status(kiln::Errc::not_supported) << "slow-npu: only linear_bias_relu with constant weights";
      return nullptr;
    }
    const kiln::Shape& ws = g[n.inputs[1]].shape;
    p->layers.push_back({static_cast<const float*>(g[n.inputs[1]].data), static_cast<const float*>(g[bias].data), ws[1], ws[0]});
    p->rows = n.shape[0];
  }
  return p.release();
}

bool npu_run(void* ctx, void* handle, const void* const* ins, void* const* outs, kiln::Status&) {
  auto& dev = *static_cast<SlowNpu*>(ctx);
  auto& p = *static_cast<Program*>(handle);
  const auto t0 = Clock::now();
  const float* x = static_cast<const float*>(ins[0]);
  for (std::size_t l = 0; l < p.layers.size(); ++l) {
    const Layer& L = p.layers[l];
    std::vector<float>& y = l % 2 ? p.b : p.a;
    y.assign(static_cast<std::size_t>(p.rows * L.out), 0.f);
    for (kiln::index_t m = 0; m < p.rows; ++m)
      for (kiln::index_t o = 0; o < L.out; ++o) {
        float acc = L.b[o];
        for (kiln::index_t k = 0; k < L.in; ++k) acc += x[m * L.in + k] * L.w[o * L.in + k];
        y[static_cast<std::size_t>(m * L.out + o)] = acc > 0.f ? acc : 0.f;
      }
    x = y.data();
  }
  std::memcpy(outs[0], x, static_cast<std::size_t>(p.rows * p.layers.back().out) * sizeof(float));
  std::this_thread::sleep_for(std::chrono::milliseconds(dev.latency_ms));
  dev.best_ms = std::fmin(dev.best_ms, ms_since(t0));
  return true;
}

void npu_release(void*, void* handle) { delete static_cast<Program*>(handle); }

constexpr kiln::accel::Pattern kNpuPatterns[] = {
    {"linear_bias_relu", {kiln::accel::step(kiln::Op::matmul), kiln::accel::step(kiln::EwFn::add), kiln::accel::step(kiln::EwFn::relu)}, 3},
};

kiln::Tensor<float> random(kiln::Shape s, unsigned seed, float scale) {
  kiln::Tensor<float> t(s);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-scale, scale);
  for (float& v : t) v = d(rng);
  return t;
}

}  // namespace

int main() {
  const kiln::index_t batch = 64, in = 256, hidden = 64, wide = 4096;
  const auto w1 = random({hidden, in}, 1, 0.06f), b1 = random({hidden}, 2, 0.1f);
  const auto w2 = random({hidden, hidden}, 3, 0.06f), b2 = random({hidden}, 4, 0.1f);
  const auto wc = random({in, wide}, 5, 0.06f);

  // Device branch: two linear+bias+relu layers. CPU branch (nothing the device takes): a wide
  // matmul, tanh, softmax, repeated.
  auto device_branch = [&](auto x) { return kiln::relu(kiln::linear(kiln::relu(kiln::linear(x, w1, b1)), w2, b2)); };
  auto cpu_branch = [&](auto x) {
    auto h = kiln::softmax(kiln::tanh(kiln::matmul(x, wc)), -1);
    for (int r = 0; r < 8; ++r) h = kiln::softmax(kiln::tanh(h * 4.f), -1);
    return h;
  };
  auto model = [&](auto x) { return std::make_tuple(device_branch(x), cpu_branch(x)); };

  SlowNpu npu;
  kiln::accel::Backend sync_npu;
  sync_npu.target = kiln::accel::Target{"slow-npu", nullptr, kNpuPatterns, 1};
  sync_npu.context = &npu;
  sync_npu.compile = &npu_compile;
  sync_npu.run = &npu_run;
  sync_npu.release = &npu_release;
  kiln::accel::HostAsync async_npu(sync_npu);
  const kiln::accel::Backend async_backend = async_npu.backend();

  kiln::CompileOptions sync_opts, async_opts;
  sync_opts.offload = kiln::accel::offload(sync_npu);
  async_opts.offload = kiln::accel::offload(async_backend);
  auto net_sync = kiln::compile(model, sync_opts);
  auto net_async = kiln::compile(model, async_opts);
  auto cpu_only = kiln::compile(cpu_branch);
  auto reference = kiln::compile(model);  // everything on the CPU

  const auto x = random({batch, in}, 7, 1.f);
  kiln::Tensor<float> dev_out({batch, hidden}), cpu_out({batch, wide}), ref_dev({batch, hidden}), ref_cpu({batch, wide});
  // First calls: trace, partition, compile the region, plan.
  net_sync.run_into(std::tie(dev_out, cpu_out), x);
  net_async.run_into(std::tie(dev_out, cpu_out), x);
  reference.run_into(std::tie(ref_dev, ref_cpu), x);
  (void)cpu_only(x);
  float err = 0;
  for (kiln::index_t i = 0; i < dev_out.size(); ++i) err = std::fmax(err, std::fabs(dev_out[i] - ref_dev[i]));
  for (kiln::index_t i = 0; i < cpu_out.size(); ++i) err = std::fmax(err, std::fabs(cpu_out[i] - ref_cpu[i]));

  std::printf("planned graph (async backend):\n");
  net_async.print_plan(std::cout);
  std::printf("max |offloaded - all-CPU| = %g\n\n", static_cast<double>(err));

  const int reps = 20;
  auto best = [&](auto&& call) {
    double b = 1e30;
    for (int r = 0; r < reps; ++r) {
      const auto t0 = Clock::now();
      call();
      b = std::fmin(b, ms_since(t0));
    }
    return b;
  };
  const double cpu_ms = best([&] { cpu_only.run_into(cpu_out, x); });
  const double sync_ms = best([&] { net_sync.run_into(std::tie(dev_out, cpu_out), x); });
  const double device_ms = npu.best_ms;
  const double async_ms = best([&] { net_async.run_into(std::tie(dev_out, cpu_out), x); });

  std::printf("per call (best of %d, batch %ld):\n", reps, static_cast<long>(batch));
  std::printf("  device part alone (simulated NPU)        %7.2f ms\n", device_ms);
  std::printf("  CPU part alone                           %7.2f ms\n", cpu_ms);
  std::printf("  sum of the parts                         %7.2f ms\n", device_ms + cpu_ms);
  std::printf("  whole model, synchronous backend         %7.2f ms\n", sync_ms);
  std::printf("  whole model, asynchronous backend        %7.2f ms  (%.0f%% of the sum: overlapped)\n", async_ms,
              100.0 * async_ms / (device_ms + cpu_ms));
  return err < 1e-3f ? 0 : 1;
}
