#include "topology/runtime/outbox.h"

#include <cstdint>
#include <cstring>

namespace cm::topology {

std::string OutputIdPrefix(std::string_view writer, uint64_t seq, std::string_view task) {
  std::string prefix;
  prefix.reserve(writer.size() + task.size() + 24);
  prefix.append(writer).append("/").append(std::to_string(seq)).append("/");
  prefix.append(task).append("/");
  return prefix;
}

namespace {

void PutU32(std::string& out, uint32_t v) {
  char bytes[4];
  for (int i = 0; i < 4; ++i) bytes[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  out.append(bytes, sizeof bytes);
}
void PutI64(std::string& out, int64_t v) {
  auto u = static_cast<uint64_t>(v);
  char bytes[8];
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((u >> (8 * i)) & 0xff);
  out.append(bytes, sizeof bytes);
}
void PutBytes(std::string& out, std::string_view s) {
  PutU32(out, static_cast<uint32_t>(s.size()));
  out.append(s);
}

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool U32(uint32_t& v) {
    if (in_.size() < 4) return false;
    v = 0;
    for (int i = 0; i < 4; ++i)
      v |= static_cast<uint32_t>(static_cast<unsigned char>(in_[i])) << (8 * i);
    in_.remove_prefix(4);
    return true;
  }
  bool I64(int64_t& v) {
    if (in_.size() < 8) return false;
    uint64_t u = 0;
    for (int i = 0; i < 8; ++i)
      u |= static_cast<uint64_t>(static_cast<unsigned char>(in_[i])) << (8 * i);
    in_.remove_prefix(8);
    v = static_cast<int64_t>(u);
    return true;
  }
  bool Bytes(std::string& s) {
    uint32_t n = 0;
    if (!U32(n) || in_.size() < n) return false;
    s.assign(in_.substr(0, n));
    in_.remove_prefix(n);
    return true;
  }
  bool empty() const { return in_.empty(); }

 private:
  std::string_view in_;
};

}  // namespace

std::vector<std::string> EncodeOutbox(const std::vector<PendingOutput>& outputs, size_t max_bytes) {
  std::vector<std::string> chunks;
  std::string current;
  for (const auto& o : outputs) {
    // Sized first, so each output is written once, straight into its chunk.
    size_t size = 4 + o.topic.size() + 4 + o.record.key.size() + 4 + o.record.value.size() + 8 + 4;
    for (const auto& h : o.record.headers) size += 4 + h.key.size() + 4 + h.value.size();
    if (!current.empty() && current.size() + size > max_bytes) {
      chunks.push_back(std::move(current));
      current.clear();
    }
    PutBytes(current, o.topic);
    PutBytes(current, o.record.key);
    PutBytes(current, o.record.value);
    PutI64(current, o.record.timestamp_ms);
    PutU32(current, static_cast<uint32_t>(o.record.headers.size()));
    for (const auto& h : o.record.headers) {
      PutBytes(current, h.key);
      PutBytes(current, h.value);
    }
  }
  if (!current.empty()) chunks.push_back(std::move(current));
  return chunks;
}

state::Status DecodeOutbox(std::string_view encoded, std::vector<PendingOutput>& out) {
  Reader r(encoded);
  while (!r.empty()) {
    PendingOutput o;
    uint32_t headers = 0;
    if (!r.Bytes(o.topic) || !r.Bytes(o.record.key) || !r.Bytes(o.record.value) ||
        !r.I64(o.record.timestamp_ms) || !r.U32(headers)) {
      return state::Status::Corruption("truncated outbox record");
    }
    for (uint32_t i = 0; i < headers; ++i) {
      Header h;
      if (!r.Bytes(h.key) || !r.Bytes(h.value))
        return state::Status::Corruption("truncated outbox header");
      o.record.headers.push_back(std::move(h));
    }
    out.push_back(std::move(o));
  }
  return state::Status::OK();
}

}  // namespace cm::topology
