#include "documents/records.hpp"

#include <cstdio>
#include <ctime>

#include <boost/json.hpp>

#include "common/random.hpp"
#include "common/utf8.hpp"
#include "wire/codec_util.hpp"

namespace orchestra::documents {
namespace {

namespace json = boost::json;

Error Bad(std::string_view what) {
  return Error(ErrorCode::kInvalidRequest, "not a stored document record: " + std::string(what));
}

// Members of a record object, each checked for its type.
class Fields {
 public:
  explicit Fields(const json::object& o) : o_(o) {}
  bool String(std::string_view name, std::string& out) {
    const json::value* v = o_.if_contains(name);
    if (v == nullptr) return true;  // absent: the default
    if (!v->is_string()) return Fail(name);
    out.assign(v->as_string().begin(), v->as_string().end());
    return true;
  }
  template <class Int>
  bool Unsigned(std::string_view name, Int& out) {
    const json::value* v = o_.if_contains(name);
    if (v == nullptr) return true;
    if (v->is_uint64()) {
      out = static_cast<Int>(v->as_uint64());
    } else if (v->is_int64() && v->as_int64() >= 0) {
      out = static_cast<Int>(v->as_int64());
    } else {
      return Fail(name);
    }
    return true;
  }
  bool Object(std::string_view name, std::string& out) {
    const json::value* v = o_.if_contains(name);
    if (v == nullptr) return true;
    if (!v->is_object()) return Fail(name);
    out = json::serialize(*v);
    return true;
  }
  const std::string& failed() const { return failed_; }

 private:
  bool Fail(std::string_view name) {
    failed_ = std::string(name);
    return false;
  }
  const json::object& o_;
  std::string failed_;
};

Result<json::object> ParseObject(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return Bad("not a JSON object");
  return std::move(v.as_object());
}

}  // namespace

std::string EncodeDocument(const DocumentRecord& d) {
  json::object o;
  o["id"] = d.id;
  o["title"] = d.title;
  o["source"] = d.source;
  o["content_type"] = ToString(d.content_type);
  o["created_at"] = d.created_at;
  o["updated_at"] = d.updated_at;
  boost::system::error_code ec;
  json::value metadata = json::parse(d.metadata, ec);
  o["metadata"] = !ec && metadata.is_object() ? std::move(metadata) : json::object();
  o["generation"] = d.generation;
  o["chunk_count"] = d.chunk_count;
  o["pages"] = d.pages;
  o["embedding_model"] = d.embedding_model;
  o["dimensions"] = d.dimensions;
  o["chunking"] = d.chunking;
  o["bytes"] = d.bytes;
  return json::serialize(o);
}

Result<DocumentRecord> DecodeDocument(std::string_view text) {
  auto o = ParseObject(text);
  if (!o) return o.error();
  DocumentRecord d;
  Fields f(*o);
  std::string content_type = "text";
  if (!f.String("id", d.id) || !f.String("title", d.title) || !f.String("source", d.source) ||
      !f.String("content_type", content_type) || !f.String("created_at", d.created_at) ||
      !f.String("updated_at", d.updated_at) || !f.Object("metadata", d.metadata) ||
      !f.String("generation", d.generation) || !f.Unsigned("chunk_count", d.chunk_count) ||
      !f.Unsigned("pages", d.pages) || !f.String("embedding_model", d.embedding_model) ||
      !f.Unsigned("dimensions", d.dimensions) || !f.String("chunking", d.chunking) ||
      !f.Unsigned("bytes", d.bytes)) {
    return Bad("member '" + f.failed() + "' has the wrong type");
  }
  if (d.id.empty() || d.generation.empty()) return Bad("no id or generation");
  d.content_type = ParseContentType(content_type).value_or(ContentType::kText);
  return d;
}

std::vector<std::string> EncodePages(std::string_view document_id, std::string_view generation,
                                     std::span<const ChunkRecord> chunks, std::size_t page_bytes) {
  std::vector<std::string> pages;
  std::string page;
  auto open = [&] {
    page = "{\"document_id\":";
    wire::AppendJsonString(page, document_id);
    page += ",\"generation\":";
    wire::AppendJsonString(page, generation);
    page += ",\"chunks\":[";
  };
  bool empty = true;
  open();
  for (const ChunkRecord& c : chunks) {
    if (!empty) page += ',';
    page += "{\"seq\":" + std::to_string(c.sequence) + ",\"text\":";
    wire::AppendJsonString(page, c.text);
    if (!c.heading_path.empty()) {
      page += ",\"headings\":[";
      for (std::size_t i = 0; i < c.heading_path.size(); ++i) {
        if (i > 0) page += ',';
        wire::AppendJsonString(page, c.heading_path[i]);
      }
      page += ']';
    }
    if (!c.vector.empty()) {
      page += ",\"vector\":\"";
      page += wire::EncodeFloatsBase64(c.vector);
      page += '"';
    }
    page += '}';
    empty = false;
    if (page.size() >= page_bytes) {
      page += "]}";
      pages.push_back(std::move(page));
      open();
      empty = true;
    }
  }
  if (!empty || pages.empty()) {
    page += "]}";
    pages.push_back(std::move(page));
  }
  return pages;
}

Result<ChunkPage> DecodePage(std::string_view text) {
  auto o = ParseObject(text);
  if (!o) return o.error();
  ChunkPage page;
  Fields f(*o);
  if (!f.String("document_id", page.document_id) || !f.String("generation", page.generation)) {
    return Bad("member '" + f.failed() + "' has the wrong type");
  }
  const json::value* chunks = o->if_contains("chunks");
  if (chunks == nullptr || !chunks->is_array()) return Bad("a page without chunks");
  for (const json::value& v : chunks->as_array()) {
    if (!v.is_object()) return Bad("a chunk is not an object");
    const json::object& c = v.as_object();
    ChunkRecord chunk;
    Fields cf(c);
    std::string vector;
    if (!cf.Unsigned("seq", chunk.sequence) || !cf.String("text", chunk.text) ||
        !cf.String("vector", vector)) {
      return Bad("chunk member '" + cf.failed() + "' has the wrong type");
    }
    if (const json::value* h = c.if_contains("headings")) {
      if (!h->is_array()) return Bad("chunk headings are not an array");
      for (const json::value& s : h->as_array()) {
        if (!s.is_string()) return Bad("a chunk heading is not a string");
        chunk.heading_path.emplace_back(s.as_string().begin(), s.as_string().end());
      }
    }
    if (!vector.empty()) {
      auto floats = wire::DecodeFloatsBase64(vector);
      if (!floats) return Bad("a chunk's vector is not base64 float32");
      chunk.vector = std::move(*floats);
    }
    page.chunks.push_back(std::move(chunk));
  }
  return page;
}

std::string EncodePending(const PendingGeneration& pending) {
  json::object o;
  o["document_id"] = pending.document_id;
  o["pages"] = pending.pages;
  o["retired"] = pending.retired;
  return json::serialize(o);
}

Result<PendingGeneration> DecodePending(std::string_view text) {
  auto o = ParseObject(text);
  if (!o) return o.error();
  PendingGeneration p;
  Fields f(*o);
  if (!f.String("document_id", p.document_id) || !f.Unsigned("pages", p.pages)) {
    return Bad("pending member '" + f.failed() + "' has the wrong type");
  }
  const json::value* retired = o->if_contains("retired");
  p.retired = retired != nullptr && retired->is_bool() && retired->as_bool();
  return p;
}

std::string PageId(std::string_view generation, std::size_t page) {
  char digits[16];
  std::snprintf(digits, sizeof digits, "%06zu", page);
  return std::string(generation) + "/" + digits;
}

std::string PagePrefix(std::string_view generation) {
  return std::string(generation) + "/";
}

std::string NewGeneration(std::chrono::system_clock::time_point now) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch());
  char out[32];
  std::snprintf(out, sizeof out, "%012llx%012llx",
                static_cast<unsigned long long>(ms.count()) & 0xFFFFFFFFFFFFull,
                static_cast<unsigned long long>(RandomU64() & 0xFFFFFFFFFFFFull));
  return out;
}

