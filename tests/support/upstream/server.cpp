#include "upstream/server.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "common/text.hpp"
#include "upstream/faults.hpp"
#include "upstream/http_request.hpp"
#include "upstream/replies.hpp"

namespace orchestra::testing::upstream {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kInitialBuffer = 4096;
constexpr std::size_t kMaxBuffer = kMaxHeadBytes + kMaxBodyBytes + 4096;
constexpr std::size_t kCoalesceLimit = 64 * 1024;  // replies up to this size go out in one buffer
constexpr std::size_t kEndpointCount = static_cast<std::size_t>(Endpoint::kCount);

// Counters of one worker; GET /_stats sums them over the workers. Relaxed atomics: each is
// written by its own worker and read (or zeroed by /_reset) from any.
struct alignas(64) WorkerStats {
  std::atomic<std::uint64_t> requests_total{0};
  std::array<std::atomic<std::uint64_t>, kEndpointCount> requests{};
  std::atomic<std::int64_t> connections_open{0};
  std::atomic<std::uint64_t> connections_total{0};
  std::atomic<std::uint64_t> streams_started{0};
  std::atomic<std::uint64_t> streams_completed{0};
  std::atomic<std::uint64_t> aborted{0};
  std::atomic<std::uint64_t> injected_errors{0};
  std::atomic<std::uint64_t> stalls{0};
  std::atomic<std::uint64_t> resets{0};
  std::atomic<std::uint64_t> cuts{0};
  std::atomic<std::uint64_t> faults{0};
  std::atomic<std::uint64_t> bad_requests{0};
  std::atomic<std::uint64_t> metadata_tokens{0};

  void Reset() {
    for (auto* c :
         {&requests_total, &connections_total, &streams_started, &streams_completed, &aborted,
          &injected_errors, &stalls, &resets, &cuts, &faults, &bad_requests, &metadata_tokens}) {
      c->store(0, std::memory_order_relaxed);
    }
    for (auto& c : requests)
      c.store(0, std::memory_order_relaxed);
  }
};

void Bump(std::atomic<std::uint64_t>& counter) {
  counter.fetch_add(1, std::memory_order_relaxed);
}

// The last model request one worker saw; /_last_request shows the newest over the workers.
// Strings are reassigned in place, so recording stops allocating once they have grown.
struct LastRequestSlot {
  std::mutex mutex;
  std::uint64_t sequence = 0;  // 0 = none yet
  Endpoint endpoint = Endpoint::kOther;
  std::string method;
  std::string target;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::size_t header_count = 0;
};

// A connection's read buffer: bytes [0, end_) are received and not yet consumed.
class ReadBuffer {
 public:
  ReadBuffer() : data_(kInitialBuffer) {}

  std::string_view Data() const { return {data_.data(), end_}; }

  // Free space to read into, grown so that `total` bytes fit when known (0 = just some room).
  asio::mutable_buffer Prepare(std::size_t total) {
    std::size_t want = std::max(total, end_ + 1);
    if (want > data_.size()) {
      data_.resize(std::min(std::max(want, data_.size() * 2), kMaxBuffer));
    }
    return asio::buffer(data_.data() + end_, data_.size() - end_);
  }
  // Free space without growing (used while watching a connection during a delay).
  asio::mutable_buffer Spare() { return asio::buffer(data_.data() + end_, data_.size() - end_); }
  void Commit(std::size_t n) { end_ += n; }
  void Consume(std::size_t n) {
    std::memmove(data_.data(), data_.data() + n, end_ - n);
    end_ -= n;
  }

