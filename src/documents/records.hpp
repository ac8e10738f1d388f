#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "documents/content.hpp"

// How documents are kept in the record store (storage/record_store.hpp), per tenant:
//
//   documents        one record per document, id = the document's id: its metadata and the
//                    *generation* of chunks that is current. Writing this record is the commit
//                    point of an ingest or a replacement, deleting it the commit point of a
//                    deletion: a single-record write, atomic on every backend, however many
//                    chunks the document has.
//   document_chunks  the chunks, text and vector, packed into pages of a few hundred kilobytes;
//                    id = "<generation>/<page number, 6 digits>". A generation's pages are
//                    written before the document record names it and never change; the
//                    previous generation's pages are deleted after the switch.
//   document_pending one record per generation whose pages may outlive their use, id = the
//                    generation: written with the first pages of an ingest (deleted in the
//                    commit) and, marked `retired`, with the commit that replaces or deletes a
//                    generation (deleted with its last pages). A crash at any point leaves
//                    either a document naming its pages or a pending record naming them, so a
//                    sweep (at start-up and hourly) finds every orphan: a retired generation
//                    at once, an uncommitted one once it is an hour old (an ingest in flight
//                    on another instance may still commit it before then).
//
// and, in storage::kSystemTenant, `document_tenants`: one empty record per tenant that ever
// stored a document, so that start-up knows whose documents to load.
//
// Values are JSON. A vector is its float32 values as little-endian bytes in base64 (exact and a
// third the size of decimal text).
namespace orchestra::documents {

inline constexpr std::string_view kDocumentsCollection = "documents";
inline constexpr std::string_view kChunksCollection = "document_chunks";
inline constexpr std::string_view kTenantsCollection = "document_tenants";
inline constexpr std::string_view kPendingCollection = "document_pending";

inline constexpr std::size_t kMaxDocumentIdBytes = 128;
inline constexpr std::size_t kMaxMetadataBytes = 16 * 1024;
inline constexpr std::size_t kMaxTitleBytes = 1024;

struct DocumentRecord {
  std::string id;
  std::string title;
  std::string source;
  ContentType content_type = ContentType::kText;
  std::string created_at;  // ISO 8601 UTC, milliseconds: 2026-12-03T11:33:01.123Z
  std::string updated_at;
  std::string metadata = "{}";  // a JSON object, as text
  std::string generation;       // whose pages hold the chunks
  std::uint32_t chunk_count = 0;
  std::uint32_t pages = 0;
  std::string embedding_model;
  std::uint32_t dimensions = 0;  // of the stored vectors
  std::string chunking;          // the strategy's name
  std::uint64_t bytes = 0;       // the content's size as sent
};

struct ChunkRecord {
  std::uint32_t sequence = 0;
  std::string text;
  std::vector<std::string> heading_path;  // markdown_headings only
  std::vector<float> vector;              // empty: the chunk has no vector (no words)
};

struct ChunkPage {
  std::string document_id;
  std::string generation;
  std::vector<ChunkRecord> chunks;
};

std::string EncodeDocument(const DocumentRecord& document);
// kInvalidRequest naming what is wrong when the text is not a document record.
Result<DocumentRecord> DecodeDocument(std::string_view json);

// The pages of a generation: chunks packed in order, a page closed once it passes
// `page_bytes` (a chunk is never split, so a page may hold one chunk larger than that).
std::vector<std::string> EncodePages(std::string_view document_id, std::string_view generation,
                                     std::span<const ChunkRecord> chunks, std::size_t page_bytes);
Result<ChunkPage> DecodePage(std::string_view json);

struct PendingGeneration {
  std::string document_id;
  std::uint32_t pages = 0;
  bool retired = false;  // replaced or deleted: its pages can go at once
};

std::string EncodePending(const PendingGeneration& pending);
Result<PendingGeneration> DecodePending(std::string_view json);

// "<generation>/000042".
std::string PageId(std::string_view generation, std::size_t page);
// The prefix of every page id of a generation: "<generation>/".
std::string PagePrefix(std::string_view generation);

// A new generation: 12 hex digits of milliseconds since the epoch, then 12 random ones.
// Time-ordered, so the age of an orphan can be read from its id.
std::string NewGeneration(std::chrono::system_clock::time_point now);
// When a generation was made; epoch when it is not one of ours.
std::chrono::system_clock::time_point GenerationTime(std::string_view generation);

// A chunk's public id: "<generation>-<sequence>" (unique forever: a replaced document's chunks
// get new ids).
std::string ChunkId(std::string_view generation, std::uint32_t sequence);

// A random UUID (version 4), for a document posted without an id.
std::string NewDocumentId();

// A document id as the API accepts it: 1 to kMaxDocumentIdBytes bytes of UTF-8 without control
// characters. kInvalidRequest (param `param`) otherwise.
Result<void> CheckDocumentId(std::string_view id, std::string_view param = "document_id");

// ISO 8601 UTC with milliseconds.
std::string IsoTime(std::chrono::system_clock::time_point t);

}  // namespace orchestra::documents
