#include "upstream/faults.hpp"

#include <algorithm>
#include <charconv>
#include <memory>
#include <stdexcept>
#include <string_view>
#include <vector>

#include "common/text.hpp"
#include <zlib.h>

namespace orchestra::testing::upstream {
namespace {

void AppendNumber(std::string& out, std::size_t v, int base = 10) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, base);
  out.append(buf, end);
}

void AppendChunk(std::string& out, std::string_view data) {
  if (data.empty()) return;  // an empty chunk would end the body
  AppendNumber(out, data.size(), 16);
  out += "\r\n";
  out += data;
  out += "\r\n";
}

// The payload of one framed stream event: "<hex>\r\n<payload>\r\n" when chunked.
std::string_view Payload(std::string_view framed, bool chunked) {
  if (!chunked) return framed;
  const std::size_t line = framed.find("\r\n");
  if (line == std::string_view::npos || framed.size() < line + 4) return {};
  return framed.substr(line + 2, framed.size() - line - 4);
}

// A streaming compressor whose every piece is flushed, so that each event can be decoded as
// it arrives.
class Deflater {
 public:
  explicit Deflater(bool gzip) {
    if (deflateInit2(&z_, Z_DEFAULT_COMPRESSION, Z_DEFLATED, gzip ? 15 + 16 : 15, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK) {
      throw std::runtime_error("test upstream: deflateInit2 failed");
    }
  }
  ~Deflater() { deflateEnd(&z_); }
  Deflater(const Deflater&) = delete;
  Deflater& operator=(const Deflater&) = delete;

  // Compresses `in` (Z_SYNC_FLUSH, or Z_FINISH at the end) and returns the new bytes.
  std::string Piece(std::string_view in, bool finish) {
    std::string out;
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z_.avail_in = static_cast<uInt>(in.size());
    char buf[16384];
    int rc = Z_OK;
    do {
      z_.next_out = reinterpret_cast<Bytef*>(buf);
      z_.avail_out = sizeof buf;
      rc = deflate(&z_, finish ? Z_FINISH : Z_SYNC_FLUSH);
      out.append(buf, sizeof buf - z_.avail_out);
    } while (z_.avail_out == 0 || (finish && rc != Z_STREAM_END));
    return out;
  }

 private:
  z_stream z_{};
};

constexpr std::string_view kHtmlPage =
    "<!DOCTYPE html>\n<html><head><title>Welcome</title></head>\n"
    "<body><h1>Please sign in to continue</h1></body></html>\n";

// A complete chat completion that nobody asked for.
std::string AppendedResponse() {
  const std::string body =
      R"({"id":"chatcmpl-appended","object":"chat.completion","created":0,"model":"appended",)"
      R"("choices":[{"index":0,"message":{"role":"assistant","content":"appended: not your )"
      R"(answer"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":4,)"
      R"("total_tokens":5}})";
  std::string out = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ";
  AppendNumber(out, body.size());
  out += "\r\n\r\n";
  out += body;
  return out;
}

std::string Interim(int status) {
  std::string out = "HTTP/1.1 ";
  AppendNumber(out, static_cast<std::size_t>(status));
  switch (status) {
    case 100:
      out += " Continue\r\n";
      break;
    case 101:
      out += " Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n";
      break;
    case 103:
      out += " Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n";
      break;
    default:
      out += " Interim\r\n";
      break;
  }
  out += "\r\n";
  return out;
}

}  // namespace

void Compress(std::string_view in, bool gzip, std::string& out) {
  Deflater d(gzip);
  out += d.Piece(in, true);
}