 private:
  std::vector<char> data_;
  std::size_t end_ = 0;
};

tcp::socket& Socket(tcp::socket& s) {
  return s;
}
tcp::socket& Socket(ssl::stream<tcp::socket>& s) {
  return s.next_layer();
}

using Buffers2 = std::array<asio::const_buffer, 2>;

// Writes what the socket takes right now, without the event loop: a reply nearly always fits
// the socket buffer, and skipping the asynchronous operation (queueing, completion, coroutine
// resume) is a good part of the upstream's CPU per request. Plain sockets only (they are in
// non-blocking mode, see Session); TLS writes go through async_write. Returns the bytes written.
template <class Stream, class ConstBuffers>
std::size_t WriteNow(Stream& stream, const ConstBuffers& buffers, boost::system::error_code& ec) {
  if constexpr (std::is_same_v<Stream, tcp::socket>) {
    std::size_t n = stream.write_some(buffers, ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) ec.clear();
    return ec ? 0 : n;
  } else {
    (void)stream;
    (void)buffers;
    ec.clear();
    return 0;
  }
}

// Drops the first `n` bytes of `buffers`; true when some remain.
bool Advance(Buffers2& buffers, std::size_t n) {
  for (auto& b : buffers) {
    std::size_t used = std::min(n, b.size());
    b += used;
    n -= used;
  }
  return buffers[0].size() + buffers[1].size() != 0;
}

// WriteNow, then async_write for whatever is left.
template <class Stream>
asio::awaitable<boost::system::error_code> WriteAll(Stream& stream, Buffers2 buffers) {
  boost::system::error_code ec;
  std::size_t n = WriteNow(stream, buffers, ec);
  if (ec || !Advance(buffers, n)) co_return ec;
  auto [write_ec, written] = co_await asio::async_write(stream, buffers, kUseTuple);
  co_return write_ec;
}

// Ends the connection with a FIN once our bytes are out.
template <class Stream>
void CloseGracefully(Stream& stream) {
  boost::system::error_code ignored;
  Socket(stream).shutdown(tcp::socket::shutdown_send, ignored);
  Socket(stream).close(ignored);
}

// Ends the connection with an RST: SO_LINGER with a zero timeout makes close() abort it.
template <class Stream>
void CloseAbruptly(Stream& stream) {
  boost::system::error_code ignored;
  Socket(stream).set_option(asio::socket_base::linger(true, 0), ignored);
  Socket(stream).close(ignored);
}

}  // namespace

struct Server::Shared {
  ServerOptions options;
  std::unique_ptr<ssl::context> tls;
  TimesCounter times;
  std::atomic<std::uint64_t> last_sequence{0};
  std::vector<std::unique_ptr<Worker>> workers;
  std::uint16_t port = 0;
};

struct Server::Worker {
  // Declared before `io` so that they outlive the coroutine frames `io` destroys.
  Shared* shared = nullptr;
  std::size_t index = 0;
  WorkerStats stats;
  LastRequestSlot last;
  std::uint64_t next_id = 0;  // response ids; only this worker's thread touches it
  asio::io_context io{1};
  tcp::acceptor acceptor{io};

  void Record(const HttpRequest& req, Endpoint endpoint) {
    std::uint64_t seq = shared->last_sequence.fetch_add(1, std::memory_order_relaxed) + 1;
    std::lock_guard lock(last.mutex);
    last.sequence = seq;
    last.endpoint = endpoint;
    last.method.assign(req.method);
    last.target.assign(req.target);
    last.body.assign(req.body);
    if (last.headers.size() < req.header_count) last.headers.resize(req.header_count);
    for (std::size_t i = 0; i < req.header_count; ++i) {
      last.headers[i].first.assign(req.headers[i].name);
      last.headers[i].second.assign(req.headers[i].value);
    }
    last.header_count = req.header_count;
  }
};

