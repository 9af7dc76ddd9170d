// kiln/tflite/model.hpp — a read-only view of a .tflite model held in memory or flash.
//
//   kiln::tflite::Model m;
//   kiln::Status st = m.open(bytes, size);   // checks the whole structure once
//   m.tensor(i).shape, m.op(k).code, m.op(k).inputs[j], m.tensor(t).data ...
//
// open() walks every table the model view can reach (operator codes, buffers, tensors,
// quantisation, operators and their option tables, subgraph inputs/outputs) with the
// bounds-checked reader of flatbuffer.hpp, and checks the graph itself: indices in range,
// shapes that fit (rank, no negative extent, no overflow), constant data whose size matches
// its tensor's shape and type, each tensor produced once, every operator input available
// before the operator (no cycles). After a successful open() the accessors cannot fail.
// The view stores positions only (no heap, no copy of the bytes): the bytes must outlive it.
// Which operators kiln can run is a separate question: support.hpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../core/config.hpp"
#include "../core/shape.hpp"
#include "../core/status.hpp"
#include "flatbuffer.hpp"
#include "schema.hpp"

namespace kiln::tflite {

/// A vector of int32 tensor indices (operator/subgraph inputs and outputs; -1 = optional, absent).
class IndexList {
 public:
  IndexList() = default;
  IndexList(const std::uint8_t* p, std::uint32_t n) : p_(p), n_(n) {}
  int size() const { return static_cast<int>(n_); }
  std::int32_t operator[](int i) const {
    if (i < 0 || static_cast<std::uint32_t>(i) >= n_) return -1;
    const std::uint8_t* b = p_ + 4 * static_cast<std::size_t>(i);
    const std::uint32_t u = static_cast<std::uint32_t>(b[0]) | static_cast<std::uint32_t>(b[1]) << 8 |
                            static_cast<std::uint32_t>(b[2]) << 16 | static_cast<std::uint32_t>(b[3]) << 24;
    return static_cast<std::int32_t>(u);
  }

 private:
  const std::uint8_t* p_ = nullptr;
  std::uint32_t n_ = 0;
};

/// A tensor's quantisation: per tensor (count 1) or per channel along `dimension`.
struct Quantization {
  const std::uint8_t* scales = nullptr;       ///< count little-endian float32
  const std::uint8_t* zero_points = nullptr;  ///< count little-endian int64 (or absent: all 0)
  int count = 0;                              ///< number of scales (0: not quantised)
  int zero_point_count = 0;
  int dimension = 0;                          ///< quantized_dimension

  float scale(int i) const {
    if (i < 0 || i >= count) return 0.f;
    std::uint32_t u = 0;
    for (int k = 0; k < 4; ++k) u |= static_cast<std::uint32_t>(scales[4 * static_cast<std::size_t>(i) + k]) << (8 * k);
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
  std::int64_t zero_point(int i) const {
    if (i < 0 || i >= zero_point_count) return 0;
    std::uint64_t u = 0;
    for (int k = 0; k < 8; ++k) u |= static_cast<std::uint64_t>(zero_points[8 * static_cast<std::size_t>(i) + k]) << (8 * k);
    return static_cast<std::int64_t>(u);
  }
};

struct TensorInfo {
  Shape shape;
  TensorType type = TensorType::FLOAT32;
  std::uint32_t buffer = 0;
  const std::uint8_t* data = nullptr;  ///< constant data (weights) or nullptr for activations
  std::size_t bytes = 0;               ///< size of data
  Quantization quant;
  const char* name = nullptr;          ///< not NUL-terminated: name_length bytes
  std::uint32_t name_length = 0;
  bool is_variable = false;
  bool sparse = false;
};

struct OperatorInfo {
  int index = 0;
  std::int32_t code = 0;       ///< BuiltinOperator (max of builtin_code and deprecated_builtin_code)
  int version = 1;
  const char* custom_code = nullptr;  ///< for CUSTOM: not NUL-terminated, custom_code_length bytes
  std::uint32_t custom_code_length = 0;
  IndexList inputs, outputs;
  std::uint8_t options_type = 0;  ///< BuiltinOptions union type (OptionsType)
  fb::Table options;              ///< the builtin options table (present == false when absent)
  bool has_options_2 = false;     ///< builtin_options_2 set (StableHLO ops: never supported)
  bool has_intermediates = false;

