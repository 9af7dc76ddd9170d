// Test helper: writes small .tflite flatbuffers (synthetic models for operators and options the
// MLPerf Tiny files do not have). Independent of kiln's reader: objects are laid out front to
// back (a table's vtable, the table, then its children, which uoffsets reach forward), every
// scalar aligned to its size, every vector's elements too.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace kiln_test::fbb {

struct Obj;
using ObjP = std::shared_ptr<Obj>;

/// A table field: inline scalar bytes, or an offset to another object.
struct Field {
  int id = 0;
  std::vector<std::uint8_t> scalar;  // empty: an offset field
  ObjP child;
};

/// A table, a vector of scalars (elem_bytes each, raw bytes) or a vector of objects.
struct Obj {
  enum Kind { table, scalars, objects } kind = table;
  std::vector<Field> fields;
  std::vector<std::uint8_t> bytes;
  std::uint32_t elem_bytes = 1, count = 0;
  std::vector<ObjP> items;
};

template <class T>
Field scalar(int id, T v) {
  Field f;
  f.id = id;
  f.scalar.resize(sizeof(T));
  std::memcpy(f.scalar.data(), &v, sizeof(T));  // little-endian host, as the tests run
  return f;
}
inline Field child(int id, ObjP o) {
  Field f;
  f.id = id;
  f.child = std::move(o);
  return f;
}
inline ObjP make_table(std::vector<Field> fields) {
  auto o = std::make_shared<Obj>();
  o->fields = std::move(fields);
  return o;
}
template <class T>
ObjP make_vector(const std::vector<T>& v) {
  auto o = std::make_shared<Obj>();
  o->kind = Obj::scalars;
  o->elem_bytes = sizeof(T);
  o->count = static_cast<std::uint32_t>(v.size());
  o->bytes.resize(v.size() * sizeof(T));
  if (!v.empty()) std::memcpy(o->bytes.data(), v.data(), o->bytes.size());
  return o;
}
inline ObjP make_string(const std::string& s) {
  auto o = make_vector(std::vector<char>(s.begin(), s.end()));
  o->bytes.push_back(0);  // NUL after the count bytes, as flatbuffers writes strings
  return o;
}
inline ObjP make_objects(std::vector<ObjP> items) {
  auto o = std::make_shared<Obj>();
  o->kind = Obj::objects;
  o->count = static_cast<std::uint32_t>(items.size());
  o->items = std::move(items);
  return o;
}

class Writer {
 public:
  /// The finished buffer: root uoffset, "TFL3", then the objects.
  std::vector<std::uint8_t> finish(const ObjP& root) {
    buf_.assign(8, 0);
    std::memcpy(buf_.data() + 4, "TFL3", 4);
    patch(0, place(root));
    return buf_;
  }

 private:
  void align(std::size_t a) {
    while (buf_.size() % a) buf_.push_back(0);
  }
  void put16(std::size_t pos, std::uint16_t v) { std::memcpy(buf_.data() + pos, &v, 2); }
  void patch(std::size_t at, std::size_t target) {
    const std::uint32_t off = static_cast<std::uint32_t>(target - at);
    std::memcpy(buf_.data() + at, &off, 4);
  }

  std::size_t place(const ObjP& o) {
    if (o->kind == Obj::scalars) {
      const std::size_t a = o->elem_bytes > 4 ? o->elem_bytes : 4;
      while ((buf_.size() + 4) % a) buf_.push_back(0);  // elements aligned
      const std::size_t pos = buf_.size();
      buf_.resize(pos + 4);
      std::memcpy(buf_.data() + pos, &o->count, 4);
      buf_.insert(buf_.end(), o->bytes.begin(), o->bytes.end());
      return pos;
    }
    if (o->kind == Obj::objects) {
      align(4);
      const std::size_t pos = buf_.size();
      buf_.resize(pos + 4 + 4 * o->items.size());
      std::memcpy(buf_.data() + pos, &o->count, 4);
      for (std::size_t i = 0; i < o->items.size(); ++i) patch(pos + 4 + 4 * i, place(o->items[i]));
      return pos;
    }
    // Table: lay out the inline part (soffset, then fields aligned to their size) first.
    int max_id = -1;
    for (const Field& f : o->fields) max_id = f.id > max_id ? f.id : max_id;
    std::vector<std::uint16_t> slot(static_cast<std::size_t>(max_id + 1), 0);
    std::vector<std::size_t> field_at(o->fields.size());
    std::size_t size = 4;
    for (std::size_t i = 0; i < o->fields.size(); ++i) {
      const std::size_t n = o->fields[i].scalar.empty() ? 4 : o->fields[i].scalar.size();
      while (size % n) ++size;
      field_at[i] = size;
      slot[static_cast<std::size_t>(o->fields[i].id)] = static_cast<std::uint16_t>(size);
      size += n;
    }
    align(2);
    const std::size_t vt = buf_.size();
    buf_.resize(vt + 4 + 2 * slot.size());
    put16(vt, static_cast<std::uint16_t>(4 + 2 * slot.size()));
    put16(vt + 2, static_cast<std::uint16_t>(size));
    for (std::size_t i = 0; i < slot.size(); ++i) put16(vt + 4 + 2 * i, slot[i]);
    align(8);  // the table start: 8-aligned, so its int64 fields are too
    const std::size_t pos = buf_.size();
    buf_.resize(pos + size);
    const std::int32_t soff = static_cast<std::int32_t>(pos - vt);
    std::memcpy(buf_.data() + pos, &soff, 4);
    for (std::size_t i = 0; i < o->fields.size(); ++i)
      if (!o->fields[i].scalar.empty())
        std::memcpy(buf_.data() + pos + field_at[i], o->fields[i].scalar.data(), o->fields[i].scalar.size());
    for (std::size_t i = 0; i < o->fields.size(); ++i)
      if (o->fields[i].scalar.empty()) patch(pos + field_at[i], place(o->fields[i].child));
    return pos;
  }