namespace {

using Worker = Server::Worker;
using Shared = Server::Shared;

void AppendCounter(std::string& out, std::string_view name, std::int64_t value, bool comma = true) {
  if (comma) out += ',';
  out += '"';
  out += name;
  out += "\":";
  out += std::to_string(value);
}

// GET /_stats. Fields:
//   requests_total       model-endpoint requests (introspection excluded), incl. 404s
//   requests{endpoint}   the same per Endpoint (replies.hpp ToString names)
//   connections_open     connections open now; connections_total accepted since /_reset
//   streams_started      streaming replies begun; streams_completed ended normally
//   streams_aborted      the client went away while a stream, a delayed reply or a stalled
//                        request was pending: how tests prove that a disconnect cancelled the
//                        upstream request
//   injected_errors, stalls, resets, cuts   directives acted out; faults: replies with a wire
//                        directive (directives.hpp) acted out; bad_requests: HTTP errors
//   metadata_tokens      tokens handed out as the GCE metadata server (see HandleMetadataToken)
std::string StatsJson(const Shared& shared) {
  std::array<std::int64_t, kEndpointCount> per{};
  std::int64_t total = 0, open = 0, accepted = 0, started = 0, completed = 0, aborted = 0,
               injected = 0, stalls = 0, resets = 0, cuts = 0, faults = 0, bad = 0, tokens = 0;
  auto get = [](const auto& c) {
    return static_cast<std::int64_t>(c.load(std::memory_order_relaxed));
  };
  for (const auto& w : shared.workers) {
    const WorkerStats& s = w->stats;
    total += get(s.requests_total);
    for (std::size_t i = 0; i < kEndpointCount; ++i)
      per[i] += get(s.requests[i]);
    open += get(s.connections_open);
    accepted += get(s.connections_total);
    started += get(s.streams_started);
    completed += get(s.streams_completed);
    aborted += get(s.aborted);
    injected += get(s.injected_errors);
    stalls += get(s.stalls);
    resets += get(s.resets);
    cuts += get(s.cuts);
    faults += get(s.faults);
    bad += get(s.bad_requests);
    tokens += get(s.metadata_tokens);
  }
  std::string out = "{";
  AppendCounter(out, "requests_total", total, false);
  out += R"(,"requests":{)";
  for (std::size_t i = 0; i < kEndpointCount; ++i) {
    AppendCounter(out, ToString(static_cast<Endpoint>(i)), per[i], i != 0);
  }
  out += '}';
  AppendCounter(out, "connections_open", open);
  AppendCounter(out, "connections_total", accepted);
  AppendCounter(out, "streams_started", started);
  AppendCounter(out, "streams_completed", completed);
  AppendCounter(out, "streams_aborted", aborted);
  AppendCounter(out, "injected_errors", injected);
  AppendCounter(out, "stalls", stalls);
  AppendCounter(out, "resets", resets);
  AppendCounter(out, "cuts", cuts);
  AppendCounter(out, "faults", faults);
  AppendCounter(out, "bad_requests", bad);
  AppendCounter(out, "metadata_tokens", tokens);
  out += "}";
  return out;
}

void AppendQuoted(std::string& out, std::string_view text) {
  out += '"';
  AppendJsonEscaped(out, text);
  out += '"';
}

// GET /_last_request: {"endpoint","method","target","headers":{lower-case name: value},
// "header_list":[[name, value], ...] (as received), "body": the raw body as a string}.
// Empty optional when no model request has arrived since start or /_reset.
std::optional<std::string> LastRequestJson(Shared& shared) {
  LastRequestSlot* newest = nullptr;
  std::uint64_t newest_seq = 0;
  std::vector<std::unique_lock<std::mutex>> locks;
  for (auto& w : shared.workers) {
    locks.emplace_back(w->last.mutex);
    if (w->last.sequence > newest_seq) {
      newest_seq = w->last.sequence;
      newest = &w->last;
    }
  }
  if (newest == nullptr) return std::nullopt;
  const LastRequestSlot& r = *newest;
  std::string out = R"({"endpoint":)";
  AppendQuoted(out, ToString(r.endpoint));
  out += R"(,"method":)";
  AppendQuoted(out, r.method);
  out += R"(,"target":)";
  AppendQuoted(out, r.target);
  out += R"(,"headers":{)";
  std::vector<bool> done(r.header_count, false);
  bool first = true;
  for (std::size_t i = 0; i < r.header_count; ++i) {
    if (done[i]) continue;
    std::string name = r.headers[i].first;
    for (char& c : name)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string value = r.headers[i].second;
    for (std::size_t j = i + 1; j < r.header_count; ++j) {
      if (EqualsIgnoreCase(r.headers[j].first, name)) {
        value += ", ";
        value += r.headers[j].second;
        done[j] = true;
      }
    }
    if (!first) out += ',';
    first = false;
    AppendQuoted(out, name);
    out += ':';
    AppendQuoted(out, value);
  }
  out += R"(},"header_list":[)";
  for (std::size_t i = 0; i < r.header_count; ++i) {
    if (i != 0) out += ',';
    out += '[';
    AppendQuoted(out, r.headers[i].first);
    out += ',';
    AppendQuoted(out, r.headers[i].second);
    out += ']';
  }
  out += R"(],"body":)";
  AppendQuoted(out, r.body);
  out += '}';
  return out;
}

void ResetState(Shared& shared) {
  shared.times.Clear();
  for (auto& w : shared.workers) {
    w->stats.Reset();
    std::lock_guard lock(w->last.mutex);
    w->last.sequence = 0;
  }
}

// The GCE metadata server's token endpoint, for Vertex AI providers pointed here with
// $GCE_METADATA_HOST: like the real one it wants `Metadata-Flavor: Google`.
constexpr std::string_view kMetadataTokenPath =
    "/computeMetadata/v1/instance/service-accounts/default/token";
void HandleMetadataToken(const HttpRequest& req, std::string_view token, Reply& reply) {
  const bool close = !req.keep_alive;
  if (req.method != "GET" || req.Header("metadata-flavor") != "Google") {
    BuildSimple(403, "text/plain", "Missing Metadata-Flavor:Google header.", close, reply);
    return;
  }
  std::string body = R"({"access_token":")";
  body += token;
  body += R"(","expires_in":3599,"token_type":"Bearer"})";
  BuildSimple(200, "application/json", body, close, reply);
}

