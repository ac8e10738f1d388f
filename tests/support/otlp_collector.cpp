#include "support/otlp_collector.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <stdexcept>

#include <boost/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace orchestra::testing {
namespace {

namespace json = boost::json;

// --- protobuf -----------------------------------------------------------------------------------

// One field of a protobuf message: its number, wire type and value (a varint or fixed number,
// or the bytes of a length-delimited field).
struct Field {
  std::uint32_t number = 0;
  int type = 0;
  std::uint64_t number_value = 0;
  std::string_view bytes;
};

class ProtoReader {
 public:
  explicit ProtoReader(std::string_view data) : data_(data) {}

  bool Next(Field& field) {
    if (at_ >= data_.size()) return false;
    const std::uint64_t tag = Varint();
    field = Field{};
    field.number = static_cast<std::uint32_t>(tag >> 3);
    field.type = static_cast<int>(tag & 7);
    switch (field.type) {
      case 0:
        field.number_value = Varint();
        break;
      case 1:
        field.number_value = Fixed(8);
        break;
      case 5:
        field.number_value = Fixed(4);
        break;
      case 2: {
        const std::uint64_t n = Varint();
        if (n > data_.size() - at_) throw std::runtime_error("protobuf: field past the end");
        field.bytes = data_.substr(at_, n);
        at_ += n;
        break;
      }
      default:
        throw std::runtime_error("protobuf: unknown wire type " + std::to_string(field.type));
    }
    return true;
  }

 private:
  std::uint64_t Varint() {
    std::uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (at_ >= data_.size()) throw std::runtime_error("protobuf: truncated varint");
      const auto b = static_cast<unsigned char>(data_[at_++]);
      value |= std::uint64_t{b & 0x7Fu} << shift;
      if ((b & 0x80) == 0) return value;
    }
    throw std::runtime_error("protobuf: varint too long");
  }
  std::uint64_t Fixed(int bytes) {
    if (data_.size() - at_ < static_cast<std::size_t>(bytes)) {
      throw std::runtime_error("protobuf: truncated fixed field");
    }
    std::uint64_t value = 0;
    for (int i = 0; i < bytes; ++i)
      value |= std::uint64_t{static_cast<unsigned char>(data_[at_ + i])} << (8 * i);
    at_ += bytes;
    return value;
  }

  std::string_view data_;
  std::size_t at_ = 0;
};

std::string Hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (char c : bytes) {
    const auto b = static_cast<unsigned char>(c);
    out += kDigits[b >> 4];
    out += kDigits[b & 15];
  }
  return out;
}

// AnyValue → text (see CollectedSpan::attributes).
std::string AnyValueProto(std::string_view message) {
  ProtoReader r(message);
  Field f;
  std::string out;
  while (r.Next(f)) {
    switch (f.number) {
      case 1:  // string_value
        out = std::string(f.bytes);
        break;
      case 2:  // bool_value
        out = f.number_value != 0 ? "true" : "false";
        break;
      case 3:  // int_value
        out = std::to_string(static_cast<std::int64_t>(f.number_value));
        break;
      case 4: {  // double_value
        double d = 0;
        std::memcpy(&d, &f.number_value, sizeof(d));
        out = std::to_string(d);
        break;
      }
      case 5: {  // array_value: ArrayValue { repeated AnyValue values = 1; }
        ProtoReader items(f.bytes);
        Field item;
        while (items.Next(item)) {
          if (item.number != 1) continue;
          if (!out.empty()) out += ',';
          out += AnyValueProto(item.bytes);
        }
        break;
      }
      default:
        break;
    }
  }
  return out;
}

// KeyValue { string key = 1; AnyValue value = 2; }
void KeyValueProto(std::string_view message, std::map<std::string, std::string>& out) {
  ProtoReader r(message);
  Field f;
  std::string key;
  std::string value;
  while (r.Next(f)) {
    if (f.number == 1) key = std::string(f.bytes);
    if (f.number == 2) value = AnyValueProto(f.bytes);
  }
  out[key] = value;
}