  std::vector<std::uint8_t> buf_;
};

}  // namespace kiln_test::fbb

namespace kiln_test {

/// A .tflite model described field by field (ids and enum values from TFLite's schema.fbs,
/// written out here rather than taken from kiln's reader, so the two check each other).
struct TfTensor {
  std::vector<std::int32_t> shape;
  std::int8_t type = 9;  // TensorType: 0 FLOAT32, 2 INT32, 9 INT8
  std::uint32_t buffer = 0;
  std::vector<float> scales;
  std::vector<std::int64_t> zero_points;
  std::int32_t quantized_dimension = 0;
};
struct TfOperator {
  std::uint32_t opcode_index = 0;
  std::vector<std::int32_t> inputs, outputs;
  std::uint8_t options_type = 0;  // BuiltinOptions union type
  fbb::ObjP options;
};
struct TfModel {
  std::vector<std::pair<std::int32_t, std::int32_t>> opcodes;  // (builtin code, version)
  std::vector<std::vector<std::uint8_t>> buffers{{}};           // buffer 0: the empty sentinel
  std::vector<TfTensor> tensors;
  std::vector<TfOperator> operators;
  std::vector<std::int32_t> inputs, outputs;

  std::vector<std::uint8_t> bytes() const {
    using namespace fbb;
    std::vector<ObjP> codes, bufs, tens, ops;
    for (const auto& c : opcodes)  // deprecated_builtin_code 0 (byte), version 2, builtin_code 3
      codes.push_back(make_table({scalar<std::int8_t>(0, static_cast<std::int8_t>(c.first < 127 ? c.first : 127)),
                                  scalar<std::int32_t>(2, c.second), scalar<std::int32_t>(3, c.first)}));
    for (const auto& b : buffers)  // data 0
      bufs.push_back(b.empty() ? make_table({}) : make_table({child(0, make_vector(b))}));
    for (std::size_t i = 0; i < tensors.size(); ++i) {  // shape 0, type 1, buffer 2, name 3, quantization 4
      const TfTensor& t = tensors[i];
      std::vector<Field> f{child(0, make_vector(t.shape)), scalar<std::int8_t>(1, t.type),
                           scalar<std::uint32_t>(2, t.buffer), child(3, make_string("t" + std::to_string(i)))};
      if (!t.scales.empty())  // scale 2, zero_point 3, quantized_dimension 6
        f.push_back(child(4, make_table({child(2, make_vector(t.scales)), child(3, make_vector(t.zero_points)),
                                         scalar<std::int32_t>(6, t.quantized_dimension)})));
      tens.push_back(make_table(f));
    }
    for (const TfOperator& o : operators) {  // opcode_index 0, inputs 1, outputs 2, options type 3, options 4
      std::vector<Field> f{scalar<std::uint32_t>(0, o.opcode_index), child(1, make_vector(o.inputs)),
                           child(2, make_vector(o.outputs))};
      if (o.options) {
        f.push_back(scalar<std::uint8_t>(3, o.options_type));
        f.push_back(child(4, o.options));
      }
      ops.push_back(make_table(f));
    }
    // SubGraph: tensors 0, inputs 1, outputs 2, operators 3. Model: version 0, operator_codes 1,
    // subgraphs 2, buffers 4.
    const ObjP sg = make_table({child(0, make_objects(tens)), child(1, make_vector(inputs)),
                                child(2, make_vector(outputs)), child(3, make_objects(ops))});
    const ObjP model = make_table({scalar<std::uint32_t>(0, 3), child(1, make_objects(codes)),
                                   child(2, make_objects({sg})), child(4, make_objects(bufs))});
    return Writer().finish(model);
  }

