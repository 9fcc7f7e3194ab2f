#include "sim/trace.h"

#include <charconv>
#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace thinp::sim {
namespace {

constexpr std::string_view kHeader = "thinp-trace 1";

std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%" PRIx64, v);
  return buf;
}

Status bad_line(std::string_view line, std::string_view why) {
  return Status(Errc::corruption, "trace line '" + std::string(line.substr(0, 120)) + "': " +
                                      std::string(why));
}

template <typename T>
bool parse_int(std::string_view text, T& out, int base = 10) {
  if (text.empty()) return false;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out, base);
  return ec == std::errc() && ptr == text.data() + text.size();
}

std::optional<Errc> errc_from_name(std::string_view name) {
  for (uint8_t i = 0; i <= static_cast<uint8_t>(Errc::aborted); ++i) {
    if (errc_name(static_cast<Errc>(i)) == name) return static_cast<Errc>(i);
  }
  return std::nullopt;
}

std::optional<IoOp> op_from_name(std::string_view name) {
  for (IoOp op : {IoOp::read, IoOp::write, IoOp::flush, IoOp::discard}) {
    if (io_op_name(op) == name) return op;
  }
  return std::nullopt;
}

std::optional<TraceKind> kind_from_name(std::string_view name) {
  for (uint8_t i = 0; i <= static_cast<uint8_t>(TraceKind::boot); ++i) {
    if (trace_kind_name(static_cast<TraceKind>(i)) == name) return static_cast<TraceKind>(i);
  }
  return std::nullopt;
}

void fold(Digest& d, const TraceEvent& ev) {
  d.add_u64(ev.seq);
  d.add_u64((uint64_t{static_cast<uint8_t>(ev.kind)} << 24) |
            (uint64_t{static_cast<uint8_t>(ev.op)} << 16) |
            (uint64_t{static_cast<uint8_t>(ev.status)} << 8) | static_cast<uint8_t>(ev.fault));
  d.add_u64(ev.boot);
  d.add_u64(ev.io_id);
  d.add_u64(ev.fua ? 1 : 0);
  d.add_u64(ev.offset_bytes);
  d.add_u64(ev.length_bytes);
  d.add_u64(static_cast<uint64_t>(ev.time_ns));
  d.add_u64(static_cast<uint64_t>(ev.submit_time_ns));
  d.add_u64(ev.flush_epoch);
  d.add_u64(ev.fault_offset_bytes);
  d.add_u64(ev.content_hash);
  d.add_u64(ev.prior_hash);
  d.add_u64(combine_sector_hashes(ev.sector_hashes));
  d.add_string(ev.note);
}

}  // namespace

std::string_view trace_kind_name(TraceKind k) {
  switch (k) {
    case TraceKind::submit: return "submit";
    case TraceKind::complete: return "complete";
    case TraceKind::corrupt: return "corrupt";
    case TraceKind::crash: return "crash";
    case TraceKind::boot: return "boot";
  }
  return "?";
}

uint64_t combine_sector_hashes(const std::vector<uint64_t>& hashes) {
  Digest d;
  d.add_u64(hashes.size());
  for (uint64_t h : hashes) d.add_u64(h);
  return d.value();
}

std::string format_event(const TraceEvent& ev, bool with_sector_hashes) {
  std::ostringstream os;
  os << ev.seq << ' ' << trace_kind_name(ev.kind) << " boot=" << ev.boot << " io=" << ev.io_id
     << " op=" << io_op_name(ev.op) << " fua=" << (ev.fua ? 1 : 0) << " off=" << ev.offset_bytes
     << " len=" << ev.length_bytes << " t=" << ev.time_ns << " sub=" << ev.submit_time_ns
     << " epoch=" << ev.flush_epoch << " status=" << errc_name(ev.status)
     << " fault=" << fault_kind_name(ev.fault) << " foff=" << ev.fault_offset_bytes
     << " hash=" << hex(ev.content_hash) << " prior=" << hex(ev.prior_hash) << " sectors=";
  if (ev.sector_hashes.empty()) os << '-';
  if (!with_sector_hashes && !ev.sector_hashes.empty()) {
    os << ev.sector_hashes.size() << " note=" << ev.note;
    return os.str();
  }
  for (size_t i = 0; i < ev.sector_hashes.size(); ++i) {
    os << (i ? "," : "") << hex(ev.sector_hashes[i]);
  }
  os << " note=" << ev.note;  // last: it may contain spaces
  return os.str();
}