// Answers /_stats, /_last_request and /_reset.
void HandleIntrospection(Shared& shared, const HttpRequest& req, Reply& reply) {
  const bool close = !req.keep_alive;
  constexpr std::string_view kJson = "application/json";
  if (req.path == "/_stats" && req.method == "GET") {
    BuildSimple(200, kJson, StatsJson(shared), close, reply);
  } else if (req.path == "/_last_request" && req.method == "GET") {
    auto json = LastRequestJson(shared);
    if (json) {
      BuildSimple(200, kJson, *json, close, reply);
    } else {
      BuildSimple(404, kJson, R"({"error":{"message":"no model request yet","type":"not_found"}})",
                  close, reply);
    }
  } else if (req.path == "/_reset" && req.method == "POST") {
    ResetState(shared);
    BuildSimple(200, kJson, R"({"reset":true})", close, reply);
  } else {
    BuildSimple(404, kJson,
                R"({"error":{"message":"unknown test upstream path","type":"not_found"}})", close,
                reply);
  }
}

// Waits until `deadline` while watching the connection, so that a client that goes away during
// a delay is noticed at once (and counted) instead of at the next write. Bytes that arrive
// meanwhile (a pipelined request) are kept. True when the delay passed, false when the peer
// closed or failed.
template <class Stream>
asio::awaitable<bool> WaitWatchingPeer(Stream& stream, asio::steady_timer& timer, ReadBuffer& in,
                                       Clock::time_point deadline) {
  for (;;) {
    timer.expires_at(deadline);
    asio::mutable_buffer spare = in.Spare();
    if (spare.size() == 0) {
      co_await timer.async_wait(kUseTuple);
      co_return true;
    }
    auto [order, timer_ec, read_ec, n] =
        co_await asio::experimental::make_parallel_group(
            timer.async_wait(asio::deferred), stream.async_read_some(spare, asio::deferred))
            .async_wait(asio::experimental::wait_for_one(), asio::use_awaitable);
    (void)timer_ec;
    in.Commit(n);
    if (read_ec && read_ec != asio::error::operation_aborted) co_return false;
    if (order[0] == 0 || Clock::now() >= deadline) co_return true;
  }
}

// A stalled request: read (and drop) whatever comes until the peer goes away.
template <class Stream>
asio::awaitable<void> WaitForPeerClose(Stream& stream) {
  std::array<char, 512> sink;
  for (;;) {
    auto [ec, n] = co_await stream.async_read_some(asio::buffer(sink), kUseTuple);
    if (ec) co_return;
  }
}

enum class StreamOutcome : std::uint8_t { kCompleted, kCut, kPeerGone };

