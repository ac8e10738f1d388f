#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "config/loader.hpp"
#include "net/client.hpp"
#include "net/sse.hpp"
#include "providers/provider.hpp"

// What every provider that calls an HTTP upstream shares: its origin in the connection pools,
// its key and extra headers, and the mapping of transport and HTTP failures to ProviderError.
namespace orchestra::providers {

// Turns the server-sent events of one upstream stream into canonical chunks: the part of a
// stream that differs per wire format. HttpProvider::Stream() does the rest.
class EventDecoder {
 public:
  virtual ~EventDecoder() = default;
  // The chunks of one event, written into out[0..n) (elements are reused from one event to the
  // next, so that a forwarded chunk's text keeps its buffer); returns n. An error is what the
  // upstream reported mid-stream (`upstream_status` set, or 502 assumed) or, with
  // `malformed` set, an event that could not be read.
  struct Failure {
    Error error;
    bool malformed = false;
  };
  virtual boost::system::result<std::size_t, Failure> Feed(const net::SseEvent& event,
                                                           std::vector<wire::ChatChunk>& out) = 0;
  // The upstream's end marker was seen: nothing after it is read.
  virtual bool done() const = 0;
  // How the end of a whole stream is named in errors ("[DONE]").
  virtual std::string_view end_marker() const { return "its end"; }
  // At the end of the body: whether the stream was whole (else it was cut), and in `out`
  // (emptied first) a last chunk to emit (the usage chunk of a translated stream), if any.
  virtual bool Complete(std::vector<wire::ChatChunk>& out) = 0;
  virtual wire::Usage usage() const = 0;
};

// The EventDecoder of a translating codec's stream decoder, which offers
// `Result<std::vector<wire::ChatChunk>> Feed(data)` (or `Feed(event name, data)`), `finished()`,
// `Finish()` (a last chunk, if any) and `usage()`. With `kEndsAtMarker` the stream ends at the
// decoder's own end event (Anthropic's message_stop); without, at the end of the body (Gemini).
template <class Decoder, bool kEndsAtMarker>
class TranslatedEvents final : public EventDecoder {
 public:
  template <class... Args>
  explicit TranslatedEvents(Args&&... args) : decoder_(std::forward<Args>(args)...) {}

  boost::system::result<std::size_t, Failure> Feed(const net::SseEvent& event,
                                                   std::vector<wire::ChatChunk>& out) override {
    auto chunks = [&] {
      if constexpr (requires { decoder_.Feed(event.event, event.data); }) {
        return decoder_.Feed(event.event, event.data);
      } else {
        return decoder_.Feed(event.data);
      }
    }();
    if (!chunks) return Failure{chunks.error(), false};
    out = std::move(*chunks);
    return out.size();
  }
  bool done() const override { return kEndsAtMarker && decoder_.finished(); }
  bool Complete(std::vector<wire::ChatChunk>& out) override {
    out.clear();
    if (!decoder_.finished()) return false;
    if (auto last = decoder_.Finish()) out.push_back(std::move(*last));
    return true;
  }
  wire::Usage usage() const override { return decoder_.usage(); }

 private:
  Decoder decoder_;
};

class HttpProvider : public Provider {
 public:
  // Reads the provider key from its environment variable or file and registers the origin.
  // Throws std::runtime_error naming the provider when the key or base_url is unusable.
  HttpProvider(const config::ProviderConfig& config, net::Upstreams& upstreams,
               const config::EnvLookup& env);

  const std::string& name() const override { return config_.name; }
  config::ProviderType type() const override { return config_.type; }
  std::string_view UnusableReason() const override { return missing_key_; }
  boost::asio::awaitable<Result<std::string>> Warmup(int worker) override;

 protected:
  // A request to `target` (absolute path) with the attempt's deadlines and the header lines
  // every request carries (authorisation, configured headers, trace context, request id).
  // `target` and the options' views must outlive the request.
  net::OutgoingRequest NewRequest(std::string_view target, const CallOptions& options) const;

  // The body of a 2xx answer, or the attempt's failure: a transport error, an HTTP error
  // status with the upstream's explanation (secrets redacted), or a 2xx whose body is not a
  // JSON object (a proxy's or captive portal's HTML page is the upstream's failure).
  ProviderResult<std::string> Answer(Result<net::IncomingResponse>&& sent) const;

  // One stream, whatever the wire format: opens `out`, turns an error status into a failure,
  // feeds the events through `decoder` and the chunks to `sink`, and tells a cut stream, a
  // mid-stream error and a client that went away apart. `out` must stay valid until it returns.
  boost::asio::awaitable<ProviderResult<StreamSummary>> Stream(const net::OutgoingRequest& out,
                                                               const CallOptions& options,
                                                               EventDecoder& decoder,
                                                               ChunkSink& sink);

  // A transport failure (net::Client's Error) as a ProviderError.
  static ProviderError FromNet(const Error& error);
  // An HTTP error status from the upstream; `message` is the upstream's own explanation.
  ProviderError FromStatus(const net::ResponseHead& head, std::string_view message) const;
  // Set when the provider cannot be used at all (its key is missing): every call returns it.
  std::optional<ProviderError> Unusable() const;
  // A request the adapter cannot translate: the client's error, never retried.
  static ProviderError Invalid(Error error);
  // The client went away while a stream was being read.
  static ProviderError ClientGone();
  // Stream's pieces that need not be in its coroutine frame (which must stay under the 1,020
  // bytes Asio recycles): an error status's answer, read to a bound; a stream that ended before
  // `decoder` saw its end; a mid-stream failure.
  boost::asio::awaitable<ProviderError> StatusFailure(net::ResponseStream& stream) const;
  ProviderError StreamCut(const EventDecoder& decoder) const;
  ProviderError StreamFailed(const EventDecoder::Failure& failure) const;
  // An answer the adapter could not read.
  ProviderError Unreadable(const Error& error) const;
  // Upstream text on its way to a client, with this provider's secrets (its key, the values of
  // its configured headers) and anything shaped like a provider key replaced by "[redacted]".
  std::string Redacted(std::string_view text) const;
  // "Authorization: Bearer <key>" or another scheme's line; set by the subclass.
  void SetAuthLine(std::string line) { auth_line_ = std::move(line); }
  net::Client& client(const CallOptions& options) const {
    return upstreams_.ForWorker(options.worker);
  }

  const config::ProviderConfig& config() const { return config_; }
  const std::string& api_key() const { return api_key_; }
  net::OriginId origin_id() const { return origin_; }
  const net::Origin& origin() const { return upstreams_.origin(origin_); }

 private:
  config::ProviderConfig config_;
  net::Upstreams& upstreams_;
  net::OriginId origin_ = 0;
  std::string api_key_;
  std::string missing_key_;
  std::string auth_line_;                  // why the key could not be read; empty when it could
  std::vector<std::string> header_lines_;  // "Name: value" for config_.headers
  std::vector<std::string> secrets_;       // what Redacted() hides
};

// Reads a secret from an environment variable or a file (trailing whitespace trimmed).
// Empty when neither is configured. Throws std::runtime_error when configured but unreadable.
std::string ReadSecret(std::string_view what, const std::string& env_name,
                       const std::string& file_path, const config::EnvLookup& env);

// Retry-After in milliseconds (delta-seconds or an HTTP date), or -1.
int ParseRetryAfterMs(std::string_view value);

}  // namespace orchestra::providers
