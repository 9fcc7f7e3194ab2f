// Mapping node encoding. Layout of a node body (little-endian):
//
//   0  u8     kind: 1 leaf, 2 internal
//   1  u8     flags: bit 0 = the data (child) column holds zigzag deltas
//   2  u16    count: number of entries
//   4  u8[4]  bit width of each encoded column (internal: two, then 0, 0)
//   8  varint first key (leaf: vbegin of entry 0; internal: key of entry 0)
//      varint first data block (leaf: dbegin of entry 0; internal: child 0),
//             present only when flags bit 0 is set
//      varint base of each encoded column (its minimum)
//      bit-packed entries, LSB first: for each entry, each column's value
//             minus its base, in that column's width
//      zero bytes to the end of the body
//
// Count 0 (an empty leaf) stops after the first 8 bytes. Columns, per entry i
// (entry 0 stores 0 in the key column, and in a delta-mode data column):
//   leaf:     key gap  vbegin[i] - vend[i-1]
//             length
//             data     dbegin[i]                       (offset mode)
//                   or zigzag(dbegin[i] - dend[i-1])    (delta mode)
//             time
//   internal: key gap  key[i] - key[i-1]   (>= 1)
//             child    block[i] or zigzag(block[i] - block[i-1])
#include "engine/btree/mapping_node.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <string>

#include "engine/format/block_header.h"