CollectedSpan SpanProto(std::string_view message) {
  CollectedSpan s;
  ProtoReader r(message);
  Field f;
  while (r.Next(f)) {
    switch (f.number) {
      case 1:
        s.trace_id = Hex(f.bytes);
        break;
      case 2:
        s.span_id = Hex(f.bytes);
        break;
      case 4:
        s.parent_span_id = Hex(f.bytes);
        break;
      case 5:
        s.name = std::string(f.bytes);
        break;
      case 6:
        s.kind = static_cast<int>(f.number_value);
        break;
      case 7:
        s.start_unix_nano = f.number_value;
        break;
      case 8:
        s.end_unix_nano = f.number_value;
        break;
      case 9:
        KeyValueProto(f.bytes, s.attributes);
        break;
      case 11: {  // Event { fixed64 time_unix_nano = 1; string name = 2; attributes = 3; }
        CollectedEvent e;
        ProtoReader er(f.bytes);
        Field ef;
        while (er.Next(ef)) {
          if (ef.number == 1) e.time_unix_nano = ef.number_value;
          if (ef.number == 2) e.name = std::string(ef.bytes);
          if (ef.number == 3) KeyValueProto(ef.bytes, e.attributes);
        }
        s.events.push_back(std::move(e));
        break;
      }
      case 15: {  // Status { string message = 2; StatusCode code = 3; }
        ProtoReader sr(f.bytes);
        Field sf;
        while (sr.Next(sf)) {
          if (sf.number == 2) s.status_message = std::string(sf.bytes);
          if (sf.number == 3) s.status_code = static_cast<int>(sf.number_value);
        }
        break;
      }
      case 16:
        s.flags = static_cast<std::uint32_t>(f.number_value);
        break;
      default:
        break;
    }
  }
  return s;
}

// --- JSON ---------------------------------------------------------------------------------------

std::string Text(const json::value& v) {
  return std::string(v.as_string());
}

std::string AnyValueJson(const json::object& v) {
  if (auto* s = v.if_contains("stringValue")) return Text(*s);
  if (auto* b = v.if_contains("boolValue")) return b->as_bool() ? "true" : "false";
  if (auto* i = v.if_contains("intValue")) {
    // OTLP/JSON: 64-bit integers are decimal strings (numbers are accepted as well).
    return i->is_string() ? Text(*i) : std::to_string(i->to_number<std::int64_t>());
  }
  if (auto* d = v.if_contains("doubleValue")) return std::to_string(d->to_number<double>());
  if (auto* a = v.if_contains("arrayValue")) {
    std::string out;
    for (const json::value& item : a->at("values").as_array()) {
      if (!out.empty()) out += ',';
      out += AnyValueJson(item.as_object());
    }
    return out;
  }
  return "";
}

void AttributesJson(const json::object& o, std::map<std::string, std::string>& out) {
  const json::value* attributes = o.if_contains("attributes");
  if (attributes == nullptr) return;
  for (const json::value& kv : attributes->as_array())
    out[Text(kv.at("key"))] = AnyValueJson(kv.at("value").as_object());
}

std::uint64_t Nanos(const json::value& v) {
  return v.is_string() ? std::stoull(Text(v)) : v.to_number<std::uint64_t>();
}

// --- HTTP ---------------------------------------------------------------------------------------

