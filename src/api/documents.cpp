#include "api/documents.hpp"

#include <array>
#include <charconv>
#include <cmath>
#include <limits>
#include <optional>
#include <utility>
#include <vector>

#include <boost/json.hpp>

#include "api/context.hpp"
#include "api/json_body.hpp"
#include "api/query.hpp"
#include "api/request_info.hpp"
#include "documents/multipart.hpp"

namespace orchestra::api {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using documents::Service;

constexpr std::size_t kDefaultListLimit = 100;
constexpr std::size_t kMaxListLimit = 1000;

template <class T>
bool Failed(RequestContext& ctx, const Result<T>& r) {
  if (r) return false;
  ctx.Fail(r.error());
  return true;
}

Error Invalid(std::string message, std::string_view param) {
  return Error(ErrorCode::kInvalidRequest, std::move(message), std::string(param));
}

// Stored metadata is a JSON object serialised by the service: parsed back for the response.
json::value MetadataJson(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  return ec ? json::value(json::object()) : v;
}

json::object DocumentJson(const documents::DocumentRecord& d) {
  json::object o;
  o["id"] = d.id;
  o["title"] = d.title;
  o["source"] = d.source;
  o["created_at"] = d.created_at;
  o["updated_at"] = d.updated_at;
  o["metadata"] = MetadataJson(d.metadata);
  o["content_type"] = documents::ToString(d.content_type);
  o["chunk_count"] = d.chunk_count;
  o["chunking"] = d.chunking;
  o["embedding_model"] = d.embedding_model;
  o["bytes"] = d.bytes;
  return o;
}

// A whole number in [min, max] from a JSON member; nullopt when absent.
Result<std::optional<std::size_t>> Whole(const JsonBody& body, std::string_view name,
                                         std::size_t min, std::size_t max) {
  auto v = body.OptionalNumber(name);
  if (!v) return v.error();
  if (!*v) return std::optional<std::size_t>();
  if (!(**v >= static_cast<double>(min) && **v <= static_cast<double>(max)) ||
      std::floor(**v) != **v) {
    return Invalid(std::string(name) + " must be a whole number from " + std::to_string(min) +
                       " to " + std::to_string(max),
                   name);
  }
  return std::optional<std::size_t>(static_cast<std::size_t>(**v));
}

Result<documents::ChunkStrategy> StrategyOf(std::string_view name, std::string_view param) {
  auto s = documents::ParseChunkStrategy(name);
  if (!s) {
    return Invalid("unknown chunking strategy '" + std::string(name.substr(0, 64)) +
                       "'; use paragraph, sentence, tokens or markdown_headings",
                   param);
  }
  return *s;
}

// `chunking` ({strategy, size, overlap}) and AI Orchestra's flat `chunking_strategy`.
Result<documents::ChunkingRequest> ChunkingOf(const JsonBody& body) {
  documents::ChunkingRequest out;
  auto flat = body.OptionalString("chunking_strategy");
  if (!flat) return flat.error();
  if (*flat) {
    auto s = StrategyOf(**flat, "chunking_strategy");
    if (!s) return s.error();
    out.strategy = *s;
  }
  auto object = body.OptionalObject("chunking");
  if (!object) return object.error();
  if (!*object) return out;
  boost::system::error_code ec;
  json::value v = json::parse(**object, ec);
  if (ec || !v.is_object()) return Invalid("chunking must be a JSON object", "chunking");
  for (const auto& [key, value] : v.as_object()) {
    if (key == "strategy") {
      if (!value.is_string()) return Invalid("chunking.strategy must be a string", "chunking");
      auto s = StrategyOf(value.as_string(), "chunking");
      if (!s) return s.error();
      if (out.strategy && *out.strategy != *s) {
        return Invalid("give chunking.strategy or chunking_strategy, not both", "chunking");
      }
      out.strategy = *s;
    } else if (key == "size" || key == "overlap") {
      const auto n = value.if_int64();
      const std::int64_t limit = 65'536;
      if (n == nullptr || *n < (key == "size" ? 1 : 0) || *n > limit) {
        return Invalid("chunking." + std::string(key) + " must be a whole number from " +
                           (key == "size" ? "1" : "0") + " to " + std::to_string(limit),
                       "chunking");
      }
      (key == "size" ? out.size : out.overlap) = static_cast<std::size_t>(*n);
    } else {
      return Invalid("unknown member chunking." + std::string(key.substr(0, 64)), "chunking");
    }
  }
  return out;
}

void ReplyIngested(RequestContext& ctx, const documents::IngestResult& r) {
  json::object out;
  out["document_id"] = r.document.id;
  out["chunk_count"] = r.document.chunk_count;
  out["replaced"] = r.replaced;
  out["embedding_model"] = r.document.embedding_model;
  out["document_metadata"] = DocumentJson(r.document);
  ctx.served = r.served;
  ctx.Json(json::serialize(out));
}

// The fields POST /documents and /documents/process share.
Result<void> ReadCommon(const JsonBody& body, documents::IngestRequest& request) {
  auto title = body.OptionalString("title");
  auto source = body.OptionalString("source");
  auto type = body.OptionalString("content_type");
  auto id = body.OptionalString("document_id");
  auto metadata = body.OptionalObject("metadata");
  auto model = body.OptionalString("embedding_model");
  auto chunking = ChunkingOf(body);
  for (const Result<std::optional<std::string>>* r : {&title, &source, &type, &id, &model}) {
    if (!*r) return r->error();
  }
  if (!metadata) return metadata.error();
  if (!chunking) return chunking.error();
  if (*type) {
    auto t = documents::ParseContentType(**type);
    if (!t) return Invalid("content_type must be text, markdown or html", "content_type");
    request.content_type = *t;
  }
  request.title = title->value_or("");
  if (*source) request.source = **source;
  request.document_id = id->value_or("");
  if (*metadata) request.metadata = std::string(**metadata);
  request.embedding_model = model->value_or("");
  request.chunking = *chunking;
  return {};
}

asio::awaitable<void> Ingest(Service& service, RequestContext& ctx,
                             documents::IngestRequest request) {
  std::array<char, 55> trace;
  auto result = co_await service.Ingest(std::string(ctx.tenant()), std::move(request),
                                        InfoFor(ctx, ctx.trace.Traceparent(trace)));
  if (Failed(ctx, result)) co_return;
  ReplyIngested(ctx, *result);
}

asio::awaitable<void> Create(Service& service, RequestContext& ctx) {
  auto body = JsonBody::Parse(
      ctx.request.body(), {"content", "title", "source", "content_type", "document_id", "metadata",
                           "chunking", "chunking_strategy", "embedding_model"});
  if (Failed(ctx, body)) co_return;
  auto content = body->RequiredString("content");
  if (Failed(ctx, content)) co_return;
  documents::IngestRequest request;
  if (Failed(ctx, ReadCommon(*body, request))) co_return;
  request.content = std::move(*content);
  co_await Ingest(service, ctx, std::move(request));
}

asio::awaitable<void> Process(Service& service, RequestContext& ctx) {
  auto body = JsonBody::Parse(ctx.request.body(),
                              {"file_path", "title", "source", "content_type", "document_id",
                               "metadata", "chunking", "chunking_strategy", "embedding_model"});
  if (Failed(ctx, body)) co_return;
  auto path = body->RequiredString("file_path");
  if (Failed(ctx, path)) co_return;
  documents::IngestRequest request;
  if (Failed(ctx, ReadCommon(*body, request))) co_return;
  // The path first: a path outside the import directory is 403 whatever its name says.
  auto bytes = co_await service.ReadImport(*path);
  if (Failed(ctx, bytes)) co_return;
  if (!body->Raw("content_type")) {
    auto kind = documents::ContentTypeOf("", *path);
    if (!kind) {
      Error e = kind.error();
      e.param = "file_path";
      ctx.Fail(e);
      co_return;
    }
    request.content_type = *kind;
  }
  request.content = std::move(*bytes);
  if (request.source.empty()) request.source = *path;
  co_await Ingest(service, ctx, std::move(request));
}

asio::awaitable<void> Upload(Service& service, RequestContext& ctx) {
  auto boundary = documents::MultipartBoundary(ctx.request.Header(http::field::content_type));
  if (Failed(ctx, boundary)) co_return;
  documents::MultipartLimits limits;
  limits.max_parts = 16;
  limits.max_part_bytes = static_cast<std::size_t>(service.config().max_bytes);
  auto parts = documents::ParseMultipart(ctx.request.body(), *boundary, limits);
  if (Failed(ctx, parts)) co_return;
  const documents::MultipartPart* file = documents::FindPart(*parts, "file");
  if (file == nullptr) {
    ctx.Fail(Invalid("the form has no 'file' part", "file"));
    co_return;
  }
  for (const documents::MultipartPart& p : *parts) {
    static constexpr std::array kKnown{"file",   "document_id",   "chunking_strategy",
                                       "title",  "metadata_json", "metadata",
                                       "source", "content_type",  "embedding_model"};
    bool known = false;
    for (const char* k : kKnown)
      known = known || p.name == k;
    if (!known) {
      ctx.Fail(Invalid("unknown form field '" + p.name.substr(0, 64) + "'", p.name.substr(0, 64)));
      co_return;
    }
  }
  auto field = [&](std::string_view name) -> std::optional<std::string> {
    const documents::MultipartPart* p = documents::FindPart(*parts, name);
    if (p == nullptr) return std::nullopt;
    return std::string(p->content);
  };
  documents::IngestRequest request;
  auto kind = documents::ContentTypeOf(file->content_type, file->filename.value_or(""));
  if (auto type = field("content_type")) {
    auto t = documents::ParseContentType(*type);
    if (!t) {
      ctx.Fail(Invalid("content_type must be text, markdown or html", "content_type"));
      co_return;
    }
    request.content_type = *t;
  } else if (!kind) {
    Error e = kind.error();
    e.param = "file";
    ctx.Fail(e);
    co_return;
  } else {
    request.content_type = *kind;
  }
  if (auto s = field("chunking_strategy")) {
    auto strategy = StrategyOf(*s, "chunking_strategy");
    if (Failed(ctx, strategy)) co_return;
    request.chunking.strategy = *strategy;
  }
  auto metadata = field("metadata_json");
  if (!metadata) metadata = field("metadata");
  if (metadata && !metadata->empty()) request.metadata = std::move(*metadata);
  request.document_id = field("document_id").value_or("");
  request.title = field("title").value_or("");
  request.source = field("source").value_or(file->filename.value_or(""));
  request.embedding_model = field("embedding_model").value_or("");
  request.content = std::string(file->content);
  co_await Ingest(service, ctx, std::move(request));
}

// offset and limit from the query string (whole numbers; anything else is a 400).
Result<std::pair<std::size_t, std::size_t>> Paging(std::string_view query) {
  static constexpr std::string_view kNames[] = {"offset", "limit"};
  auto params = QueryParams::Parse(query, kNames);
  if (!params) return params.error();
  auto offset = params->Integer("offset", 0, 0, std::numeric_limits<std::int64_t>::max());
  if (!offset) return offset.error();
  auto limit = params->Integer("limit", kDefaultListLimit, 1, kMaxListLimit);
  if (!limit) return limit.error();
  return std::pair{static_cast<std::size_t>(*offset), static_cast<std::size_t>(*limit)};
}

asio::awaitable<void> List(Service& service, RequestContext& ctx) {
  auto paging = Paging(ctx.request.query);
  if (Failed(ctx, paging)) co_return;
  auto page = co_await service.List(std::string(ctx.tenant()), paging->first, paging->second);
  if (Failed(ctx, page)) co_return;
  json::array docs;
  for (const documents::DocumentRecord& d : page->documents)
    docs.push_back(DocumentJson(d));
  json::object out;
  out["documents"] = std::move(docs);
  out["total_count"] = page->total_count;
  out["offset"] = paging->first;
  out["limit"] = paging->second;
  ctx.Json(json::serialize(out));
}

asio::awaitable<void> Get(Service& service, RequestContext& ctx) {
  auto doc = co_await service.Get(std::string(ctx.tenant()), std::string(ctx.Param("id")));
  if (Failed(ctx, doc)) co_return;
  ctx.Json(json::serialize(DocumentJson(*doc)));
}

asio::awaitable<void> Delete(Service& service, RequestContext& ctx) {
  const std::string id(ctx.Param("id"));
  auto done = co_await service.Delete(std::string(ctx.tenant()), id);
  if (Failed(ctx, done)) co_return;
  json::object out;
  out["success"] = true;
  out["deleted"] = true;
  out["document_id"] = id;
  ctx.Json(json::serialize(out));
}

asio::awaitable<void> Search(Service& service, RequestContext& ctx) {
  auto body = JsonBody::Parse(
      ctx.request.body(),
      {"query", "limit", "score_threshold", "document_id", "metadata", "mode", "embedding_model"});
  if (Failed(ctx, body)) co_return;
  documents::SearchRequest request;
  auto query = body->RequiredString("query");
  auto options = ReadSearchOptions(*body, request);
  auto model = body->OptionalString("embedding_model");
  if (Failed(ctx, query) || Failed(ctx, options) || Failed(ctx, model)) co_return;
  request.query = std::move(*query);
  request.embedding_model = model->value_or("");
  std::array<char, 55> trace;
  auto result = co_await service.Search(std::string(ctx.tenant()), request,
                                        InfoFor(ctx, ctx.trace.Traceparent(trace)));
  if (Failed(ctx, result)) co_return;
  json::array results;
  for (const documents::Hit& h : result->results)
    results.push_back(HitJson(h));
  json::object out;
  out["results"] = std::move(results);
  out["query"] = request.query;
  out["mode"] = documents::ToString(request.mode);
  out["embedding_model"] = result->embedding_model;
  ctx.served = result->served;
  ctx.Json(json::serialize(out));
}

}  // namespace

