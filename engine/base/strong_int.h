// StrongInt: an integer that does not convert silently into another unit.
//
// ThinId, VBlock (a thin's virtual block), DBlock (a data-device block),
// MBlock (a metadata block), Lsn and SnapTime are all 64-bit numbers; mixing
// them up is the classic thin-provisioning bug. Each is a distinct type: you
// can compare and order values of one type, add a plain count to a block
// number, and take the distance between two block numbers, but assigning a
// DBlock to a VBlock does not compile. `.value()` is the explicit way out.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <ostream>

namespace thinp {

template <typename Tag, typename Rep = uint64_t>
class StrongInt {
 public:
  using rep_type = Rep;

  constexpr StrongInt() = default;
  constexpr explicit StrongInt(Rep v) : v_(v) {}

  constexpr Rep value() const { return v_; }

  constexpr auto operator<=>(const StrongInt&) const = default;

  // Offsetting by a plain count keeps the unit; the distance between two
  // values of one unit is a plain count.
  constexpr StrongInt operator+(Rep n) const { return StrongInt(v_ + n); }
  constexpr StrongInt operator-(Rep n) const { return StrongInt(v_ - n); }
  constexpr Rep operator-(StrongInt o) const { return v_ - o.v_; }
  constexpr StrongInt& operator+=(Rep n) {
    v_ += n;
    return *this;
  }
  constexpr StrongInt& operator++() {
    ++v_;
    return *this;
  }

  friend std::ostream& operator<<(std::ostream& os, StrongInt s) { return os << Tag::prefix << s.v_; }

 private:
  Rep v_ = 0;
};

}  // namespace thinp

template <typename Tag, typename Rep>
struct std::hash<thinp::StrongInt<Tag, Rep>> {
  size_t operator()(thinp::StrongInt<Tag, Rep> s) const noexcept { return std::hash<Rep>()(s.value()); }
};
