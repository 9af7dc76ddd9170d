// kiln/tflite/flatbuffer.hpp — bounds-checked reading of a flatbuffer (untrusted bytes).
//
// A flatbuffer is tables (an int32 back-offset to a vtable of uint16 field offsets), vectors
// (a uint32 length before the elements) and uint32 forward offsets between them. Every read
// here checks its position, every offset its target, every vector its length against the
// buffer size, in 64-bit arithmetic so nothing wraps; scalars are assembled byte by byte
// (little-endian, as the format defines), so no unaligned or type-punned access either.
//
// A Reader carries a sticky error: the first failure is recorded as a Status naming the
// context (e.g. "tensor 12"), the item ("shape") and the byte position, later reads return
// defaults. Callers read a whole structure, then check ok() once. No heap.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "../core/status.hpp"

namespace kiln::tflite::fb {

/// A table found in the buffer; present == false for an absent optional table.
struct Table {
  std::size_t pos = 0;        ///< start of the table (where its vtable back-offset is)
  std::size_t vtable = 0;     ///< start of its vtable
  std::uint16_t vt_bytes = 0; ///< vtable size in bytes (4 + 2 per field slot)
  std::uint16_t bytes = 0;    ///< inline size of the table
  bool present = false;
};

/// A vector found in the buffer: `count` elements of `elem_bytes` from `pos` (all in bounds).
struct Vector {
  std::size_t pos = 0;
  std::uint32_t count = 0;
  std::uint32_t elem_bytes = 0;
};

class Reader {
 public:
  Reader(const std::uint8_t* data, std::size_t size, const char* context = "model", long index = -1)
      : data_(data), size_(data ? size : 0), context_(context), index_(index) {}

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  /// Names what is being read in later messages ("operator", 3 -> "operator 3: ...").
  void set_context(const char* context, long index = -1) {
    context_ = context;
    index_ = index;
  }

  /// A scalar of type T at pos (integers and float; little-endian).
  template <class T>
  T load(std::size_t pos, const char* what) {
    if (!in_bounds(pos, sizeof(T))) {
      fail(what, pos) << ": " << static_cast<long long>(sizeof(T)) << " bytes past the end of the "
                      << static_cast<long long>(size_) << "-byte buffer";
      return T{};
    }
    return load_unchecked<T>(pos);
  }

  /// The root table (the uoffset at byte 0).
  Table root(const char* what) { return follow_table(0, what); }

  /// Position of field `field` of table t, or 0 when the field is absent. The field's
  /// `bytes` must lie inside the table.
  std::size_t field_pos(const Table& t, int field, std::size_t bytes, const char* what) {
    if (!ok() || !t.present) return 0;
    const std::size_t slot = 4 + 2 * static_cast<std::size_t>(field);
    if (slot + 2 > t.vt_bytes) return 0;  // vtable shorter than the field id: absent (older writer)
    const std::uint16_t off = load_unchecked<std::uint16_t>(t.vtable + slot);
    if (off == 0) return 0;
    if (off < 4 || off + bytes > t.bytes) {
      fail(what, t.pos) << ": field offset " << static_cast<long long>(off) << " (+" << static_cast<long long>(bytes)
                        << " bytes) outside its " << static_cast<long long>(t.bytes) << "-byte table";
      return 0;
    }
    return t.pos + off;
  }

  /// A scalar field with its schema default.
  template <class T>
  T scalar(const Table& t, int field, T dflt, const char* what) {
    const std::size_t p = field_pos(t, field, sizeof(T), what);
    return p ? load_unchecked<T>(p) : dflt;
  }

  /// A sub-table field (absent: present == false).
  Table table(const Table& t, int field, const char* what) {
    const std::size_t p = field_pos(t, field, 4, what);
    return p ? follow_table(p, what) : Table{};
  }

  /// A vector field of elements of elem_bytes (absent: count 0).
  Vector vector(const Table& t, int field, std::uint32_t elem_bytes, const char* what) {
    const std::size_t p = field_pos(t, field, 4, what);
    return p ? follow_vector(p, elem_bytes, what) : Vector{};
  }

  /// Element i of a vector (i < v.count, checked).
  template <class T>
  T element(const Vector& v, std::uint32_t i, const char* what) {
    if (i >= v.count || sizeof(T) > v.elem_bytes) {
      fail(what, v.pos) << ": element " << static_cast<long long>(i) << " of a vector of "
                        << static_cast<long long>(v.count);
      return T{};
    }
    return load<T>(v.pos + static_cast<std::size_t>(i) * v.elem_bytes, what);
  }

  /// Table i of a vector of tables.
  Table table_at(const Vector& v, std::uint32_t i, const char* what) {
    if (i >= v.count || v.elem_bytes != 4) {
      fail(what, v.pos) << ": table " << static_cast<long long>(i) << " of a vector of "
                        << static_cast<long long>(v.count);
      return Table{};
    }
    return follow_table(v.pos + 4 * static_cast<std::size_t>(i), what);
  }