  BuiltinOp op() const { return static_cast<BuiltinOp>(code); }
  /// "CONV_2D", or "BUILTIN_<code>" for a code newer than this schema table.
  const char* name() const {
    const char* n = builtin_op_name(code);
    return n ? n : "unknown builtin operator";
  }
};

/// Appends "CONV_2D v3 (operator 4)" to a message.
inline Status& describe(Status& s, const OperatorInfo& op) {
  s << op.name();
  if (!builtin_op_name(op.code)) s << " (code " << static_cast<long long>(op.code) << ')';
  return s << " v" << op.version << " (operator " << op.index << ')';
}

class Model {
 public:
  Model() = default;

  /// Reads and checks the model's structure. The bytes must stay valid while the view is used.
  Status open(const void* bytes, std::size_t size);

  bool is_open() const { return open_; }
  const std::uint8_t* bytes() const { return data_; }
  std::size_t size() const { return size_; }

  int num_tensors() const { return static_cast<int>(tensors_.count); }
  int num_operators() const { return static_cast<int>(operators_.count); }
  int num_operator_codes() const { return static_cast<int>(opcodes_.count); }
  int num_buffers() const { return static_cast<int>(buffers_.count); }
  /// Subgraph 0's inputs and outputs (tensor indices).
  IndexList inputs() const { return inputs_; }
  IndexList outputs() const { return outputs_; }
  std::uint32_t schema_version() const { return version_; }

  TensorInfo tensor(int i) const {
    fb::Reader r(data_, size_, "tensor", i);
    TensorInfo t;
    (void)read_tensor(r, i, t);
    return t;
  }
  OperatorInfo op(int k) const {
    fb::Reader r(data_, size_, "operator", k);
    OperatorInfo o;
    (void)read_operator(r, k, o);
    return o;
  }
  /// The builtin operator code and version of operator_codes[i].
  void operator_code(int i, std::int32_t& code, int& version) const {
    fb::Reader r(data_, size_, "operator code", i);
    (void)read_opcode(r, i, code, version, nullptr, nullptr);
  }

 private:
  bool read_opcode(fb::Reader& r, int i, std::int32_t& code, int& version, const char** custom,
                   std::uint32_t* custom_len) const;
  bool read_buffer(fb::Reader& r, std::uint32_t i, const std::uint8_t*& data, std::size_t& bytes) const;
  bool read_tensor(fb::Reader& r, int i, TensorInfo& t) const;
  bool read_operator(fb::Reader& r, int k, OperatorInfo& o) const;
  Status check_graph() const;
  bool tensor_has_data(int t) const { return tensor(t).data != nullptr; }
  bool produced_before(int tensor, int op) const;