namespace thinp {
namespace {

constexpr size_t kFixedHeaderBytes = 8;
constexpr uint8_t kKindLeaf = 1;
constexpr uint8_t kKindInternal = 2;
constexpr uint8_t kFlagDelta = 1;

// Raw columns, before the offset/delta choice. Leaf: 0 key gap, 1 length,
// 2 data offset, 3 data delta, 4 time. Internal: 0 key gap, 1 child, 2 child
// delta.
constexpr int kRawCols = 5;
using Row = std::array<uint64_t, kRawCols>;

struct Shape {
  int raw_cols;
  int abs_col;    // the data/child column in offset mode
  int delta_col;  // the same column in delta mode
  int enc_cols;   // encoded columns: leaf 4, internal 2
};
constexpr Shape kLeafShape{5, 2, 3, 4};
constexpr Shape kInternalShape{3, 1, 2, 2};

uint64_t zigzag(uint64_t diff) {
  const int64_t s = static_cast<int64_t>(diff);
  return (uint64_t(s) << 1) ^ uint64_t(s >> 63);
}
uint64_t unzigzag(uint64_t z) { return (z >> 1) ^ (~(z & 1) + 1); }

int bit_width(uint64_t v) { return v == 0 ? 0 : 64 - std::countl_zero(v); }
size_t varint_bytes(uint64_t v) { return v < 128 ? 1 : 1 + varint_bytes(v >> 7); }

// Columns of one node's entries, derived once per encode or split.
struct Table {
  Shape shape;
  std::vector<Row> rows;       // inner values (entry i relative to i - 1)
  std::vector<uint64_t> key;   // vbegin / key of each entry
  std::vector<uint64_t> dual;  // dbegin / child of each entry
};

Table leaf_table(std::span<const Run> runs) {
  Table t{kLeafShape, {}, {}, {}};
  t.rows.resize(runs.size());
  t.key.resize(runs.size());
  t.dual.resize(runs.size());
  for (size_t i = 0; i < runs.size(); ++i) {
    const Run& r = runs[i];
    TP_ASSERT_GE(r.length, 1u);
    TP_ASSERT_LE(r.vbegin.value(), kVirtualEnd - r.length);
    TP_ASSERT_LE(r.dbegin.value(), UINT64_MAX - r.length);
    Row& row = t.rows[i];
    row = {0, r.length, r.dbegin.value(), 0, r.time.value()};
    if (i > 0) {
      TP_ASSERT_LE(runs[i - 1].vend(), r.vbegin);
      row[0] = r.vbegin - runs[i - 1].vend();
      row[3] = zigzag(r.dbegin.value() - runs[i - 1].dend().value());
    }
    t.key[i] = r.vbegin.value();
    t.dual[i] = r.dbegin.value();
  }
  return t;
}

Table internal_table(std::span<const ChildRef> children) {
  Table t{kInternalShape, {}, {}, {}};
  t.rows.resize(children.size());
  t.key.resize(children.size());
  t.dual.resize(children.size());
  for (size_t i = 0; i < children.size(); ++i) {
    const ChildRef& c = children[i];
    Row& row = t.rows[i];
    row = {0, c.block.value(), 0, 0, 0};
    if (i > 0) {
      TP_ASSERT_LT(children[i - 1].key, c.key);
      row[0] = c.key - children[i - 1].key;
      row[2] = zigzag(c.block.value() - children[i - 1].block.value());
    }
    t.key[i] = c.key.value();
    t.dual[i] = c.block.value();
  }
  return t;
}

// Minimum and maximum of each raw column over a set of rows (empty: min
// above max, which no caller plans with).
struct MinMax {
  Row mn{UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX};
  Row mx{};
  void add(const Row& r) {
    for (int c = 0; c < kRawCols; ++c) {
      mn[c] = std::min(mn[c], r[c]);
      mx[c] = std::max(mx[c], r[c]);
    }
  }
};

// How one chunk is encoded.
struct Plan {
  size_t count = 0;
  bool delta = false;
  uint64_t first_key = 0, first_dual = 0;
  std::array<int, 4> raw{};  // raw column of each encoded column
  std::array<uint8_t, 4> width{};
  std::array<uint64_t, 4> base{};
  size_t bytes = kFixedHeaderBytes;
};

Row first_row(const Table& t, size_t i) {
  Row r = t.rows[i];
  r[0] = 0;
  r[t.shape.delta_col] = 0;
  return r;
}

Plan plan_mode(const Shape& s, const MinMax& mm, size_t count, uint64_t first_key,
               uint64_t first_dual, bool delta) {
  Plan p;
  p.count = count;
  p.delta = delta;
  p.first_key = first_key;
  p.first_dual = first_dual;
  if (count == 0) return p;
  int j = 0;
  for (int c = 0; c < s.raw_cols; ++c) {
    if (c == (delta ? s.abs_col : s.delta_col)) continue;
    p.raw[j] = c;
    p.base[j] = mm.mn[c];
    p.width[j] = uint8_t(bit_width(mm.mx[c] - mm.mn[c]));
    ++j;
  }
  TP_ASSERT_EQ(j, s.enc_cols);
  size_t bits = 0, header = kFixedHeaderBytes + varint_bytes(first_key);
  if (delta) header += varint_bytes(first_dual);
  for (int k = 0; k < s.enc_cols; ++k) {
    header += varint_bytes(p.base[k]);
    bits += p.width[k];
  }
  p.bytes = header + (count * bits + 7) / 8;
  return p;
}

// The smaller of the two modes for entries [a, a + count), given the min/max
// of their inner rows (entries a+1 .. a+count-1).
Plan plan_chunk(const Table& t, size_t a, size_t count, const MinMax& inner) {
  if (count == 0) return Plan{};
  MinMax mm = inner;
  mm.add(first_row(t, a));
  const Plan abs = plan_mode(t.shape, mm, count, t.key[a], t.dual[a], false);
  const Plan del = plan_mode(t.shape, mm, count, t.key[a], t.dual[a], true);
  return del.bytes < abs.bytes ? del : abs;
}

Plan plan_all(const Table& t) {
  MinMax inner;
  for (size_t i = 1; i < t.rows.size(); ++i) inner.add(t.rows[i]);
  return plan_chunk(t, 0, t.rows.size(), inner);
}

void put_varint(std::span<std::byte> b, size_t& pos, uint64_t v) {
  while (true) {
    TP_ASSERT_LT(pos, b.size());
    const uint8_t low = v & 0x7f;
    v >>= 7;
    b[pos++] = std::byte(low | (v ? 0x80 : 0));
    if (!v) return;
  }
}

// Packs values LSB first into a zero-filled buffer, with one unaligned
// 64-bit read-modify-write per value where the buffer allows.
class BitWriter {
 public:
  BitWriter(std::span<std::byte> b, size_t pos) : b_(b), bit_(pos * 8) {}
  void put(uint64_t v, int width) {
    if (width == 0) return;
    if (width > 56) {
      put(v & 0xffffffffu, 32);
      put(v >> 32, width - 32);
      return;
    }
    v &= (uint64_t(1) << width) - 1;
    const size_t byte = bit_ / 8;
    const int shift = int(bit_ % 8);
    bit_ += size_t(width);
    if (byte + 8 <= b_.size()) [[likely]] {
      uint64_t word;
      std::memcpy(&word, b_.data() + byte, 8);
      word |= v << shift;
      std::memcpy(b_.data() + byte, &word, 8);
      return;
    }
    const uint64_t bits = v << shift;  // width + shift <= 63
    for (size_t i = 0; i < 8; ++i) {
      TP_ASSERT(byte + i < b_.size() || (bits >> (8 * i)) == 0);
      if (byte + i < b_.size()) b_[byte + i] |= std::byte((bits >> (8 * i)) & 0xff);
    }
  }
  size_t bits_written() const { return bit_; }