std::chrono::system_clock::time_point GenerationTime(std::string_view generation) {
  if (generation.size() != 24) return {};
  std::uint64_t ms = 0;
  for (char c : generation.substr(0, 12)) {
    int digit = 0;
    if (c >= '0' && c <= '9') {
      digit = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      digit = c - 'a' + 10;
    } else {
      return {};
    }
    ms = ms * 16 + static_cast<std::uint64_t>(digit);
  }
  return std::chrono::system_clock::time_point(std::chrono::milliseconds(ms));
}

std::string ChunkId(std::string_view generation, std::uint32_t sequence) {
  return std::string(generation) + "-" + std::to_string(sequence);
}

std::string NewDocumentId() {
  const std::uint64_t a = RandomU64();
  const std::uint64_t b = RandomU64();
  char out[40];
  std::snprintf(out, sizeof out, "%08llx-%04llx-4%03llx-%04llx-%012llx",
                static_cast<unsigned long long>(a >> 32),
                static_cast<unsigned long long>((a >> 16) & 0xFFFF),
                static_cast<unsigned long long>(a & 0xFFF),
                static_cast<unsigned long long>(0x8000 | ((b >> 48) & 0x3FFF)),
                static_cast<unsigned long long>(b & 0xFFFFFFFFFFFFull));
  return out;
}

Result<void> CheckDocumentId(std::string_view id, std::string_view param) {
  if (id.empty() || id.size() > kMaxDocumentIdBytes) {
    return Error(
        ErrorCode::kInvalidRequest,
        std::string(param) + " must be 1 to " + std::to_string(kMaxDocumentIdBytes) + " bytes",
        std::string(param));
  }
  if (!utf8::IsValid(id)) {
    return Error(ErrorCode::kInvalidRequest, std::string(param) + " must be UTF-8 text",
                 std::string(param));
  }
  for (char c : id) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F) {
      return Error(ErrorCode::kInvalidRequest,
                   std::string(param) + " must not hold control characters", std::string(param));
    }
  }
  return {};
}

std::string IsoTime(std::chrono::system_clock::time_point t) {
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char out[96];
  std::snprintf(out, sizeof out, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  return out;
}

}  // namespace orchestra::documents