Result<void> ReadSearchOptions(const JsonBody& body, documents::SearchRequest& request) {
  auto limit = Whole(body, "limit", 1, documents::kMaxSearchLimit);
  auto threshold = body.OptionalNumber("score_threshold");
  auto id = body.OptionalString("document_id");
  auto metadata = body.OptionalObject("metadata");
  auto mode = body.OptionalString("mode");
  if (!limit) return limit.error();
  if (!threshold) return threshold.error();
  if (!id) return id.error();
  if (!metadata) return metadata.error();
  if (!mode) return mode.error();
  if (*threshold && !(**threshold >= -1 && **threshold <= 1)) {
    return Invalid("score_threshold must be between -1 and 1", "score_threshold");
  }
  if (*mode) {
    auto m = documents::ParseSearchMode(**mode);
    if (!m) return Invalid("mode must be hybrid, vector or keyword", "mode");
    request.mode = *m;
  }
  if (*metadata) {
    json::value v = json::parse(**metadata);  // the scanner validated it
    for (const auto& [key, value] : v.as_object())
      request.metadata.emplace_back(std::string(key), value);
  }
  if (*limit) request.limit = **limit;
  if (*threshold) request.score_threshold = *threshold;
  if (*id) request.document_id = std::move(*id);
  return {};
}