std::string Lower(std::string s) {
  for (char& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

}  // namespace

std::vector<CollectedSpan> DecodeOtlpProtobuf(std::string_view body) {
  std::vector<CollectedSpan> out;
  ProtoReader request(body);
  Field rs;
  while (request.Next(rs)) {
    if (rs.number != 1) continue;  // resource_spans
    std::map<std::string, std::string> resource;
    std::vector<CollectedSpan> spans;
    ProtoReader resource_spans(rs.bytes);
    Field f;
    while (resource_spans.Next(f)) {
      if (f.number == 1) {  // Resource { repeated KeyValue attributes = 1; }
        ProtoReader r(f.bytes);
        Field a;
        while (r.Next(a)) {
          if (a.number == 1) KeyValueProto(a.bytes, resource);
        }
      } else if (f.number == 2) {  // ScopeSpans { scope = 1; repeated Span spans = 2; }
        std::string scope_name;
        ProtoReader ss(f.bytes);
        Field sf;
        while (ss.Next(sf)) {
          if (sf.number == 1) {
            ProtoReader scope(sf.bytes);
            Field n;
            while (scope.Next(n)) {
              if (n.number == 1) scope_name = std::string(n.bytes);
            }
          } else if (sf.number == 2) {
            spans.push_back(SpanProto(sf.bytes));
            spans.back().scope_name = scope_name;
          }
        }
      }
    }
    for (CollectedSpan& s : spans) {
      s.resource = resource;
      out.push_back(std::move(s));
    }
  }
  return out;
}

std::vector<CollectedSpan> DecodeOtlpJson(std::string_view body) {
  std::vector<CollectedSpan> out;
  const json::value request = json::parse(body);
  for (const json::value& rs : request.at("resourceSpans").as_array()) {
    std::map<std::string, std::string> resource;
    if (auto* r = rs.as_object().if_contains("resource")) AttributesJson(r->as_object(), resource);
    for (const json::value& ss : rs.at("scopeSpans").as_array()) {
      std::string scope_name;
      if (auto* scope = ss.as_object().if_contains("scope")) scope_name = Text(scope->at("name"));
      for (const json::value& v : ss.at("spans").as_array()) {
        const json::object& o = v.as_object();
        CollectedSpan s;
        s.trace_id = Text(o.at("traceId"));
        s.span_id = Text(o.at("spanId"));
        if (auto* p = o.if_contains("parentSpanId")) s.parent_span_id = Text(*p);
        s.name = Text(o.at("name"));
        s.kind = o.at("kind").to_number<int>();
        if (auto* fl = o.if_contains("flags")) s.flags = fl->to_number<std::uint32_t>();
        s.start_unix_nano = Nanos(o.at("startTimeUnixNano"));
        s.end_unix_nano = Nanos(o.at("endTimeUnixNano"));
        AttributesJson(o, s.attributes);
        if (auto* events = o.if_contains("events")) {
          for (const json::value& ev : events->as_array()) {
            CollectedEvent e;
            e.name = Text(ev.at("name"));
            e.time_unix_nano = Nanos(ev.at("timeUnixNano"));
            AttributesJson(ev.as_object(), e.attributes);
            s.events.push_back(std::move(e));
          }
        }
        if (auto* st = o.if_contains("status")) {
          if (auto* c = st->as_object().if_contains("code")) s.status_code = c->to_number<int>();
          if (auto* m = st->as_object().if_contains("message")) s.status_message = Text(*m);
        }
        s.resource = resource;
        s.scope_name = scope_name;
        out.push_back(std::move(s));
      }
    }
  }
  return out;
}

OtlpCollector::OtlpCollector() {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) throw std::runtime_error("collector: socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(listen_fd_, 64) != 0) {
    ::close(listen_fd_);
    throw std::runtime_error("collector: bind/listen");
  }
  socklen_t len = sizeof(addr);
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { Accept(); });
}

OtlpCollector::~OtlpCollector() {
  stopping_.store(true);
  ::shutdown(listen_fd_, SHUT_RDWR);
  acceptor_.join();
  ::close(listen_fd_);
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mutex_);
    for (int fd : connections_)
      ::shutdown(fd, SHUT_RDWR);
    threads.swap(threads_);
  }
  for (std::thread& t : threads)
    t.join();
}

void OtlpCollector::Accept() {
  while (!stopping_.load()) {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (stopping_.load()) return;
      continue;
    }
    std::lock_guard lock(mutex_);
    if (stopping_.load()) {
      ::close(fd);
      return;
    }
    connections_.push_back(fd);
    threads_.emplace_back([this, fd] { Serve(fd); });
  }
}