// Sends a streaming reply: the head and events in one write when nothing paces them, else one
// write per event with the delays between; stops after `cut` content events.
template <class Stream>
asio::awaitable<StreamOutcome> SendStream(Stream& stream, asio::steady_timer& timer, ReadBuffer& in,
                                          const Reply& reply) {
  const Directives& d = reply.directives;
  std::size_t limit = reply.events.size();
  if (d.cut >= 0) {
    int content = 0;
    limit = 0;
    while (limit < reply.events.size()) {
      if (reply.events[limit].content) {
        if (content == d.cut) break;
        ++content;
      }
      ++limit;
    }
  }
  const bool cut = limit < reply.events.size();
  const std::size_t end = limit == 0 ? 0 : reply.events[limit - 1].end;
  const bool paced = d.first_byte_delay.count() > 0 || d.chunk_delay.count() > 0;
  if (!paced) {
    auto ec =
        co_await WriteAll(stream, {asio::buffer(reply.head), asio::buffer(reply.body.data(), end)});
    if (ec) co_return StreamOutcome::kPeerGone;
    co_return cut ? StreamOutcome::kCut : StreamOutcome::kCompleted;
  }
  {
    auto [ec, n] = co_await asio::async_write(stream, asio::buffer(reply.head), kUseTuple);
    if (ec) co_return StreamOutcome::kPeerGone;
  }
  if (d.first_byte_delay.count() > 0 &&
      !co_await WaitWatchingPeer(stream, timer, in, Clock::now() + d.first_byte_delay)) {
    co_return StreamOutcome::kPeerGone;
  }
  bool sent_content = false;
  for (std::size_t i = 0; i < limit; ++i) {
    const StreamEvent& e = reply.events[i];
    if (e.content && sent_content && d.chunk_delay.count() > 0 &&
        !co_await WaitWatchingPeer(stream, timer, in, Clock::now() + d.chunk_delay)) {
      co_return StreamOutcome::kPeerGone;
    }
    auto [ec, n] = co_await asio::async_write(
        stream, asio::buffer(reply.body.data() + e.begin, e.end - e.begin), kUseTuple);
    if (ec) co_return StreamOutcome::kPeerGone;
    sent_content = sent_content || e.content;
  }
  co_return cut ? StreamOutcome::kCut : StreamOutcome::kCompleted;
}

enum class FaultOutcome : std::uint8_t { kKeepGoing, kClosed, kPeerGone };

// Acts out a misbehaving reply (faults.hpp): sends what the wire directives ask for, one byte at
// a time with `drip`, then ends as they say (RST, stall, close, an appended response).
template <class Stream>
asio::awaitable<FaultOutcome> SendFaulty(Stream& stream, asio::steady_timer& timer, ReadBuffer& in,
                                         const Directives& d, const FaultyWire& wire,
                                         WorkerStats& stats) {
  std::string_view bytes = std::string_view(wire.bytes).substr(0, wire.stop);
  if (wire.padding > 0) {
    // The head, then the padding in 64 KiB chunks of spaces, then the rest.
    auto ec = co_await WriteAll(
        stream, Buffers2{asio::buffer(bytes.substr(0, wire.padding_at)), asio::const_buffer()});
    if (ec) co_return FaultOutcome::kPeerGone;
    constexpr std::size_t kChunk = 64 << 10;
    std::string chunk = "10000\r\n" + std::string(kChunk, ' ') + "\r\n";
    for (std::uint64_t sent = 0; sent < wire.padding; sent += kChunk) {
      auto [wec, n] = co_await asio::async_write(stream, asio::buffer(chunk), kUseTuple);
      if (wec) co_return FaultOutcome::kPeerGone;
    }
    bytes.remove_prefix(wire.padding_at);
  }
  if (d.drip.count() > 0) {
    for (std::size_t i = 0; i < bytes.size(); ++i) {
      auto [ec, n] =
          co_await asio::async_write(stream, asio::buffer(bytes.data() + i, 1), kUseTuple);
      if (ec) co_return FaultOutcome::kPeerGone;
      if (i + 1 < bytes.size() &&
          !co_await WaitWatchingPeer(stream, timer, in, Clock::now() + d.drip)) {
        co_return FaultOutcome::kPeerGone;
      }
    }
  } else if (!bytes.empty()) {
    auto ec = co_await WriteAll(stream, Buffers2{asio::buffer(bytes), asio::const_buffer()});
    if (ec) co_return FaultOutcome::kPeerGone;
  }
  if (wire.stop < wire.bytes.size()) {
    if (d.reset_at != FaultPoint::kNone) {
      Bump(stats.resets);
      CloseAbruptly(stream);
      co_return FaultOutcome::kClosed;
    }
    Bump(stats.stalls);
    co_await WaitForPeerClose(stream);
    co_return FaultOutcome::kPeerGone;
  }
  if (wire.close_after) {
    CloseGracefully(stream);
    co_return FaultOutcome::kClosed;
  }
  if (!wire.appended.empty()) {
    if (!co_await WaitWatchingPeer(stream, timer, in, Clock::now() + d.append_delay)) {
      co_return FaultOutcome::kPeerGone;
    }
    auto ec =
        co_await WriteAll(stream, Buffers2{asio::buffer(wire.appended), asio::const_buffer()});
    if (ec) co_return FaultOutcome::kPeerGone;
  }
  co_return FaultOutcome::kKeepGoing;
}

