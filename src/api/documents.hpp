#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include "api/json_body.hpp"
#include "api/router.hpp"
#include "common/error.hpp"
#include "documents/service.hpp"

// Documents over HTTP (issue 14, docs/API.md "Documents"), in AI Orchestra's shapes with
// Orchestra's fields alongside; every route has the user scope and works on the caller's tenant
// (RequestContext::tenant()) only — another tenant's document is "not found", never visible:
//
// - POST /documents {content, title?, source?, content_type?: text|markdown|html, document_id?,
//     metadata?, chunking?: {strategy, size?, overlap?}, chunking_strategy?, embedding_model?}
//     → {document_id, chunk_count, replaced, embedding_model,
//        document_metadata: {id, title, source, created_at, updated_at, metadata, ...}}
// - POST /documents/upload (multipart/form-data: file, document_id?, chunking_strategy?,
//     metadata_json?, title?, source?) → the same; the file's kind from its part's Content-Type
//     and name (documents/content.hpp), 415 for anything else, 413 over documents.max_bytes.
// - POST /documents/process {file_path, document_id?, metadata?, chunking_strategy?, ...}: a
//     file under documents.import_dir (403 outside it; 404 without import_dir).
// - GET /documents?offset=&limit= → {documents, total_count, offset, limit}
// - GET /documents/{document_id} → the document's metadata; DELETE → {success, document_id}
//     (404 when there is no such document).
// - POST /documents/search {query, limit=5, score_threshold?, document_id?, metadata?,
//     mode?: hybrid|vector|keyword, embedding_model?} → {results: [{id, document_id, content,
//     metadata, document_title, document_source, similarity, sequence_number, score}], query,
//     mode, embedding_model}
namespace orchestra::api {

// Registers the document routes (Access::kUser). `service` must outlive the router.
void AddDocumentRoutes(Router& router, documents::Service& service);

// A search hit in the API's shape (shared with /answer-question's `sources`).
boost::json::object HitJson(const documents::Hit& hit);

// The search options of /documents/search, shared with the retrieval-augmented requests
// (/answer-question's members, the chat `documents` object): limit (1 to kMaxSearchLimit),
// score_threshold (-1 to 1), document_id, metadata, mode. Those present are set in `request`;
// kInvalidRequest naming the member otherwise.
Result<void> ReadSearchOptions(const JsonBody& body, documents::SearchRequest& request);

// The ids of the chunks an answer was given (`citations`), in rank order.
boost::json::array Citations(const std::vector<documents::Hit>& hits);

}  // namespace orchestra::api