 private:
  std::span<std::byte> b_;
  size_t bit_;
};

void encode_plan(const Table& t, const Plan& p, uint8_t kind, std::span<std::byte> body) {
  TP_ASSERT_LE(p.bytes, body.size());
  TP_ASSERT_LE(p.count, kMappingNodeEntriesMax);
  std::fill(body.begin(), body.end(), std::byte{0});
  body[0] = std::byte(kind);
  body[1] = std::byte(p.delta ? kFlagDelta : 0);
  put_u16(body, 2, uint16_t(p.count));
  for (int k = 0; k < 4; ++k) body[4 + k] = std::byte(p.width[k]);
  if (p.count == 0) return;
  size_t pos = kFixedHeaderBytes;
  put_varint(body, pos, p.first_key);
  if (p.delta) put_varint(body, pos, p.first_dual);
  for (int k = 0; k < t.shape.enc_cols; ++k) put_varint(body, pos, p.base[k]);
  BitWriter w(body, pos);
  for (size_t i = 0; i < p.count; ++i) {
    const Row r = i == 0 ? first_row(t, 0) : t.rows[i];
    for (int k = 0; k < t.shape.enc_cols; ++k) w.put(r[p.raw[k]] - p.base[k], p.width[k]);
  }
  TP_ASSERT_LE((w.bits_written() + 7) / 8, p.bytes);  // the plan's size was right
}

// ---- splitting ----

struct Splitter {
  const Table& t;
  size_t capacity;
  SplitBias bias;
  std::vector<size_t> out;

  bool fits(const Plan& p) const {
    return p.bytes <= capacity && p.count <= kMappingNodeEntriesMax;
  }

  void split(size_t a, size_t e) {
    const size_t n = e - a;
    MinMax inner;
    for (size_t i = a + 1; i < e; ++i) inner.add(t.rows[i]);
    if (n == 1 || fits(plan_chunk(t, a, n, inner))) {
      out.push_back(a);
      return;
    }
    if (bias == SplitBias::pack_left) {
      // The longest prefix that fits (at least one entry), then the rest.
      MinMax pre;
      size_t b = a + 1;
      while (b < e) {
        MinMax next = pre;
        next.add(t.rows[b]);
        if (!fits(plan_chunk(t, a, b + 1 - a, next))) break;
        pre = next;
        ++b;
      }
      out.push_back(a);
      split(b, e);
      return;
    }
    // Balanced: the cut minimising the larger half's encoded size.
    std::vector<size_t> prefix(n + 1), suffix(n + 1);
    MinMax acc;
    for (size_t b = a + 1; b < e; ++b) {  // prefix [a, b)
      if (b > a + 1) acc.add(t.rows[b - 1]);
      prefix[b - a] = plan_chunk(t, a, b - a, acc).bytes;
    }
    acc = MinMax{};
    for (size_t b = e - 1; b > a; --b) {  // suffix [b, e)
      if (b + 1 < e) acc.add(t.rows[b + 1]);
      suffix[b - a] = plan_chunk(t, b, e - b, acc).bytes;
    }
    size_t best = a + 1;
    for (size_t b = a + 1; b < e; ++b) {
      const size_t cost = std::max(prefix[b - a], suffix[b - a]);
      if (cost < std::max(prefix[best - a], suffix[best - a])) best = b;
    }
    split(a, best);
    split(best, e);
  }
};

std::vector<size_t> split_table(const Table& t, size_t capacity, SplitBias bias) {
  if (t.rows.empty()) return {};
  Splitter s{t, capacity, bias, {}};
  s.split(0, t.rows.size());
  return std::move(s.out);
}

// ---- decoding (untrusted bytes) ----

Status corrupt(const std::string& what) {
  return Status(Errc::corruption, "mapping node: " + what);
}

bool get_varint(std::span<const std::byte> b, size_t& pos, uint64_t& v) {
  v = 0;
  for (int i = 0; i < 10; ++i) {
    if (pos >= b.size()) return false;
    const uint8_t byte = std::to_integer<uint8_t>(b[pos++]);
    if (i == 9 && byte > 1) return false;  // beyond 64 bits
    v |= uint64_t(byte & 0x7f) << (7 * i);
    if (!(byte & 0x80)) return true;
  }
  return false;
}

class BitReader {
 public:
  BitReader(std::span<const std::byte> b, size_t pos) : b_(b), bit_(pos * 8) {}
  // The caller has checked that every bit it reads lies inside `b`.
  uint64_t get(int width) {
    if (width == 0) return 0;
    if (width > 56) {
      const uint64_t low = get(32);
      return low | (get(width - 32) << 32);
    }
    const size_t byte = bit_ / 8;
    const int shift = int(bit_ % 8);
    uint64_t word = 0;
    if (byte + 8 <= b_.size()) {
      std::memcpy(&word, b_.data() + byte, 8);  // little-endian hosts only (asserted below)
    } else {
      for (size_t i = 0; byte + i < b_.size(); ++i) {
        word |= uint64_t(std::to_integer<uint8_t>(b_[byte + i])) << (8 * i);
      }
    }
    bit_ += size_t(width);
    TP_ASSERT_LE(bit_, b_.size() * 8);
    return (word >> shift) & ((uint64_t(1) << width) - 1);
  }

