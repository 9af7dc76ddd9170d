// kiln/tflite.hpp — TFLite flatbuffer models: read, check, (later) import into kiln's graph.
//
//   kiln::tflite::Model m;
//   if (kiln::Status s = m.open(bytes, size); !s) ...        // structure checked, no heap
//   if (kiln::Status s = kiln::tflite::check_supported(m); !s) ...  // names the first op kiln cannot run
//
// Separate from kiln.hpp: a program that does not read model files does not parse this.
#pragma once

#include "tflite/flatbuffer.hpp"
#include "tflite/model.hpp"
#include "tflite/options.hpp"
#include "tflite/schema.hpp"
#include "tflite/support.hpp"