// Everything a connection keeps between requests, allocated once per connection (the parsed
// request alone holds a hundred header slots).
struct Connection {
  ReadBuffer in;
  HttpRequest request;
  std::string chunked_body;
  Reply reply;
  ReplyContext context;
  std::string wire;   // head and body of a small reply, back to back
  FaultyWire faulty;  // a misbehaving reply's bytes
  // The request `reply` answers, while it is reusable (see Reply::reusable).
  std::string last_method;
  std::string last_target;
  std::string last_body;
  bool last_keep_alive = false;
  bool last_http10 = false;

  bool SameAsLast(const HttpRequest& req) const {
    return req.body == last_body && req.target == last_target && req.method == last_method &&
           req.keep_alive == last_keep_alive && req.http10 == last_http10;
  }
  void RememberIfReusable(const HttpRequest& req) {
    if (!reply.reusable) return;
    last_method.assign(req.method);
    last_target.assign(req.target);
    last_body.assign(req.body);
    last_keep_alive = req.keep_alive;
    last_http10 = req.http10;
  }
};

struct OpenConnection {
  explicit OpenConnection(WorkerStats& s) : stats(s) {
    stats.connections_open.fetch_add(1, std::memory_order_relaxed);
  }
  ~OpenConnection() { stats.connections_open.fetch_sub(1, std::memory_order_relaxed); }
  OpenConnection(const OpenConnection&) = delete;
  OpenConnection& operator=(const OpenConnection&) = delete;
  WorkerStats& stats;
};

int StatusFor(ParseStatus status) {
  switch (status) {
    case ParseStatus::kHeadTooLarge:
      return 431;
    case ParseStatus::kBodyTooLarge:
      return 413;
    case ParseStatus::kNotImplemented:
      return 501;
    default:
      return 400;
  }
}

