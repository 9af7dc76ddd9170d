// kiln/runtime/int8_tflite_steps.hpp — the int8 ops added for TFLite's common operators (qmul,
// qlogistic, qtanh, qhard_swish, qmean, qpad, qslice, qconcat) on their kernels.
//
// Included at the end of runtime/int8_steps.hpp, whose prepare_int8 and run_int8 hand these
// ops here: one place that turns each node into its kernel's parameters (constexpr, as TFLite's
// Prepare; a static plan keeps them as constants) and calls the kernel on dense operands.
#pragma once

// (No includes: this file is the tail of int8_steps.hpp, which declares what it defines.)

namespace kiln::runtime {

constexpr bool is_tflite_int8_op(Op op) {
  return op == Op::qmul || op == Op::qlogistic || op == Op::qtanh || op == Op::qhard_swish || op == Op::qmean ||
         op == Op::qpad || op == Op::qslice || op == Op::qconcat;
}

constexpr Status prepare_int8_tflite(const Node& n, const Shape* in, Int8Call& c) {
  namespace k8 = kernels::int8;
  const char* name = op_name(n.op);
  bool ok = true;
  switch (n.op) {
    case Op::qmul:
      c.x2 = in[1];
      c.mul = k8::make_mul_params(c.in, tensor_quant(n.in_quant[1]), c.out, fused_range(n));
      if (c.mul.output_shift > 31 || c.mul.output_shift < -31)
        return Status(Errc::invalid_argument) << name << ": input scales over the output scale rescale by 2^31 or "
                                                         "more (shapes "
                                              << in[0] << ' ' << in[1] << ')';
      return Status();
    case Op::qlogistic:
    case Op::qtanh:
      c.unary = k8::make_sigmoid_params(n.op == Op::qlogistic ? k8::UnaryFn::logistic : k8::UnaryFn::tanh, c.in.scale,
                                        c.in.zero_point, ok);
      if (!ok)
        return Status(Errc::invalid_argument) << name << ": input scale outside TFLite's Q4.27 range (input " << in[0]
                                              << ')';
      return Status();
    case Op::qhard_swish:
      c.unary = k8::make_hard_swish_params(c.in.scale, c.in.zero_point, c.out.scale, c.out.zero_point, ok);
      if (!ok)
        return Status(Errc::invalid_argument) << name << ": input scale / 128 over the output scale is above one "
                                                         "(TFLite's output_multiplier_exponent <= 0), input "
                                              << in[0];
      return Status();
    case Op::qmean: {
      const index_t outputs = n.shape.numel();
      c.mean = k8::make_mean_params(c.in, c.out, static_cast<std::uint32_t>(n.start),
                                    static_cast<std::int32_t>(outputs ? in[0].numel() / outputs : 1));
      if (c.mean.shift < -31 || c.mean.shift > 31)
        return Status(Errc::invalid_argument) << name << ": input over output scale rescales by 2^31 or more (input "
                                              << in[0] << ')';
      return Status();
    }
    case Op::qpad:
    case Op::qslice:
      c.axis = n.axis;
      c.start = n.start;
      c.step = n.step;
      return Status();
    case Op::qconcat:
      c.x2 = in[1];
      c.axis = n.axis;
      c.concat_a = k8::make_requant(c.in, c.out);
      c.concat_b = k8::make_requant(tensor_quant(n.in_quant[1]), c.out);
      if ((!c.concat_a.identity && c.concat_a.shift > 31) || (!c.concat_b.identity && c.concat_b.shift > 31))
        return Status(Errc::invalid_argument) << name << ": an input scale over the output scale is 2^31 or more ("
                                              << in[0] << ' ' << in[1] << ')';
      return Status();
    default: break;
  }
  return Status(Errc::not_supported) << name << ": not an int8 op";
}

inline Status run_int8_tflite(const Int8Call& c, const std::int8_t* x, const std::int8_t* x2, std::int8_t* y) {
  namespace k8 = kernels::int8;
  switch (c.op) {
    case Op::qmul:
      if (c.x == c.x2) {
        for (index_t i = 0; i < c.y.numel(); ++i) y[i] = k8::mul_one(c.mul, x[i], x2[i]);
      } else {
        broadcast_binary(c, x, x2, y, [&c](std::int8_t u, std::int8_t v) { return k8::mul_one(c.mul, u, v); });
      }
      return Status();
    case Op::qlogistic:
    case Op::qtanh:
    case Op::qhard_swish: return k8::unary(c.unary, x, y, c.y.numel());
    case Op::qmean: return k8::mean(c.mean, c.x, x, y);
    case Op::qpad:
      return k8::pad_axis(c.x, c.axis, c.start, c.step, static_cast<std::int8_t>(c.out.zero_point), x, y);
    case Op::qslice: return k8::slice_axis(c.x, c.axis, c.start, c.step, c.y[c.axis], x, y);
    case Op::qconcat: return k8::concat2(c.x, x, c.concat_a, c.x2, x2, c.concat_b, c.axis, y);
    default: break;
  }
  return Status(Errc::not_supported) << op_name(c.op) << ": not an int8 op";
}

}  // namespace kiln::runtime
