// kiln/core/shape.hpp — fixed-capacity shapes, strides and broadcasting.
//
// Literal types with constexpr members: the same code sizes tensors at run time
// and plans static models at compile time.
#pragma once

#include <initializer_list>

#include "config.hpp"

namespace kiln {

/// Extents of a tensor, row-major, rank <= kMaxRank. Rank 0 is a scalar.
class Shape {
 public:
  constexpr Shape() = default;
  constexpr Shape(std::initializer_list<index_t> dims) {
    for (index_t d : dims) {
      if (rank_ < kMaxRank) dims_[rank_] = d;
      ++rank_;  // an over-long list is kept as an invalid rank; valid() reports it
    }
  }
  static constexpr Shape of_rank(int rank, index_t fill = 1) {
    Shape s;
    s.rank_ = rank;
    for (int i = 0; i < rank && i < kMaxRank; ++i) s.dims_[i] = fill;
    return s;
  }
  static constexpr Shape from(const index_t* dims, int rank) {
    Shape s;
    s.rank_ = rank;
    for (int i = 0; i < rank && i < kMaxRank; ++i) s.dims_[i] = dims[i];
    return s;
  }

  constexpr int rank() const { return rank_; }
  /// False when constructed with more than kMaxRank extents or a negative extent.
  constexpr bool valid() const {
    if (rank_ < 0 || rank_ > kMaxRank) return false;
    for (int i = 0; i < rank_; ++i)
      if (dims_[i] < 0) return false;
    return true;
  }
  constexpr index_t operator[](int i) const { return dims_[i]; }
  constexpr index_t& operator[](int i) { return dims_[i]; }
  constexpr const index_t* data() const { return dims_; }
  constexpr index_t numel() const {
    index_t n = 1;
    for (int i = 0; i < rank_ && i < kMaxRank; ++i) n *= dims_[i];
    return n;
  }
  /// Size of the last dimension (1 for scalars).
  constexpr index_t back() const { return rank_ > 0 ? dims_[rank_ - 1] : 1; }

  constexpr void set_rank(int r) {
    for (int i = rank_; i < r && i < kMaxRank; ++i) dims_[i] = 1;
    rank_ = r;
  }
  constexpr void push_back(index_t d) {
    if (rank_ < kMaxRank) dims_[rank_] = d;
    ++rank_;
  }

  friend constexpr bool operator==(const Shape& a, const Shape& b) {
    if (a.rank_ != b.rank_) return false;
    for (int i = 0; i < a.rank_ && i < kMaxRank; ++i)
      if (a.dims_[i] != b.dims_[i]) return false;
    return true;
  }
  friend constexpr bool operator!=(const Shape& a, const Shape& b) { return !(a == b); }

 private:
  index_t dims_[kMaxRank]{};
  int rank_ = 0;
};

/// Element strides (in elements, not bytes), one per dimension.
struct Strides {
  index_t v[kMaxRank]{};
  constexpr index_t operator[](int i) const { return v[i]; }
  constexpr index_t& operator[](int i) { return v[i]; }
};

/// Row-major contiguous strides of `s`.
constexpr Strides contiguous_strides(const Shape& s) {
  Strides st;
  index_t acc = 1;
  for (int i = s.rank() - 1; i >= 0; --i) {
    st[i] = acc;
    acc *= s[i];
  }
  return st;
}

/// NumPy broadcasting of two shapes. Returns false when they are incompatible.
constexpr bool broadcast_shapes(const Shape& a, const Shape& b, Shape& out) {
  const int r = a.rank() > b.rank() ? a.rank() : b.rank();
  Shape o = Shape::of_rank(r);
  for (int i = 0; i < r; ++i) {
    const int ia = a.rank() - r + i, ib = b.rank() - r + i;
    const index_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
    if (da == db || db == 1) o[i] = da;
    else if (da == 1) o[i] = db;
    else return false;
  }
  out = o;
  return true;
}

/// Strides that read a tensor of shape `in` (row-major, strides `in_st`) as if it had
/// been broadcast to `out`: broadcast dimensions get stride 0.
constexpr Strides broadcast_strides(const Shape& in, const Strides& in_st, const Shape& out) {
  Strides st;
  const int off = out.rank() - in.rank();
  for (int i = 0; i < out.rank(); ++i) {
    const int j = i - off;
    st[i] = (j < 0 || in[j] == 1) ? 0 : in_st[j];
  }
  return st;
}

/// Normalises a possibly negative axis; returns -1 when out of range.
constexpr int normalize_axis(int axis, int rank) {
  if (axis < 0) axis += rank;
  return (axis < 0 || axis >= rank) ? -1 : axis;
}

}  // namespace kiln
