// The precision doctor's per-layer PTQ variants (Options::per_channel_nodes / percentile_nodes,
// DoctorOptions::try_layer_variants), tried on the earliest violating layer before keeping it f32:
//  - a per-tensor model whose layer 2 has one huge dead output channel: per-channel scales on that
//    layer alone fix it (no f32 layer, the other layers stay per-tensor; 19 more f32 scales);
//  - the outlier-column MLP, where no variant helps: the variants are tried and rejected, the layer
//    is kept in f32 as before;
//  - the configuration records the variant, reads back, and applies byte-identically to
//    quantising with the same per-node options; a variant naming a node that is gone is an error.
#include <doctest/doctest.h>

#include <kiln/ptq/doctor.hpp>

#include <string>
#include <vector>

#include "doctor_mlp.hpp"

namespace {

using kiln::index_t;
using kiln::Shape;
using kiln::Tensor;

// Layer 2's output channel 0 has weights 200x the rest and a bias that keeps it below 0 (its
// relu is 0 in f32 and int8 alike); one weight scale for the tensor rounds the other channels'
// weights to a level or two.
struct DeadChannel : kt::DoctorMlp {
  DeadChannel() : kt::DoctorMlp(11) {
    for (index_t k = 0; k < 24; ++k) w2[k] *= 200.f;
    b2[0] = -1e4f;
  }
};

// Layer 2 (width 20) has a weight-300 column on an input that is always exactly 0.
struct OutlierColumn : kt::DoctorMlp {
  OutlierColumn() : kt::DoctorMlp(11) {
    for (index_t k = 0; k < 16; ++k) w1[k] = 0.f;
    b1[0] = 0.f;
    for (index_t c = 0; c < 20; ++c) w2[c * 24] = 300.f;
  }
};

kiln::ptq::DoctorOptions layer_only(bool per_tensor) {
  kiln::ptq::DoctorOptions o;
  o.criterion = {0.02, 0.0, kiln::ptq::Statistic::mean};
  o.measure_cost = false;
  o.try_variants = false;  // no whole-model variant: the per-layer one must do it
  o.base.per_channel = !per_tensor;
  return o;
}

}  // namespace

TEST_CASE("layer variants: per-channel scales on the one layer that needs them") {
  const DeadChannel m;
  const auto cal = kt::doctor_batches(4, 100), samples = kt::doctor_batches(3, 200);
  const kiln::ptq::Diagnosis d = kiln::ptq::diagnose(m, cal, samples, layer_only(true));
  REQUIRE(d.status.ok());
  CHECK(d.before.back().violates());
  CHECK(d.met);
  CHECK(d.config.kept.empty());
  CHECK(!d.config.per_channel);  // the model stays per-tensor
  REQUIRE(d.config.per_channel_layers.size() == 1);
  CHECK(d.config.per_channel_layers[0].shape == Shape{8, 20});  // layer 2
  CHECK(d.config.percentile_layers.empty());
  CHECK(d.config.per_channel_layers[0].reason.find("earliest violation") != std::string::npos);
  // Size: layer 2 carries 20 weight scales instead of 1, the rest is unchanged.
  CHECK(d.config.weight_bytes == d.config.reduced_weight_bytes + 19 * sizeof(float));
  // Config: written, read back, applied = quantising with the same per-node option.
  const std::string text = d.config.to_text();
  CHECK(text.find("per_channel " + std::to_string(d.config.per_channel_layers[0].node)) != std::string::npos);
  kiln::ptq::DoctorConfig back;
  REQUIRE(kiln::ptq::DoctorConfig::parse(text, back).ok());
  REQUIRE(back.per_channel_layers.size() == 1);
  CHECK(back.per_channel_layers[0].node == d.config.per_channel_layers[0].node);
  kiln::ptq::Options base;
  base.per_channel = false;
  const kiln::ptq::QuantizedModel a = kiln::ptq::quantize_with_config(m, cal, back, base);
  kiln::ptq::Options direct = base;
  direct.per_channel_nodes = {d.config.per_channel_layers[0].node};
  const kiln::ptq::QuantizedModel b = kiln::ptq::quantize_model(m, cal, direct);
  const kiln::ptq::QuantizedModel plain = kiln::ptq::quantize_model(m, cal, base);
  const Tensor<float> ya = a(samples[0]), yb = b(samples[0]), yp = plain(samples[0]);
  bool same = true, differs = false;
  for (index_t i = 0; i < ya.size(); ++i) {
    same = same && ya[i] == yb[i];
    differs = differs || ya[i] != yp[i];
  }
  CHECK(same);
  CHECK(differs);  // the variant changed the model
  // A variant naming a node that is gone.
  back.per_channel_layers[0].node = 77;
  const std::string e = kt::error_of([&] { (void)kiln::ptq::quantize_with_config(m, cal, back, base); });
  CHECK(e.find("no longer exist") != std::string::npos);
  CHECK(e.find("%77") != std::string::npos);
}

TEST_CASE("layer variants: tried and rejected when they do not clear the violation; f32 then") {
  const OutlierColumn m;
  const kiln::ptq::Diagnosis d =
      kiln::ptq::diagnose(m, kt::doctor_batches(4, 100), kt::doctor_batches(3, 200), layer_only(false));
  REQUIRE(d.status.ok());
  CHECK(d.met);
  bool tried = false;
  for (const std::string& l : d.log) tried = tried || l.find("layer variant percentile") != std::string::npos;
  CHECK(tried);
  CHECK(d.config.per_channel_layers.empty());
  CHECK(d.config.percentile_layers.empty());
  REQUIRE(!d.config.kept.empty());
  CHECK(d.config.kept[0].shape == Shape{8, 20});
}
