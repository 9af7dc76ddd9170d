// kiln/ptq.hpp — post-training quantisation (host only; not part of kiln.hpp, so models that do
// not quantise do not compile it):
//
//   #include <kiln/ptq.hpp>
//   auto qm = kiln::ptq::quantize_model(model, calibration_batches);   // trace, observe, rewrite
//   auto y  = qm(x);                                                    // run the int8 model
//   qm.print_report(std::cout);                                         // per-layer scales
//   auto e  = qm.evaluate(eval_batches, labels);                        // accuracy change
//   std::string header = qm.emit_header("my_model");                   // for kiln::plan in firmware
#pragma once

#include "kiln.hpp"
#ifdef KILN_NO_HEAP
#error "kiln/ptq.hpp is a host tool (heap, strings); firmware includes the header it emits"
#endif
#include "ptq/calibrate.hpp"
#include "ptq/emit.hpp"
#include "ptq/fp16.hpp"
#include "ptq/model.hpp"
#include "ptq/rewrite.hpp"
