// kiln/core/dtype.hpp — element types known to the IR.
//
// The IR carries a DType on every value; kernels in this release implement f32
// (plus boolean masks), later ones add int8/f16. Nothing outside the kernels
// may assume f32.
#pragma once

#include <cstdint>

namespace kiln {

enum class DType : std::uint8_t { f32, f16, bf16, i8, u8, i32, boolean };

constexpr int dtype_size(DType t) {
  switch (t) {
    case DType::f32: return 4;
    case DType::i32: return 4;
    case DType::f16: return 2;
    case DType::bf16: return 2;
    case DType::i8: return 1;
    case DType::u8: return 1;
    case DType::boolean: return 1;
  }
  return 0;
}

constexpr const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "f32";
    case DType::f16: return "f16";
    case DType::bf16: return "bf16";
    case DType::i8: return "i8";
    case DType::u8: return "u8";
    case DType::i32: return "i32";
    case DType::boolean: return "bool";
  }
  return "?";
}

/// Maps a C++ element type to its DType. Unsupported types fail to compile.
template <class T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::f32; };
template <> struct dtype_of<std::int8_t> { static constexpr DType value = DType::i8; };
template <> struct dtype_of<std::uint8_t> { static constexpr DType value = DType::u8; };
template <> struct dtype_of<std::int32_t> { static constexpr DType value = DType::i32; };
template <> struct dtype_of<bool> { static constexpr DType value = DType::boolean; };
template <class T> struct dtype_of<const T> : dtype_of<T> {};
template <class T> inline constexpr DType dtype_of_v = dtype_of<T>::value;

}  // namespace kiln
