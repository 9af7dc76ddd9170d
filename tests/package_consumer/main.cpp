// Compiles a small model and checks it against the eager run; exit 1 on any mismatch.
#include <kiln/kiln.hpp>
#ifdef KILN_DISPATCH
#include <kiln/dispatch.hpp>
#endif

#include <cmath>
#include <cstdio>

int main() {
  kiln::Tensor<float> x({5, 3}), w({4, 3}), b({4});
  for (kiln::index_t i = 0; i < x.size(); ++i) x[i] = 0.25f * static_cast<float>(i % 7) - 0.5f;
  for (kiln::index_t i = 0; i < w.size(); ++i) w[i] = 0.1f * static_cast<float>(i % 5) - 0.2f;
  for (kiln::index_t i = 0; i < b.size(); ++i) b[i] = 0.05f * static_cast<float>(i);
  auto model = [&](auto in) { return kiln::softmax(kiln::relu(kiln::linear(in, w, b)) * 2.f, -1); };
  auto net = kiln::compile(model);
  const kiln::Tensor<float> y = net(x);
  const kiln::Tensor<float> ref = kiln::eager(model)(x);
  if (y.shape() != ref.shape()) return 1;
  float err = 0.f;
  for (kiln::index_t i = 0; i < y.size(); ++i) err = std::fmax(err, std::fabs(y[i] - ref[i]));
  std::printf("%s: max |compiled - eager| = %g over %ld outputs, %d kernels\n",
#if defined(KILN_DISPATCH)
              "kiln::dispatch",
#elif defined(KILN_SEPARATE_COMPILATION)
              "kiln::compiled",
#else
              "kiln::kiln (header-only)",
#endif
              static_cast<double>(err), static_cast<long>(y.size()), net.stats().kernels);
#ifdef KILN_DISPATCH
  std::printf("kiln::dispatch: ran the %s engine\n", kiln::dispatch::current_arch());
#endif
  return err <= 1e-6f ? 0 : 1;
}