  const std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
  bool open_ = false;
  std::uint32_t version_ = 0;
  fb::Vector opcodes_, buffers_, tensors_, operators_;
  IndexList inputs_, outputs_;
};

// ---- implementation ---------------------------------------------------------------------

inline bool Model::read_opcode(fb::Reader& r, int i, std::int32_t& code, int& version, const char** custom,
                               std::uint32_t* custom_len) const {
  namespace f = field::operator_code;
  const fb::Table t = r.table_at(opcodes_, static_cast<std::uint32_t>(i), "operator code table");
  const std::int8_t deprecated = r.scalar<std::int8_t>(t, f::deprecated_builtin_code, 0, "deprecated_builtin_code");
  const std::int32_t builtin = r.scalar<std::int32_t>(t, f::builtin_code, 0, "builtin_code");
  version = r.scalar<std::int32_t>(t, f::version, 1, "version");
  // As TFLite's GetBuiltinCode: files older than schema 3a only set the byte field, newer ones
  // set both (the byte saturated at PLACEHOLDER_FOR_GREATER_OP_CODES for codes above 127).
  code = builtin > deprecated ? builtin : deprecated;
  const fb::Vector name = r.vector(t, f::custom_code, 1, "custom_code");
  if (custom) *custom = reinterpret_cast<const char*>(r.address(name));
  if (custom_len) *custom_len = name.count;
  if (r.ok() && code < 0) r.fail("builtin_code", t.pos) << ": negative operator code " << static_cast<long long>(code);
  return r.ok();
}

inline bool Model::read_buffer(fb::Reader& r, std::uint32_t i, const std::uint8_t*& data, std::size_t& bytes) const {
  namespace f = field::buffer;
  const fb::Table t = r.table_at(buffers_, i, "buffer table");
  const fb::Vector d = r.vector(t, f::data, 1, "buffer data");
  const std::uint64_t offset = r.scalar<std::uint64_t>(t, f::offset, 0, "buffer offset");
  if (r.ok() && offset > 1)
    r.fail("buffer", t.pos, Errc::not_supported)
        << ": data stored outside the flatbuffer (offset " << static_cast<long long>(offset)
        << ", a model over 2 GB) is not supported";
  data = r.address(d);
  bytes = d.count;
  return r.ok();
}

inline bool Model::read_tensor(fb::Reader& r, int i, TensorInfo& t) const {
  namespace f = field::tensor;
  const fb::Table tab = r.table_at(tensors_, static_cast<std::uint32_t>(i), "tensor table");
  const fb::Vector shape = r.vector(tab, f::shape, 4, "shape");
  t.type = static_cast<TensorType>(r.scalar<std::int8_t>(tab, f::type, 0, "type"));
  t.buffer = r.scalar<std::uint32_t>(tab, f::buffer, 0, "buffer index");
  const fb::Vector name = r.vector(tab, f::name, 1, "name");
  t.name = reinterpret_cast<const char*>(r.address(name));
  t.name_length = name.count;
  t.is_variable = r.scalar<std::uint8_t>(tab, f::is_variable, 0, "is_variable") != 0;
  t.sparse = r.table(tab, f::sparsity, "sparsity").present;
  if (!r.ok()) return false;

  if (shape.count > static_cast<std::uint32_t>(kMaxRank)) {
    r.fail("shape", shape.pos, Errc::not_supported)
        << ": rank " << static_cast<long long>(shape.count) << " above kiln's maximum " << kMaxRank;
    return false;
  }
  index_t dims[kMaxRank]{};
  std::int64_t numel = 1;
  for (std::uint32_t d = 0; d < shape.count; ++d) {
    const std::int32_t e = r.element<std::int32_t>(shape, d, "shape");
    if (e < 0) {
      r.fail("shape", shape.pos) << ": extent " << static_cast<long long>(e) << " in dimension "
                                 << static_cast<long long>(d);
      return false;
    }
    numel *= e;
    if (numel > (std::int64_t{1} << 31) - 1) {  // numel (and every extent) fits a 32-bit index_t
      r.fail("shape", shape.pos) << ": 2^31 elements or more";
      return false;
    }
    dims[d] = static_cast<index_t>(e);
  }
  t.shape = Shape::from(dims, static_cast<int>(shape.count));

  if (t.buffer >= buffers_.count) {
    r.fail("buffer index", tab.pos) << ": " << static_cast<long long>(t.buffer) << " of "
                                    << static_cast<long long>(buffers_.count) << " buffers";
    return false;
  }
  if (!read_buffer(r, t.buffer, t.data, t.bytes)) return false;
  const int eb = tensor_type_bytes(t.type);
  if (t.data && eb && !t.sparse && t.bytes != static_cast<std::uint64_t>(numel) * static_cast<std::uint64_t>(eb)) {
    r.fail("data", tab.pos) << ": buffer " << static_cast<long long>(t.buffer) << " holds "
                              << static_cast<long long>(t.bytes) << " bytes, shape " << t.shape << " of "
                              << tensor_type_name(t.type) << " needs " << static_cast<long long>(numel * eb);
    return false;
  }

  const fb::Table q = r.table(tab, f::quantization, "quantization");
  if (q.present) {
    namespace fq = field::quantization;
    const fb::Vector sc = r.vector(q, fq::scale, 4, "quantization scale");
    const fb::Vector zp = r.vector(q, fq::zero_point, 8, "quantization zero_point");
    t.quant.dimension = r.scalar<std::int32_t>(q, fq::quantized_dimension, 0, "quantized_dimension");
    if (!r.ok()) return false;
    t.quant.scales = r.address(sc);
    t.quant.count = static_cast<int>(sc.count);
    t.quant.zero_points = r.address(zp);
    t.quant.zero_point_count = static_cast<int>(zp.count);
    if (sc.count > (1u << 30) || (zp.count && zp.count != sc.count)) {
      r.fail("quantization", q.pos) << ": " << static_cast<long long>(sc.count) << " scales and "
                                    << static_cast<long long>(zp.count) << " zero points";
      return false;
    }
  }
  return true;
}

inline bool Model::read_operator(fb::Reader& r, int k, OperatorInfo& o) const {
  namespace f = field::op;
  const fb::Table t = r.table_at(operators_, static_cast<std::uint32_t>(k), "operator table");
  o.index = k;
  const std::uint32_t oc = r.scalar<std::uint32_t>(t, f::opcode_index, 0, "opcode_index");
  const fb::Vector in = r.vector(t, f::inputs, 4, "inputs");
  const fb::Vector out = r.vector(t, f::outputs, 4, "outputs");
  o.options_type = r.scalar<std::uint8_t>(t, f::builtin_options_type, 0, "builtin_options_type");
  o.options = r.table(t, f::builtin_options, "builtin_options");
  o.has_options_2 = r.scalar<std::uint8_t>(t, f::builtin_options_2_type, 0, "builtin_options_2_type") != 0;
  o.has_intermediates = r.vector(t, f::intermediates, 4, "intermediates").count != 0;
  if (!r.ok()) return false;
  if (oc >= opcodes_.count) {
    r.fail("opcode_index", t.pos) << ": " << static_cast<long long>(oc) << " of "
                                  << static_cast<long long>(opcodes_.count) << " operator codes";
    return false;
  }
  if (!read_opcode(r, static_cast<int>(oc), o.code, o.version, &o.custom_code, &o.custom_code_length)) return false;
  o.inputs = IndexList(r.address(in), in.count);
  o.outputs = IndexList(r.address(out), out.count);
  return true;
}

// Tensor `tensor` is available to operator `op`: a graph input, constant data, or the output
// of an earlier operator. Quadratic in the worst case, without any heap.
inline bool Model::produced_before(int tensor, int op) const {
  for (int i = 0; i < inputs_.size(); ++i)
    if (inputs_[i] == tensor) return true;
  if (tensor_has_data(tensor)) return true;
  for (int k = 0; k < op; ++k) {
    const OperatorInfo o = this->op(k);
    for (int j = 0; j < o.outputs.size(); ++j)
      if (o.outputs[j] == tensor) return true;
  }
  return false;
}

inline Status Model::check_graph() const {
  const int nt = num_tensors();
  auto in_range = [nt](std::int32_t t, bool optional) { return (optional && t == -1) || (t >= 0 && t < nt); };
  for (int i = 0; i < inputs_.size(); ++i)
    if (!in_range(inputs_[i], false))
      return Status(Errc::invalid_argument) << "tflite: subgraph input " << i << " is tensor "
                                            << static_cast<long long>(inputs_[i]) << " of " << nt;
  for (int k = 0; k < num_operators(); ++k) {
    const OperatorInfo o = op(k);
    for (int j = 0; j < o.inputs.size(); ++j) {
      const std::int32_t t = o.inputs[j];
      if (!in_range(t, true)) {
        Status s(Errc::invalid_argument);
        describe(s << "tflite: ", o) << ": input " << j << " is tensor " << static_cast<long long>(t) << " of " << nt;
        return s;
      }
      if (t >= 0 && !produced_before(t, k)) {
        Status s(Errc::invalid_argument);
        describe(s << "tflite: ", o) << ": input " << j << " (tensor " << static_cast<long long>(t)
                                     << ") is neither a model input, a constant nor the output of an earlier "
                                        "operator (operators out of order, or a cycle)";
        return s;
      }
    }
    for (int j = 0; j < o.outputs.size(); ++j) {
      const std::int32_t t = o.outputs[j];
      if (!in_range(t, false) || tensor_has_data(t) || produced_before(t, k) ||
          // an operator writing its own input is a cycle of length one
          [&] { for (int i = 0; i < o.inputs.size(); ++i) if (o.inputs[i] == t) return true; return false; }()) {
        Status s(Errc::invalid_argument);
        describe(s << "tflite: ", o) << ": output " << j << " (tensor " << static_cast<long long>(t)
                                     << ") is out of range, constant, or already produced";
        return s;
      }
    }
  }
  for (int i = 0; i < outputs_.size(); ++i)
    if (!in_range(outputs_[i], false) || !produced_before(outputs_[i], num_operators()))
      return Status(Errc::invalid_argument) << "tflite: subgraph output " << i << " (tensor "
                                            << static_cast<long long>(outputs_[i])
                                            << ") is out of range or never produced";
  return Status();
}

inline Status Model::open(const void* bytes, std::size_t size) {
  *this = Model();
  data_ = static_cast<const std::uint8_t*>(bytes);
  size_ = data_ ? size : 0;
  fb::Reader r(data_, size_, "model");
  if (size_ < 8)
    return Status(Errc::invalid_argument) << "tflite: " << static_cast<long long>(size_)
                                          << " bytes is too short for a model";
  if (std::memcmp(data_ + 4, "TFL3", 4) != 0)
    return Status(Errc::invalid_argument) << "tflite: no TFL3 file identifier at byte 4 (not a TFLite model)";
  namespace f = field::model;
  const fb::Table root = r.root("root table");
  version_ = r.scalar<std::uint32_t>(root, f::version, 0, "version");
  opcodes_ = r.vector(root, f::operator_codes, 4, "operator_codes");
  buffers_ = r.vector(root, f::buffers, 4, "buffers");
  const fb::Vector subgraphs = r.vector(root, f::subgraphs, 4, "subgraphs");
  if (!r.ok()) return r.status();
  if (version_ != kSchemaVersion)
    return Status(Errc::not_supported) << "tflite: schema version " << static_cast<long long>(version_)
                                       << " (kiln reads version 3)";
  if (subgraphs.count != 1)
    return Status(Errc::not_supported) << "tflite: " << static_cast<long long>(subgraphs.count)
                                       << " subgraphs (kiln reads models with exactly one; control flow is not supported)";
  r.set_context("subgraph", 0);
  namespace fs = field::subgraph;
  const fb::Table sg = r.table_at(subgraphs, 0, "subgraph table");
  tensors_ = r.vector(sg, fs::tensors, 4, "tensors");
  operators_ = r.vector(sg, fs::operators, 4, "operators");
  const fb::Vector in = r.vector(sg, fs::inputs, 4, "inputs");
  const fb::Vector out = r.vector(sg, fs::outputs, 4, "outputs");
  if (!r.ok()) return r.status();
  inputs_ = IndexList(r.address(in), in.count);
  outputs_ = IndexList(r.address(out), out.count);

  for (std::uint32_t i = 0; i < opcodes_.count; ++i) {
    r.set_context("operator code", static_cast<long>(i));
    std::int32_t code = 0;
    int version = 0;
    if (!read_opcode(r, static_cast<int>(i), code, version, nullptr, nullptr)) return r.status();
  }
  for (std::uint32_t i = 0; i < buffers_.count; ++i) {
    r.set_context("buffer", static_cast<long>(i));
    const std::uint8_t* d = nullptr;
    std::size_t n = 0;
    if (!read_buffer(r, i, d, n)) return r.status();
  }
  for (std::uint32_t i = 0; i < tensors_.count; ++i) {
    r.set_context("tensor", static_cast<long>(i));
    TensorInfo t;
    if (!read_tensor(r, static_cast<int>(i), t)) return r.status();
  }
  for (std::uint32_t k = 0; k < operators_.count; ++k) {
    r.set_context("operator", static_cast<long>(k));
    OperatorInfo o;
    if (!read_operator(r, static_cast<int>(k), o)) return r.status();
  }
  open_ = true;  // the accessors below work from here on
  const Status g = check_graph();
  if (!g.ok()) *this = Model();
  return g;
}

}  // namespace kiln::tflite