 private:
  static_assert(std::endian::native == std::endian::little);
  std::span<const std::byte> b_;
  size_t bit_;
};

// Rebuilds entry i's runs (or children) from its encoded column values.
Status rebuild_leaf(const std::array<uint64_t, 4>& col, bool delta, uint64_t first_key,
                    uint64_t first_dual, std::vector<Run>& runs) {
  const size_t i = runs.size();
  const uint64_t gap = col[0], length = col[1], time = col[3];
  if (length == 0) return corrupt("run " + std::to_string(i) + " has length 0");
  if (time > UINT32_MAX) return corrupt("run " + std::to_string(i) + " time above 32 bits");
  uint64_t vbegin, dbegin;
  if (i == 0) {
    if (gap != 0) return corrupt("first run has a key gap");
    vbegin = first_key;
  } else {
    const uint64_t prev_end = runs.back().vend().value();
    if (gap > kVirtualEnd - prev_end) return corrupt("run " + std::to_string(i) + " key overflows");
    vbegin = prev_end + gap;
  }
  if (delta) {
    if (i == 0 && col[2] != 0) return corrupt("first run has a data delta");
    dbegin = i == 0 ? first_dual : runs.back().dend().value() + unzigzag(col[2]);
  } else {
    dbegin = col[2];
  }
  if (length > kVirtualEnd - vbegin) return corrupt("run " + std::to_string(i) + " overflows");
  if (length > UINT64_MAX - dbegin) return corrupt("run " + std::to_string(i) + " data overflows");
  runs.push_back(Run{VBlock(vbegin), length, DBlock(dbegin), SnapTime(uint32_t(time))});
  return ok_status();
}

Status rebuild_internal(const std::array<uint64_t, 4>& col, bool delta, uint64_t first_key,
                        uint64_t first_dual, std::vector<ChildRef>& children) {
  const size_t i = children.size();
  uint64_t key, block;
  if (i == 0) {
    if (col[0] != 0) return corrupt("first child has a key gap");
    if (delta && col[1] != 0) return corrupt("first child has a block delta");
    key = first_key;
    block = delta ? first_dual : col[1];
  } else {
    const uint64_t prev = children.back().key.value();
    if (col[0] == 0) return corrupt("child keys not increasing at " + std::to_string(i));
    if (col[0] > UINT64_MAX - prev) return corrupt("child key overflows at " + std::to_string(i));
    key = prev + col[0];
    block = delta ? children.back().block.value() + unzigzag(col[1]) : col[1];
  }
  children.push_back(ChildRef{VBlock(key), MBlock(block)});
  return ok_status();
}

}  // namespace

Result<MappingNode> decode_mapping_node(std::span<const std::byte> body) {
  if (body.size() < kFixedHeaderBytes) return corrupt("body too short");
  const uint8_t kind = std::to_integer<uint8_t>(body[0]);
  const uint8_t flags = std::to_integer<uint8_t>(body[1]);
  const size_t count = get_u16(body, 2);
  if (kind != kKindLeaf && kind != kKindInternal)
    return corrupt("bad kind " + std::to_string(kind));
  if (flags & ~kFlagDelta) return corrupt("bad flags " + std::to_string(flags));
  const bool leaf = kind == kKindLeaf;
  const int cols = leaf ? 4 : 2;
  std::array<uint8_t, 4> width{};
  size_t bits = 0;
  for (int k = 0; k < 4; ++k) {
    width[k] = std::to_integer<uint8_t>(body[4 + k]);
    if (width[k] > 64 || (k >= cols && width[k] != 0)) return corrupt("bad column width");
    bits += width[k];
  }
  if (leaf && width[3] > 32) return corrupt("time column wider than 32 bits");
  MappingNode node;
  node.leaf = leaf;
  if (count == 0) {
    if (!leaf) return corrupt("internal node with no children");
    if (flags != 0 || bits != 0) return corrupt("empty leaf with columns");
  }
  size_t pos = kFixedHeaderBytes;
  uint64_t first_key = 0, first_dual = 0;
  std::array<uint64_t, 4> base{};
  if (count > 0) {
    bool ok = get_varint(body, pos, first_key);
    if (ok && (flags & kFlagDelta)) ok = get_varint(body, pos, first_dual);
    for (int k = 0; ok && k < cols; ++k) ok = get_varint(body, pos, base[k]);
    if (!ok) return corrupt("truncated header");
  }
  const size_t packed = (count * bits + 7) / 8;
  if (packed > body.size() - pos) return corrupt("entries run past the end of the block");
  BitReader r(body, pos);
  for (size_t i = 0; i < count; ++i) {
    std::array<uint64_t, 4> col{};
    for (int k = 0; k < cols; ++k) {
      const uint64_t v = r.get(width[k]);
      if (v > UINT64_MAX - base[k]) return corrupt("column value overflows");
      col[k] = base[k] + v;
    }
    const bool delta = flags & kFlagDelta;
    Status s = leaf ? rebuild_leaf(col, delta, first_key, first_dual, node.runs)
                    : rebuild_internal(col, delta, first_key, first_dual, node.children);
    if (!s.ok()) return s;
  }
  for (size_t p = pos + packed; p < body.size(); ++p) {
    if (body[p] != std::byte{0}) return corrupt("non-zero bytes after the entries");
  }
  return node;
}

size_t encoded_leaf_bytes(std::span<const Run> runs) { return plan_all(leaf_table(runs)).bytes; }

size_t encoded_internal_bytes(std::span<const ChildRef> children) {
  return plan_all(internal_table(children)).bytes;
}

bool encode_leaf_if_fits(std::span<const Run> runs, size_t capacity_bytes,
                         std::span<std::byte> body) {
  const Table t = leaf_table(runs);
  const Plan p = plan_all(t);
  if (p.bytes > capacity_bytes || p.count > kMappingNodeEntriesMax) return false;
  encode_plan(t, p, kKindLeaf, body);
  return true;
}

bool encode_internal_if_fits(std::span<const ChildRef> children, size_t capacity_bytes,
                             std::span<std::byte> body) {
  TP_ASSERT(!children.empty());
  const Table t = internal_table(children);
  const Plan p = plan_all(t);
  if (p.bytes > capacity_bytes || p.count > kMappingNodeEntriesMax) return false;
  encode_plan(t, p, kKindInternal, body);
  return true;
}

void encode_leaf(std::span<const Run> runs, std::span<std::byte> body) {
  const Table t = leaf_table(runs);
  encode_plan(t, plan_all(t), kKindLeaf, body);
}

void encode_internal(std::span<const ChildRef> children, std::span<std::byte> body) {
  TP_ASSERT(!children.empty());
  const Table t = internal_table(children);
  encode_plan(t, plan_all(t), kKindInternal, body);
}

std::vector<size_t> split_leaf(std::span<const Run> runs, size_t capacity_bytes, SplitBias bias) {
  return split_table(leaf_table(runs), capacity_bytes, bias);
}

std::vector<size_t> split_internal(std::span<const ChildRef> children, size_t capacity_bytes,
                                   SplitBias bias) {
  return split_table(internal_table(children), capacity_bytes, bias);
}

}  // namespace thinp