namespace {

// Fills one "key=value" field of `ev`; false if the key or value is bad.
bool parse_field(std::string_view key, std::string_view value, TraceEvent& ev) {
  if (key == "boot") return parse_int(value, ev.boot);
  if (key == "io") return parse_int(value, ev.io_id);
  if (key == "fua") {
    if (value != "0" && value != "1") return false;
    ev.fua = value == "1";
    return true;
  }
  if (key == "off") return parse_int(value, ev.offset_bytes);
  if (key == "len") return parse_int(value, ev.length_bytes);
  if (key == "t") return parse_int(value, ev.time_ns);
  if (key == "sub") return parse_int(value, ev.submit_time_ns);
  if (key == "epoch") return parse_int(value, ev.flush_epoch);
  if (key == "foff") return parse_int(value, ev.fault_offset_bytes);
  if (key == "hash") return parse_int(value, ev.content_hash, 16);
  if (key == "prior") return parse_int(value, ev.prior_hash, 16);
  if (key == "op") {
    auto op = op_from_name(value);
    if (op) ev.op = *op;
    return op.has_value();
  }
  if (key == "status") {
    auto e = errc_from_name(value);
    if (e) ev.status = *e;
    return e.has_value();
  }
  if (key == "fault") {
    auto f = fault_kind_from_name(value);
    if (f) ev.fault = *f;
    return f.has_value();
  }
  if (key == "sectors") {
    if (value == "-") return true;
    size_t pos = 0;
    while (pos <= value.size()) {
      size_t comma = value.find(',', pos);
      if (comma == std::string_view::npos) comma = value.size();
      uint64_t h = 0;
      if (!parse_int(value.substr(pos, comma - pos), h, 16)) return false;
      ev.sector_hashes.push_back(h);
      pos = comma + 1;
    }
    return true;
  }
  return false;
}

}  // namespace

Result<TraceEvent> parse_event(std::string_view line) {
  TraceEvent ev;
  const size_t note_at = line.find(" note=");
  if (note_at == std::string_view::npos) return bad_line(line, "no note= field");
  ev.note = std::string(line.substr(note_at + 6));
  std::string_view rest = line.substr(0, note_at);
  size_t field = 0;
  while (!rest.empty()) {
    const size_t sp = rest.find(' ');
    const std::string_view word = rest.substr(0, sp);
    rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
    if (field == 0) {
      if (!parse_int(word, ev.seq)) return bad_line(line, "bad sequence number");
    } else if (field == 1) {
      auto k = kind_from_name(word);
      if (!k) return bad_line(line, "unknown event kind");
      ev.kind = *k;
    } else {
      const size_t eq = word.find('=');
      if (eq == std::string_view::npos) return bad_line(line, "field without '='");
      if (!parse_field(word.substr(0, eq), word.substr(eq + 1), ev)) {
        return bad_line(line, "bad field '" + std::string(word.substr(0, eq)) + "'");
      }
    }
    ++field;
  }
  if (field < 2) return bad_line(line, "too few fields");
  return ev;
}

void IoTrace::record(TraceEvent ev) {
  ev.seq = event_count_++;
  fold(digest_, ev);
  if (observer_) observer_(ev);
  if (options_.keep_events) events_.push_back(std::move(ev));
}

uint64_t digest_of(const std::vector<TraceEvent>& events) {
  Digest d;
  for (const TraceEvent& ev : events) fold(d, ev);
  return d.value();
}

Status IoTrace::save(const std::string& path, std::string_view description) const {
  if (!options_.keep_events) {
    return Status(Errc::invalid_argument, "trace was recorded without keep_events; nothing to save");
  }
  std::ofstream out(path, std::ios::trunc);
  if (!out) return Status(Errc::io_error, "cannot open " + path + " for writing");
  out << kHeader << "\n";
  if (!description.empty()) out << "# " << description << "\n";
  for (const TraceEvent& ev : events_) out << format_event(ev) << "\n";
  out << "digest " << hex(digest()) << " events " << event_count_ << "\n";
  out.flush();
  if (!out) return Status(Errc::io_error, "writing " + path + " failed");
  return ok_status();
}

Result<LoadedTrace> load_trace(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status(Errc::not_found, "cannot open trace " + path);
  std::string line;
  if (!std::getline(in, line) || line != kHeader) {
    return Status(Errc::corruption, path + ": not a thinp trace (bad header)");
  }
  LoadedTrace t;
  bool closed = false;
  uint64_t saved_count = 0;
  while (std::getline(in, line)) {
    if (closed) return Status(Errc::corruption, path + ": data after the digest line");
    if (line.starts_with("# ")) {
      t.description = line.substr(2);
    } else if (line.starts_with("digest ")) {
      std::istringstream ls(line.substr(7));
      std::string h, word;
      ls >> h >> word >> saved_count;
      if (word != "events" || !parse_int(std::string_view(h), t.digest, 16)) {
        return Status(Errc::corruption, path + ": bad digest line");
      }
      closed = true;
    } else {
      Result<TraceEvent> ev = parse_event(line);
      if (!ev.ok()) return ev.status().with_context(path);
      t.events.push_back(std::move(ev).value());
    }
  }
  if (!closed) return Status(Errc::corruption, path + ": truncated (no digest line)");
  if (saved_count != t.events.size() || digest_of(t.events) != t.digest) {
    return Status(Errc::corruption, path + ": events do not match the saved digest");
  }
  return t;
}

}  // namespace thinp::sim