void OtlpCollector::Serve(int fd) {
  std::string buffer;
  char chunk[16384];
  const auto read_more = [&] {
    const ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
    if (n <= 0) return false;
    buffer.append(chunk, static_cast<std::size_t>(n));
    return true;
  };
  while (true) {
    std::size_t head_end;
    while ((head_end = buffer.find("\r\n\r\n")) == std::string::npos) {
      if (!read_more()) goto done;
    }
    {
      std::map<std::string, std::string> headers;
      std::string_view head(buffer.data(), head_end);
      // Copied: reading the body may move the buffer.
      const std::string request_line(head.substr(0, head.find("\r\n")));
      const std::size_t first_line = head.find("\r\n");
      std::string_view rest =
          first_line == std::string_view::npos ? "" : head.substr(first_line + 2);
      while (!rest.empty()) {
        const std::size_t eol = rest.find("\r\n");
        std::string_view line = rest.substr(0, eol);
        rest = eol == std::string_view::npos ? "" : rest.substr(eol + 2);
        const std::size_t colon = line.find(':');
        if (colon == std::string_view::npos) continue;
        std::string_view value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ')
          value.remove_prefix(1);
        headers[Lower(std::string(line.substr(0, colon)))] = std::string(value);
      }
      std::size_t length = 0;
      if (auto it = headers.find("content-length"); it != headers.end()) {
        length = std::stoul(it->second);
      }
      const std::size_t body_start = head_end + 4;
      while (buffer.size() < body_start + length) {
        if (!read_more()) goto done;
      }
      const std::string body = buffer.substr(body_start, length);
      buffer.erase(0, body_start + length);

      std::string token;
      {
        std::lock_guard lock(mutex_);
        token = access_token_;
      }
      if (request_line.starts_with("GET ")) {
        // The metadata server's token endpoint.
        const bool ok =
            !token.empty() &&
            request_line.find("/instance/service-accounts/default/token") != std::string::npos &&
            headers["metadata-flavor"] == "Google";
        token_requests_.fetch_add(1);
        const std::string answer =
            ok ? R"({"access_token":")" + token + R"(","expires_in":3599,"token_type":"Bearer"})"
               : "not found";
        if (!SendAll(fd, std::string("HTTP/1.1 ") + (ok ? "200 OK" : "404 Not Found") +
                             "\r\nContent-Type: application/json\r\nContent-Length: " +
                             std::to_string(answer.size()) + "\r\n\r\n" + answer)) {
          break;
        }
        continue;
      }
      int status = status_.load();
      if (!token.empty() && headers["authorization"] != "Bearer " + token) status = 401;
      std::vector<CollectedSpan> spans;
      std::string answer_body = "{}";
      std::string content_type = headers["content-type"];
      if (status == 200) {
        try {
          spans = content_type.starts_with("application/x-protobuf") ? DecodeOtlpProtobuf(body)
                                                                     : DecodeOtlpJson(body);
          if (content_type.starts_with("application/x-protobuf")) answer_body.clear();
        } catch (const std::exception& e) {
          // A malformed export is a test failure the test sees as missing spans; say why.
          answer_body = std::string("{\"error\":\"") + e.what() + "\"}";
        }
      }
      {
        std::lock_guard lock(mutex_);
        last_headers_ = headers;
        for (CollectedSpan& s : spans)
          spans_.push_back(std::move(s));
      }
      requests_.fetch_add(1);
      arrived_.notify_all();
      const std::string reason = status == 200 ? "OK" : "Unavailable";
      std::string response = "HTTP/1.1 " + std::to_string(status) + " " + reason +
                             "\r\nContent-Type: " + content_type +
                             "\r\nContent-Length: " + std::to_string(answer_body.size()) +
                             "\r\n\r\n" + answer_body;
      if (!SendAll(fd, response)) break;
    }
  }
done:
  std::lock_guard lock(mutex_);
  connections_.erase(std::remove(connections_.begin(), connections_.end(), fd), connections_.end());
  ::close(fd);
}

void OtlpCollector::set_access_token(const std::string& token) {
  std::lock_guard lock(mutex_);
  access_token_ = token;
}

std::vector<CollectedSpan> OtlpCollector::Spans() const {
  std::lock_guard lock(mutex_);
  return spans_;
}

std::vector<CollectedSpan> OtlpCollector::WaitForSpans(std::size_t count, int timeout_ms) const {
  std::unique_lock lock(mutex_);
  arrived_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                    [&] { return spans_.size() >= count; });
  return spans_;
}

std::string OtlpCollector::last_content_type() const {
  return last_header("content-type");
}

std::string OtlpCollector::last_header(const std::string& name) const {
  std::lock_guard lock(mutex_);
  auto it = last_headers_.find(name);
  return it == last_headers_.end() ? "" : it->second;
}

}  // namespace orchestra::testing