// One connection, request after request. `worker` outlives the coroutine: the io_context that
// runs (and on shutdown destroys) it is a member of the worker.
template <class Stream>
asio::awaitable<void> Session(Worker& worker, Stream stream) {
  WorkerStats& stats = worker.stats;
  OpenConnection open(stats);
  if constexpr (!std::is_same_v<Stream, tcp::socket>) {
    auto [ec] = co_await stream.async_handshake(ssl::stream_base::server, kUseTuple);
    if (ec) co_return;
  }
  if constexpr (std::is_same_v<Stream, tcp::socket>) {
    // Lets WriteNow fail with would_block instead of blocking; async operations are unaffected.
    boost::system::error_code ignored;
    stream.non_blocking(true, ignored);
  }
  auto conn = std::make_unique<Connection>();
  conn->context.defaults = &worker.shared->options.defaults;
  conn->context.times = &worker.shared->times;
  conn->context.injected_errors = &stats.injected_errors;
  conn->context.worker_index = worker.index;
  conn->context.id_counter = &worker.next_id;
  asio::steady_timer timer(stream.get_executor());
  Reply& reply = conn->reply;
  HttpRequest& req = conn->request;

  for (;;) {
    ParseResult parsed;
    bool continue_sent = false;
    for (;;) {
      parsed = ParseRequest(conn->in.Data(), req, conn->chunked_body);
      if (parsed.status != ParseStatus::kNeedMore) break;
      if (parsed.wants_continue && !continue_sent) {
        continue_sent = true;
        auto [ec, n] = co_await asio::async_write(
            stream, asio::buffer(std::string_view("HTTP/1.1 100 Continue\r\n\r\n")), kUseTuple);
        if (ec) co_return;
      }
      auto [ec, n] = co_await stream.async_read_some(conn->in.Prepare(parsed.expected), kUseTuple);
      if (ec) co_return;  // the client closed between requests: the normal end
      conn->in.Commit(n);
    }

    if (parsed.status != ParseStatus::kComplete) {
      Bump(stats.bad_requests);
      int status = StatusFor(parsed.status);
      std::string body = R"({"error":{"message":"test upstream: )";
      body += ReasonPhrase(status);
      body += R"(","type":"invalid_request_error","param":null,"code":null}})";
      BuildSimple(status, "application/json", body, true, reply);
      co_await asio::async_write(
          stream, std::array{asio::buffer(reply.head), asio::buffer(reply.body)}, kUseTuple);
      CloseGracefully(stream);
      co_return;
    }

    if (req.path.size() > 2 && req.path[1] == '_') {
      HandleIntrospection(*worker.shared, req, reply);
    } else if (req.path == kMetadataTokenPath) {
      if (req.Header("metadata-flavor") == "Google") Bump(stats.metadata_tokens);
      HandleMetadataToken(req, worker.shared->options.metadata_token, reply);
    } else {
      Route route = RouteRequest(req);
      Bump(stats.requests_total);
      Bump(stats.requests[static_cast<std::size_t>(route.endpoint)]);
      if (route.endpoint == Endpoint::kOther || !route.method_allowed) {
        BuildNotFound(route, req, reply);
      } else {
        worker.Record(req, route.endpoint);
        if (reply.reusable && conn->SameAsLast(req)) {
          RefreshReply(conn->context, reply);
        } else {
          BuildReply(route, req, conn->context, reply);
          conn->RememberIfReusable(req);
        }
      }
    }
    // The reply owns its bytes: the request's views into the buffer may go.
    conn->in.Consume(parsed.consumed);

    const Directives& d = reply.directives;
    if (reply.action == Action::kStall) {
      Bump(stats.stalls);
      co_await WaitForPeerClose(stream);
      Bump(stats.aborted);
      co_return;
    }
    if (reply.action == Action::kReset) {
      Bump(stats.resets);
      CloseAbruptly(stream);
      co_return;
    }
    auto delay = d.latency;
    if (!reply.stream) delay += d.first_byte_delay;
    if (delay.count() > 0 &&
        !co_await WaitWatchingPeer(stream, timer, conn->in, Clock::now() + delay)) {
      Bump(stats.aborted);
      co_return;
    }
    if (d.HasWireFault()) {
      Bump(stats.faults);
      BuildFaultyWire(reply, conn->faulty);
      FaultOutcome outcome = co_await SendFaulty(stream, timer, conn->in, d, conn->faulty, stats);
      if (outcome == FaultOutcome::kPeerGone) Bump(stats.aborted);
      if (outcome != FaultOutcome::kKeepGoing) co_return;
    } else if (reply.stream) {
      Bump(stats.streams_started);
      StreamOutcome outcome = co_await SendStream(stream, timer, conn->in, reply);
      if (outcome == StreamOutcome::kPeerGone) {
        Bump(stats.aborted);
        co_return;
      }
      if (outcome == StreamOutcome::kCut) {
        Bump(stats.cuts);
        CloseGracefully(stream);
        co_return;
      }
      Bump(stats.streams_completed);
    } else {
      // `cut` on a plain reply: the full Content-Length is promised, half the body is sent.
      const std::size_t body_size = d.cut >= 0 ? reply.body.size() / 2 : reply.body.size();
      boost::system::error_code ec;
      if (reply.head.size() + body_size <= kCoalesceLimit) {
        // The hot path, inline rather than WriteAll (a nested coroutine costs a frame), and one
        // contiguous buffer: send(2) is cheaper in the kernel than sendmsg(2) with two iovecs.
        std::string& wire = conn->wire;
        wire.assign(reply.head).append(reply.body.data(), body_size);
        std::size_t n = WriteNow(stream, asio::buffer(wire), ec);
        if (!ec && n < wire.size()) {
          auto [write_ec, written] =
              co_await asio::async_write(stream, asio::buffer(wire) + n, kUseTuple);
          ec = write_ec;
        }
      } else {
        ec = co_await WriteAll(
            stream, Buffers2{asio::buffer(reply.head), asio::buffer(reply.body.data(), body_size)});
      }
      if (ec) {
        Bump(stats.aborted);
        co_return;
      }
      if (d.cut >= 0) {
        Bump(stats.cuts);
        CloseGracefully(stream);
        co_return;
      }
    }
    if (reply.close) {
      CloseGracefully(stream);
      co_return;
    }
  }
}

