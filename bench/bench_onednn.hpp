// bench/bench_onednn.hpp — oneDNN as a convolution peer in the benchmarks (optional).
//
// Included only when CMake found oneDNN (KILN_BENCH_HAVE_DNNL=1, Debian's libdnnl-dev). The
// convolution is set up the way kiln's is timed: batch 1, f32, bias + ReLU fused (a post-op),
// weights reordered into oneDNN's preferred layout once, outside the timed loop. The activation
// layout is a choice: `nhwc` times exactly kiln's problem (NHWC in, NHWC out); `blocked` lets
// oneDNN pick its own (nChw8c/16c) and leaves the reorders out of the timing — its best case.
// One thread: libdnnl's OpenMP pool is set to 1 (as OpenBLAS is pinned in bench_core).
// Same ISA as kiln: oneDNN is capped at AVX2 (kiln's kernels stop there, kernels/simd.hpp) unless
// ONEDNN_MAX_CPU_ISA is set (e.g. ONEDNN_MAX_CPU_ISA=ALL for its AVX-512 code on such machines).
#pragma once

#include <oneapi/dnnl/dnnl.hpp>

#include <cstdlib>
#include <cstring>
#include <string>

extern "C" void omp_set_num_threads(int);  // libgomp: oneDNN's CPU runtime on Debian

namespace kiln_bench {

/// A ready-to-run oneDNN convolution: conv2d(x NHWC [1,h,w,c], w OHWI [o,k,k,c/groups]) + bias, ReLU.
class OneDnnConv {
 public:
  struct Problem {
    long h, w, c, o, k, groups;
    bool blocked;  // let oneDNN choose the activation layout (true) or force NHWC (false)
  };

  OneDnnConv(const Problem& p, const float* x_nhwc, const float* w_ohwi, const float* bias)
      : eng_(make_engine()), stream_(eng_) {
    using dnnl::memory;
    using tag = memory::format_tag;
    const memory::data_type f32 = memory::data_type::f32;
    const long pad = p.k / 2;
    const memory::dims src_dims{1, p.c, p.h, p.w}, dst_dims{1, p.o, p.h, p.w}, bias_dims{p.o};
    const bool grouped = p.groups > 1;
    const memory::dims wei_dims = grouped ? memory::dims{p.groups, p.o / p.groups, p.c / p.groups, p.k, p.k}
                                          : memory::dims{p.o, p.c, p.k, p.k};
    const tag act = p.blocked ? tag::any : tag::nhwc;
    const memory::desc src_md(src_dims, f32, act), dst_md(dst_dims, f32, act);
    const memory::desc wei_md(wei_dims, f32, tag::any), bias_md(bias_dims, f32, tag::x);
    const dnnl::convolution_forward::desc desc(
        dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src_md, wei_md, bias_md,
        dst_md, {1, 1}, {pad, pad}, {pad, pad});
    dnnl::post_ops ops;
    ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
    dnnl::primitive_attr attr;
    attr.set_post_ops(ops);
    const dnnl::convolution_forward::primitive_desc pd(desc, attr, eng_);
    impl_ = pd.impl_info_str();

    // The caller's tensors as oneDNN memories, reordered into the primitive's layouts.
    memory user_src({src_dims, f32, tag::nhwc}, eng_, const_cast<float*>(x_nhwc));
    memory user_wei({wei_dims, f32, grouped ? tag::gohwi : tag::ohwi}, eng_, const_cast<float*>(w_ohwi));
    user_dst_ = memory({dst_dims, f32, tag::nhwc}, eng_);
    src_ = memory(pd.src_desc(), eng_);
    wei_ = memory(pd.weights_desc(), eng_);
    bias_ = memory(pd.bias_desc(), eng_);
    dst_ = memory(pd.dst_desc(), eng_);
    dnnl::reorder(user_src, src_).execute(stream_, user_src, src_);
    dnnl::reorder(user_wei, wei_).execute(stream_, user_wei, wei_);
    std::memcpy(bias_.get_data_handle(), bias, static_cast<std::size_t>(p.o) * sizeof(float));
    conv_ = dnnl::convolution_forward(pd);
    stream_.wait();
  }

  /// The timed call: the convolution alone, in the primitive's layouts.
  void run() {
    conv_.execute(stream_, {{DNNL_ARG_SRC, src_}, {DNNL_ARG_WEIGHTS, wei_}, {DNNL_ARG_BIAS, bias_}, {DNNL_ARG_DST, dst_}});
    stream_.wait();
  }

  /// The last result as NHWC floats (reordered back when the primitive's layout is blocked).
  const float* result_nhwc() {
    dnnl::reorder(dst_, user_dst_).execute(stream_, dst_, user_dst_);
    stream_.wait();
    return static_cast<const float*>(user_dst_.get_data_handle());
  }

  /// oneDNN's name for the implementation it chose (e.g. "brg:avx512_core", "jit:avx2").
  const std::string& implementation() const { return impl_; }

 private:
  // Runs before the first primitive: the ISA cap and the thread count are process-wide and only
  // take effect then.
  static dnnl::engine make_engine() {
    omp_set_num_threads(1);
    static const bool capped = std::getenv("ONEDNN_MAX_CPU_ISA") == nullptr &&
                               dnnl::set_max_cpu_isa(dnnl::cpu_isa::avx2) == dnnl::status::success;
    (void)capped;
    return dnnl::engine(dnnl::engine::kind::cpu, 0);
  }

  dnnl::engine eng_;
  dnnl::stream stream_;
  dnnl::memory src_, wei_, bias_, dst_, user_dst_;
  dnnl::convolution_forward conv_;
  std::string impl_;
};

}  // namespace kiln_bench
