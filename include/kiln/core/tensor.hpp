// kiln/core/tensor.hpp — concrete tensors: the non-owning TensorView and the owning Tensor.
//
// Both are dense and row-major. TensorView is the firmware type (weights in
// flash, buffers in an arena); Tensor owns an aligned, zero-filled heap buffer
// and is a host convenience (absent under KILN_NO_HEAP).
#pragma once

#include <cstring>
#include <initializer_list>
#include <type_traits>

#include "dtype.hpp"
#include "shape.hpp"
#include "status.hpp"

#ifndef KILN_NO_HEAP
#include <new>
#endif

namespace kiln {

/// Non-owning dense row-major view. T may be const (read-only weights).
template <class T>
class TensorView {
 public:
  using value_type = std::remove_const_t<T>;
  static constexpr DType dtype = dtype_of_v<value_type>;

  constexpr TensorView() = default;
  constexpr TensorView(T* data, const Shape& shape) : data_(data), shape_(shape) {}
  /// A view of const T from a view of T.
  template <class U, class = std::enable_if_t<std::is_same_v<const U, T> && !std::is_same_v<U, T>>>
  constexpr TensorView(const TensorView<U>& o) : data_(o.data()), shape_(o.shape()) {}

  constexpr T* data() const { return data_; }
  constexpr const Shape& shape() const { return shape_; }
  constexpr int rank() const { return shape_.rank(); }
  constexpr index_t size() const { return shape_.numel(); }
  constexpr bool empty() const { return data_ == nullptr; }

  template <class... I>
  constexpr T& operator()(I... idx) const {
    static_assert(sizeof...(I) <= kMaxRank, "kiln::TensorView: too many indices");
    const index_t ix[] = {static_cast<index_t>(idx)..., 0};
    index_t off = 0;
    for (int i = 0; i < static_cast<int>(sizeof...(I)); ++i) off = off * shape_[i] + ix[i];
    return data_[off];
  }
  constexpr T& operator[](index_t i) const { return data_[i]; }
  constexpr T* begin() const { return data_; }
  constexpr T* end() const { return data_ + size(); }

 private:
  T* data_ = nullptr;
  Shape shape_;
};

#ifndef KILN_NO_HEAP

/// Tag for a Tensor whose elements are left unset (the caller writes all of them).
struct Uninitialized {};
inline constexpr Uninitialized uninitialized{};

/// Owning, 64-byte aligned, zero-filled dense tensor. Copies are deep.
template <class T>
class Tensor {
  static_assert(!std::is_const_v<T>, "kiln::Tensor<const T>: use TensorView<const T> for read-only data");

 public:
  using value_type = T;
  static constexpr DType dtype = dtype_of_v<T>;

  Tensor() = default;
  explicit Tensor(const Shape& shape) { allocate(shape); }
  /// Allocated but not zero-filled: for buffers that are about to be overwritten entirely.
  Tensor(const Shape& shape, Uninitialized) { allocate(shape, false); }
  Tensor(std::initializer_list<index_t> dims) : Tensor(Shape(dims)) {}
  /// Shape plus row-major values; a wrong count is an error.
  Tensor(const Shape& shape, std::initializer_list<T> values) {
    if (!allocate(shape)) return;
    if (static_cast<index_t>(values.size()) != size()) {
      fail(Status(Errc::shape_mismatch) << "Tensor: " << static_cast<long long>(values.size())
                                        << " values for shape " << shape);
      return;
    }
    index_t i = 0;
    for (const T& v : values) data_[i++] = v;
  }
  /// Deep copy of a view.
  template <class U, class = std::enable_if_t<std::is_same_v<std::remove_const_t<U>, T>>>
  explicit Tensor(const TensorView<U>& v) {
    if (allocate(v.shape()) && size()) std::memcpy(data_, v.data(), bytes());
  }

  Tensor(const Tensor& o) {  // an empty tensor (a failed op's result) copies as empty
    if (o.data_ && allocate(o.shape_) && size()) std::memcpy(data_, o.data_, bytes());
  }
  Tensor(Tensor&& o) noexcept : data_(o.data_), shape_(o.shape_) {
    o.data_ = nullptr;
    o.shape_ = Shape();
  }
  Tensor& operator=(const Tensor& o) {
    if (this != &o) {
      Tensor t(o);
      *this = static_cast<Tensor&&>(t);
    }
    return *this;
  }
  Tensor& operator=(Tensor&& o) noexcept {
    if (this != &o) {
      release();
      data_ = o.data_;
      shape_ = o.shape_;
      o.data_ = nullptr;
      o.shape_ = Shape();
    }
    return *this;
  }
  ~Tensor() { release(); }

  T* data() { return data_; }
  const T* data() const { return data_; }
  const Shape& shape() const { return shape_; }
  int rank() const { return shape_.rank(); }
  index_t size() const { return shape_.numel(); }
  std::size_t bytes() const { return static_cast<std::size_t>(size()) * sizeof(T); }
  bool empty() const { return data_ == nullptr; }

  TensorView<T> view() { return TensorView<T>(data_, shape_); }
  TensorView<const T> view() const { return TensorView<const T>(data_, shape_); }
  operator TensorView<T>() { return view(); }
  operator TensorView<const T>() const { return view(); }

  template <class... I>
  T& operator()(I... idx) { return view()(idx...); }
  template <class... I>
  const T& operator()(I... idx) const { return view()(idx...); }
  T& operator[](index_t i) { return data_[i]; }
  const T& operator[](index_t i) const { return data_[i]; }
  T* begin() { return data_; }
  T* end() { return data_ + size(); }
  const T* begin() const { return data_; }
  const T* end() const { return data_ + size(); }

  /// Same data, new shape with the same element count (in place, no copy).
  bool reshape_inplace(const Shape& s) {
    if (!s.valid() || s.numel() != size()) {
      fail(Status(Errc::shape_mismatch) << "Tensor::reshape_inplace: " << shape_ << " -> " << s);
      return false;
    }
    shape_ = s;
    return true;
  }

 private:
  bool allocate(const Shape& shape, bool zero = true) {
    if (!shape.valid()) {
      fail(Status(shape.rank() > kMaxRank ? Errc::rank_too_large : Errc::invalid_argument)
           << "Tensor: invalid shape of rank " << shape.rank() << " (max rank " << kMaxRank << ")");
      return false;
    }
    shape_ = shape;
    const std::size_t n = align_up(bytes() ? bytes() : 1);
    data_ = static_cast<T*>(::operator new(n, std::align_val_t{kAlignment}));
    if (zero) std::memset(static_cast<void*>(data_), 0, n);
    return true;
  }
  void release() {
    if (data_) ::operator delete(static_cast<void*>(data_), std::align_val_t{kAlignment});
    data_ = nullptr;
  }

  T* data_ = nullptr;
  Shape shape_;
};

#endif  // KILN_NO_HEAP

}  // namespace kiln