void LogSessionFailure(std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "test upstream: connection failed: %s\n", ex.what());
  }
}

asio::awaitable<void> AcceptLoop(Worker& worker) {
  for (;;) {
    auto [ec, socket] = co_await worker.acceptor.async_accept(kUseTuple);
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      // Out of descriptors or the like: back off briefly rather than spin.
      asio::steady_timer pause(worker.io, std::chrono::milliseconds(10));
      co_await pause.async_wait(kUseTuple);
      continue;
    }
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    Bump(worker.stats.connections_total);
    if (worker.shared->tls) {
      asio::co_spawn(
          worker.io,
          Session(worker, ssl::stream<tcp::socket>(std::move(socket), *worker.shared->tls)),
          LogSessionFailure);
    } else {
      asio::co_spawn(worker.io, Session(worker, std::move(socket)), LogSessionFailure);
    }
  }
}

void Listen(Worker& worker, const tcp::endpoint& endpoint, bool reuse_port) {
  using ReusePort = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;
  tcp::acceptor& a = worker.acceptor;
  a.open(endpoint.protocol());
  a.set_option(asio::socket_base::reuse_address(true));
  if (reuse_port) a.set_option(ReusePort(true));
  a.bind(endpoint);
  a.listen(asio::socket_base::max_listen_connections);
}

}  // namespace

Server::Server(ServerOptions options) : shared_(std::make_unique<Shared>()) {
  shared_->options = std::move(options);
  const ServerOptions& o = shared_->options;
  if (!o.tls_cert_file.empty() || !o.tls_key_file.empty()) {
    if (o.tls_cert_file.empty() || o.tls_key_file.empty())
      throw std::runtime_error("--tls-cert and --tls-key go together");
    shared_->tls = std::make_unique<ssl::context>(ssl::context::tls_server);
    shared_->tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                              ssl::context::no_sslv3);
    shared_->tls->use_certificate_chain_file(o.tls_cert_file);
    shared_->tls->use_private_key_file(o.tls_key_file, ssl::context::pem);
  }
  const int threads = std::max(1, o.threads);
  tcp::endpoint endpoint(asio::ip::make_address(o.host), o.port);
  for (int i = 0; i < threads; ++i) {
    auto worker = std::make_unique<Worker>();
    worker->shared = shared_.get();
    worker->index = static_cast<std::size_t>(i);
    // Worker 0 picks the port (port 0 = a free one); the others join it with SO_REUSEPORT.
    Listen(*worker, endpoint, threads > 1);
    if (i == 0) endpoint.port(worker->acceptor.local_endpoint().port());
    shared_->workers.push_back(std::move(worker));
  }
  shared_->port = endpoint.port();
}

Server::~Server() {
  Stop();
}

std::string Server::address() const {
  const std::string& host = shared_->options.host;
  std::string out = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return out + ":" + std::to_string(shared_->port);
}

void Server::Start() {
  for (auto& w : shared_->workers) {
    Worker* worker = w.get();
    asio::co_spawn(worker->io, AcceptLoop(*worker), LogSessionFailure);
    threads_.emplace_back([worker] { worker->io.run(); });
  }
}

void Server::Stop() {
  for (auto& w : shared_->workers)
    w->io.stop();
  for (auto& t : threads_)
    t.join();
  threads_.clear();
}

}  // namespace orchestra::testing::upstream
