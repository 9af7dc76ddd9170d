// kiln/kernels/int8/dsp.hpp — the packed 16-bit operations of the Cortex-M DSP extension that the
// scalar int8 kernels are written in (conv2d_pairs.hpp, depthwise_conv2d.hpp).
//
// On cores with the extension (__ARM_FEATURE_DSP: M4/M7/M33/M55) these are the ACLE intrinsics,
// one instruction each; elsewhere (M0/M3, the host's KILN_NO_SIMD build, which is how the host
// tests check these kernels' arithmetic) the same operations in plain C. A word holds two int16
// halves; "bytes 0 and 2" / "bytes 1 and 3" are the halves SXTB16 makes of four int8.
#pragma once

#include <cstdint>
#include <cstring>

#include "../../core/config.hpp"
#include "isa.hpp"

namespace kiln::kernels::int8::dsp {

inline std::uint32_t load32(const void* p) {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline void store32(void* p, std::uint32_t v) { std::memcpy(p, &v, 4); }

/// `v` (an int16 value) in both halves of a word: the offset operand of sxtab16.
constexpr std::uint32_t both_halves(std::int32_t v) { return (static_cast<std::uint32_t>(v) & 0xFFFFu) * 0x00010001u; }

#if KILN_INT8_ARM_DSP
/// Bytes 0 and 2 of v sign-extended into the low and high half.
inline std::uint32_t sxtb16(std::uint32_t v) { return __sxtb16(v); }
/// a + (bytes 0 and 2 of v), per half.
inline std::uint32_t sxtab16(std::uint32_t a, std::uint32_t v) { return __sxtab16(a, v); }
// Bytes 1 and 3: SXTB16's rotate operand. GCC 12 has no __ror and does not fold a separate
// rotate into SXTB16, so the rotated forms are one instruction of inline assembly.
inline std::uint32_t sxtb16_ror8(std::uint32_t v) {
  std::uint32_t r;
  __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
  return r;
}
inline std::uint32_t sxtab16_ror8(std::uint32_t a, std::uint32_t v) {
  std::uint32_t r;
  __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(v));
  return r;
}
/// acc + lo(x) * lo(y) + hi(x) * hi(y), int16 halves.
inline std::int32_t smlad(std::uint32_t x, std::uint32_t y, std::int32_t acc) { return __smlad(x, y, acc); }
/// acc + lo(x) * lo(y) and acc + hi(x) * hi(y).
inline std::int32_t smlabb(std::uint32_t x, std::uint32_t y, std::int32_t acc) { return __smlabb(x, y, acc); }
inline std::int32_t smlatt(std::uint32_t x, std::uint32_t y, std::int32_t acc) { return __smlatt(x, y, acc); }
#else
namespace detail {
constexpr std::int32_t lo(std::uint32_t v) { return static_cast<std::int16_t>(v & 0xFFFFu); }
constexpr std::int32_t hi(std::uint32_t v) { return static_cast<std::int16_t>(v >> 16); }
constexpr std::uint32_t byte(std::uint32_t v, int k) {
  return static_cast<std::uint32_t>(static_cast<std::int32_t>(static_cast<std::int8_t>((v >> (8 * k)) & 0xFFu)));
}
constexpr std::uint32_t pack(std::uint32_t l, std::uint32_t h) { return (l & 0xFFFFu) | (h << 16); }
}  // namespace detail
inline std::uint32_t sxtb16(std::uint32_t v) { return detail::pack(detail::byte(v, 0), detail::byte(v, 2)); }
inline std::uint32_t sxtb16_ror8(std::uint32_t v) { return detail::pack(detail::byte(v, 1), detail::byte(v, 3)); }
inline std::uint32_t sxtab16(std::uint32_t a, std::uint32_t v) {
  return detail::pack(a + detail::byte(v, 0), (a >> 16) + detail::byte(v, 2));
}
inline std::uint32_t sxtab16_ror8(std::uint32_t a, std::uint32_t v) {
  return detail::pack(a + detail::byte(v, 1), (a >> 16) + detail::byte(v, 3));
}
// Wrapping int32 sums, as the instructions (the kernels' sums never wrap: dot.hpp's bound).
inline std::int32_t smlad(std::uint32_t x, std::uint32_t y, std::int32_t acc) {
  return static_cast<std::int32_t>(static_cast<std::uint32_t>(acc) +
                                   static_cast<std::uint32_t>(detail::lo(x) * detail::lo(y)) +
                                   static_cast<std::uint32_t>(detail::hi(x) * detail::hi(y)));
}
inline std::int32_t smlabb(std::uint32_t x, std::uint32_t y, std::int32_t acc) {
  return static_cast<std::int32_t>(static_cast<std::uint32_t>(acc) + static_cast<std::uint32_t>(detail::lo(x) * detail::lo(y)));
}
inline std::int32_t smlatt(std::uint32_t x, std::uint32_t y, std::int32_t acc) {
  return static_cast<std::int32_t>(static_cast<std::uint32_t>(acc) + static_cast<std::uint32_t>(detail::hi(x) * detail::hi(y)));
}
#endif

/// dst[i] = src[i] + offset as int16, groups of four in the order (0, 2, 1, 3): the order in
/// which sxtb16 / sxtb16_ror8 unpack a word of int8 weights, so one SMLAD pairs them; a tail of
/// n % 4 elements in order.
inline void widen_column(const std::int8_t* src, index_t n, std::int32_t offset, std::int16_t* dst) {
  const std::uint32_t off2 = both_halves(offset);
  index_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const std::uint32_t v = load32(src + i);
    store32(dst + i, sxtab16(off2, v));
    store32(dst + i + 2, sxtab16_ror8(off2, v));
  }
  for (; i < n; ++i) dst[i] = static_cast<std::int16_t>(src[i] + offset);
}

}  // namespace kiln::kernels::int8::dsp