  /// Address of a vector's first element (its bytes are in bounds).
  const std::uint8_t* address(const Vector& v) const { return v.count ? data_ + v.pos : nullptr; }
  const std::uint8_t* data() const { return data_; }
  std::size_t size() const { return size_; }

  /// Records an error (the first one wins) and returns it for more message text.
  Status& fail(const char* what, std::size_t pos, Errc code = Errc::invalid_argument) {
    if (status_.ok()) {
      status_ = Status(code) << "tflite: ";
      if (context_) {
        status_ << context_;
        if (index_ >= 0) status_ << ' ' << static_cast<long long>(index_);
        status_ << ": ";
      }
      status_ << (what ? what : "?") << " at byte " << static_cast<long long>(pos);
      return status_;
    }
    scratch_ = Status(code);  // later failures are not reported: write their text nowhere
    return scratch_;
  }

 private:
  bool in_bounds(std::size_t pos, std::size_t bytes) const {
    return pos <= size_ && bytes <= size_ - pos;
  }

  template <class T>
  T load_unchecked(std::size_t pos) const {
    std::uint64_t u = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i) u |= static_cast<std::uint64_t>(data_[pos + i]) << (8 * i);
    if constexpr (sizeof(T) == 1) {
      return static_cast<T>(static_cast<std::uint8_t>(u));
    } else {
      // Same-size unsigned to T through memcpy (floats, two's complement signed).
      using U = std::conditional_t<sizeof(T) == 2, std::uint16_t,
                                   std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>>;
      const U narrow = static_cast<U>(u);
      T v;
      std::memcpy(&v, &narrow, sizeof(T));
      return v;
    }
  }

  // The uoffset at pos -> its target.
  bool follow(std::size_t pos, std::size_t& target, const char* what) {
    if (!ok()) return false;
    if (!in_bounds(pos, 4)) {
      fail(what, pos) << ": offset past the end of the " << static_cast<long long>(size_) << "-byte buffer";
      return false;
    }
    const std::uint64_t t = static_cast<std::uint64_t>(pos) + load_unchecked<std::uint32_t>(pos);
    if (t >= size_) {
      fail(what, pos) << ": offset points to byte " << static_cast<long long>(t) << ", outside the "
                      << static_cast<long long>(size_) << "-byte buffer";
      return false;
    }
    target = static_cast<std::size_t>(t);
    return true;
  }

  Table follow_table(std::size_t pos, const char* what) {
    std::size_t t = 0;
    if (!follow(pos, t, what)) return Table{};
    if (!in_bounds(t, 4)) {
      fail(what, t) << ": table header past the end of the buffer";
      return Table{};
    }
    const std::int64_t vt = static_cast<std::int64_t>(t) - load_unchecked<std::int32_t>(t);
    if (vt < 0 || !in_bounds(static_cast<std::size_t>(vt), 4)) {
      fail(what, t) << ": vtable at byte " << static_cast<long long>(vt) << " outside the "
                    << static_cast<long long>(size_) << "-byte buffer";
      return Table{};
    }
    Table tab;
    tab.pos = t;
    tab.vtable = static_cast<std::size_t>(vt);
    tab.vt_bytes = load_unchecked<std::uint16_t>(tab.vtable);
    tab.bytes = load_unchecked<std::uint16_t>(tab.vtable + 2);
    if (tab.vt_bytes < 4 || (tab.vt_bytes & 1) || !in_bounds(tab.vtable, tab.vt_bytes) || tab.bytes < 4 ||
        !in_bounds(t, tab.bytes)) {
      fail(what, t) << ": vtable of " << static_cast<long long>(tab.vt_bytes) << " bytes for a table of "
                    << static_cast<long long>(tab.bytes) << " bytes does not fit the buffer";
      return Table{};
    }
    tab.present = true;
    return tab;
  }

  Vector follow_vector(std::size_t pos, std::uint32_t elem_bytes, const char* what) {
    std::size_t v = 0;
    if (!follow(pos, v, what)) return Vector{};
    if (!in_bounds(v, 4)) {
      fail(what, v) << ": vector length past the end of the buffer";
      return Vector{};
    }
    const std::uint32_t n = load_unchecked<std::uint32_t>(v);
    const std::uint64_t bytes = static_cast<std::uint64_t>(n) * elem_bytes;
    if (bytes > size_ - (v + 4)) {
      fail(what, v) << ": vector of " << static_cast<long long>(n) << " x " << static_cast<long long>(elem_bytes)
                    << " bytes overruns the " << static_cast<long long>(size_) << "-byte buffer";
      return Vector{};
    }
    return Vector{v + 4, n, elem_bytes};
  }

  const std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
  const char* context_ = nullptr;
  long index_ = -1;
  Status status_;
  Status scratch_;
};

}  // namespace kiln::tflite::fb