  /// Appends a constant buffer of T values; returns its index.
  template <class T>
  std::uint32_t add_buffer(const std::vector<T>& v) {
    std::vector<std::uint8_t> b(v.size() * sizeof(T));
    if (!v.empty()) std::memcpy(b.data(), v.data(), b.size());
    buffers.push_back(b);
    return static_cast<std::uint32_t>(buffers.size() - 1);
  }
};

/// A small float-in, int8-out CNN with what the MLPerf Tiny files lack: QUANTIZE of a float
/// input, a dilated per-channel CONV_2D with RELU6, MAX_POOL_2D, a RESHAPE with its shape
/// tensor, FULLY_CONNECTED with RELU_N1_TO_1. Weights from a seeded generator.
///   t0 f32 [1,6,6,2] -QUANTIZE-> t1 -CONV 3x3 d2 SAME-> t4 [1,6,6,3] -MAX_POOL 2x2/2-> t5 [1,3,3,3]
///   -RESHAPE-> t6 [1,27] -FC 16-> t10 [1,16]
inline TfModel small_cnn_model(std::uint32_t seed = 2024) {
  auto next = [&seed] {
    seed = seed * 1664525u + 1013904223u;
    return seed >> 8;
  };
  auto int8s = [&](std::size_t n) {
    std::vector<std::int8_t> v(n);
    for (auto& x : v) x = static_cast<std::int8_t>(static_cast<int>(next() % 255) - 127);
    return v;
  };
  auto int32s = [&](std::size_t n, int range) {
    std::vector<std::int32_t> v(n);
    for (auto& x : v) x = static_cast<std::int32_t>(next() % static_cast<std::uint32_t>(2 * range + 1)) - range;
    return v;
  };
  TfModel m;
  m.opcodes = {{114, 1}, {3, 3}, {17, 2}, {22, 1}, {9, 4}};  // QUANTIZE, CONV_2D, MAX_POOL_2D, RESHAPE, FC
  const std::uint32_t conv_w = m.add_buffer(int8s(3 * 3 * 3 * 2)), conv_b = m.add_buffer(int32s(3, 2000));
  const std::uint32_t shape = m.add_buffer(std::vector<std::int32_t>{1, 27});
  const std::uint32_t fc_w = m.add_buffer(int8s(16 * 27)), fc_b = m.add_buffer(int32s(16, 3000));
  m.tensors = {
      {{1, 6, 6, 2}, 0, 0, {}, {}, 0},                                       // t0 input f32
      {{1, 6, 6, 2}, 9, 0, {0.05f}, {3}, 0},                                 // t1
      {{3, 3, 3, 2}, 9, conv_w, {0.01f, 0.02f, 0.015f}, {0, 0, 0}, 0},       // t2 per channel
      {{3}, 2, conv_b, {0.0005f, 0.001f, 0.00075f}, {0, 0, 0}, 0},           // t3 bias
      {{1, 6, 6, 3}, 9, 0, {0.03f}, {-100}, 0},                              // t4
      {{1, 3, 3, 3}, 9, 0, {0.03f}, {-100}, 0},                              // t5
      {{1, 27}, 9, 0, {0.03f}, {-100}, 0},                                   // t6
      {{2}, 2, shape, {}, {}, 0},                                            // t7 new shape
      {{16, 27}, 9, fc_w, {0.02f}, {0}, 0},                                  // t8 per tensor
      {{16}, 2, fc_b, {0.0006f}, {0}, 0},                                    // t9
      {{1, 16}, 9, 0, {0.01f}, {5}, 0},                                      // t10 output
  };
  using namespace fbb;
  // Conv2DOptions: padding 0 (SAME), stride_w 1, stride_h 2, fused_activation 3 (RELU6 = 3),
  // dilation_w 4, dilation_h 5. Pool2DOptions: padding 0 (VALID = 1), strides 1-2, filter 3-4.
  const ObjP conv = make_table({scalar<std::int8_t>(0, 0), scalar<std::int32_t>(1, 1), scalar<std::int32_t>(2, 1),
                                scalar<std::int8_t>(3, 3), scalar<std::int32_t>(4, 2), scalar<std::int32_t>(5, 2)});
  const ObjP pool = make_table({scalar<std::int8_t>(0, 1), scalar<std::int32_t>(1, 2), scalar<std::int32_t>(2, 2),
                                scalar<std::int32_t>(3, 2), scalar<std::int32_t>(4, 2)});
  const ObjP fc = make_table({scalar<std::int8_t>(0, 2)});  // RELU_N1_TO_1
  m.operators = {{0, {0}, {1}, 0, nullptr},       {1, {1, 2, 3}, {4}, 1, conv}, {2, {4}, {5}, 5, pool},
                 {3, {5, 7}, {6}, 0, nullptr},    {4, {6, 8, 9}, {10}, 8, fc}};
  m.inputs = {0};
  m.outputs = {10};
  return m;
}

}  // namespace kiln_test
