// kiln/kiln.hpp — the one include.
#pragma once

#include "core/config.hpp"
#include "core/dtype.hpp"
#include "core/ewfn.hpp"
#include "core/shape.hpp"
#include "core/status.hpp"
#include "core/tensor.hpp"