void BuildFaultyWire(const Reply& reply, FaultyWire& out) {
  const Directives& d = reply.directives;
  out.bytes.clear();
  out.appended.clear();
  out.close_after = false;
  out.padding = 0;
  out.padding_at = 0;

  // The reply as it stands: its head lines, whether it is chunked, its body payload pieces.
  std::string_view head = reply.head;
  const std::string_view status_line = head.substr(0, head.find("\r\n"));
  std::vector<std::string_view> lines;  // header lines other than the framing ones
  std::string_view content_type;
  bool chunked = false;
  for (std::size_t at = status_line.size() + 2; at < head.size();) {
    const std::size_t end = head.find("\r\n", at);
    const std::string_view line = head.substr(at, end - at);
    at = end + 2;
    if (line.empty()) break;
    if (line.starts_with("Content-Type: ")) {
      content_type = line.substr(14);
    } else if (line.starts_with("Transfer-Encoding: ")) {
      chunked = true;
    } else if (!line.starts_with("Content-Length: ")) {
      lines.push_back(line);
    }
  }
  std::vector<std::string_view> pieces;  // the body's payload, one piece per stream event
  if (d.html) {
    pieces.push_back(kHtmlPage);
    content_type = "text/html; charset=utf-8";
    chunked = false;
  } else if (reply.stream) {
    for (const StreamEvent& e : reply.events) {
      std::string_view payload =
          Payload(std::string_view(reply.body).substr(e.begin, e.end - e.begin), chunked);
      if (!payload.empty()) pieces.push_back(payload);
    }
  } else {
    pieces.push_back(reply.body);
  }

  if (d.http09) {  // no status line, no headers: the body, then the close
    for (std::string_view p : pieces)
      out.bytes += p;
    out.stop = out.bytes.size();
    out.close_after = true;
    return;
  }

  // The body on the wire, and where each piece ends in it.
  const bool compress = d.encoding == Encoding::kGzip || d.encoding == Encoding::kDeflate;
  const bool stream = reply.stream && !d.html;
  const bool send_chunked = chunked || d.bad_chunk || (d.body_mib > 0 && !stream);
  std::string body;
  std::vector<std::size_t> piece_ends;
  std::unique_ptr<Deflater> deflater;
  if (compress) deflater = std::make_unique<Deflater>(d.encoding == Encoding::kGzip);
  for (std::size_t i = 0; i < pieces.size(); ++i) {
    const bool last = i + 1 == pieces.size();
    std::string coded =
        compress ? deflater->Piece(pieces[i], !stream || last) : std::string(pieces[i]);
    if (send_chunked) {
      if (d.bad_chunk && (i == 1 || (i == 0 && (!stream || pieces.size() == 1)))) {
        body += "zz\r\n";  // not a chunk size
      }
      AppendChunk(body, coded);
    } else {
      body += coded;
    }
    piece_ends.push_back(body.size());
  }
  if (send_chunked) body += "0\r\n\r\n";

  std::string wire_head(status_line);
  wire_head += "\r\n";
  wire_head += "Content-Type: ";
  wire_head += d.content_type.empty() ? content_type : d.content_type;
  wire_head += "\r\n";
  for (std::string_view line : lines) {
    wire_head += line;
    wire_head += "\r\n";
  }
  if (d.encoding != Encoding::kIdentity) {
    wire_head += "Content-Encoding: ";
    wire_head += d.encoding == Encoding::kGzip      ? "gzip"
                 : d.encoding == Encoding::kDeflate ? "deflate"
                                                    : "br";
    wire_head += "\r\n";
  }
  for (int i = 1, padded = 0; padded < d.header_bytes; ++i) {
    std::string line = "X-Pad-" + std::to_string(i) + ": ";
    line.append(static_cast<std::size_t>(std::min(1000, d.header_bytes - padded)), 'p');
    padded += static_cast<int>(line.size()) + 2;
    wire_head += line;
    wire_head += "\r\n";
  }
  if (send_chunked) {
    wire_head += "Transfer-Encoding: chunked\r\n";
  } else if (!stream || d.html) {
    const long long length = static_cast<long long>(body.size()) + d.length_delta;
    wire_head += "Content-Length: ";
    AppendNumber(wire_head, static_cast<std::size_t>(std::max(0LL, length)));
    wire_head += "\r\n";
  }
  wire_head += "\r\n";

  if (d.interim != 0) out.bytes = Interim(d.interim);
  const std::size_t head_at = out.bytes.size();
  out.bytes += wire_head;
  const std::size_t body_at = out.bytes.size();
  if (d.body_mib > 0 && !stream) {
    out.padding = static_cast<std::uint64_t>(d.body_mib) << 20;
    out.padding_at = body_at;
  }
  out.bytes += body;
  out.stop = out.bytes.size();
  const FaultPoint point = d.reset_at != FaultPoint::kNone ? d.reset_at : d.stall_at;
  if (point == FaultPoint::kHead) {
    out.stop = head_at + wire_head.size() / 2;
  } else if (point == FaultPoint::kBody) {
    // Half the body; a stream stops at an event boundary, after at least one event.
    const std::size_t half =
        stream ? piece_ends[std::max<std::size_t>(1, pieces.size() / 2) - 1] : body.size() / 2;
    out.stop = body_at + std::min(half, body.size() - 1);
  }
  if (d.append) {
    if (d.append_delay.count() > 0) {
      out.appended = AppendedResponse();
    } else if (out.stop == out.bytes.size()) {
      out.bytes += AppendedResponse();
      out.stop = out.bytes.size();
    }
  }
}

}  // namespace orchestra::testing::upstream