json::array Citations(const std::vector<documents::Hit>& hits) {
  json::array out;
  out.reserve(hits.size());
  for (const documents::Hit& h : hits)
    out.emplace_back(h.id);
  return out;
}

json::object HitJson(const documents::Hit& h) {
  json::object o;
  o["id"] = h.id;
  o["document_id"] = h.document_id;
  o["content"] = h.content;
  o["metadata"] = MetadataJson(h.metadata);
  o["document_title"] = h.document_title;
  o["document_source"] = h.document_source;
  if (h.similarity) {
    o["similarity"] = *h.similarity;
  } else {
    o["similarity"] = nullptr;
  }
  o["sequence_number"] = h.sequence;
  o["score"] = h.score;
  if (!h.heading_path.empty()) {
    json::array path;
    for (const std::string& s : h.heading_path)
      path.emplace_back(s);
    o["heading_path"] = std::move(path);
  }
  return o;
}

void AddDocumentRoutes(Router& router, Service& service) {
  router.Add(http::verb::post, "/documents",
             [&service](RequestContext& ctx) { return Create(service, ctx); });
  router.Add(http::verb::post, "/documents/upload",
             [&service](RequestContext& ctx) { return Upload(service, ctx); });
  router.Add(http::verb::post, "/documents/process",
             [&service](RequestContext& ctx) { return Process(service, ctx); });
  router.Add(http::verb::post, "/documents/search",
             [&service](RequestContext& ctx) { return Search(service, ctx); });
  router.Add(http::verb::get, "/documents",
             [&service](RequestContext& ctx) { return List(service, ctx); });
  router.Add(http::verb::get, "/documents/{id}",
             [&service](RequestContext& ctx) { return Get(service, ctx); });
  router.Add(http::verb::delete_, "/documents/{id}",
             [&service](RequestContext& ctx) { return Delete(service, ctx); });
}

}  // namespace orchestra::api
