// TenantIndex's snapshots: the vector indexes (vector::Index::Save) and the chunk table, so that
// a restart neither re-reads every vector from the store nor rebuilds the HNSW graphs.
//
// Files, in the snapshot directory, for a tenant whose name hashes to <t> (FNV-1a, 64 bits):
//   <t>.docs                  the chunk table: the container of vector/snapshot.hpp (magic,
//                             byte-order mark, checksum trailer) with kind kKindDocuments;
//                             written last, atomically (temporary file, fsync, rename)
//   <t>.<token>.<n>.vidx      the n-th vector index, named in <t>.docs; each save writes new
//                             ones under a fresh random token, then <t>.docs, then removes the
//                             older ones, so <t>.docs always names files written with it
//
// <t>.docs body:
//   u32 format (1) · str tenant · u64 next id · u32 index count ·
//   per index: str model key · str file name · u8 graph ·
//   u64 document count · per document: str id · str generation · str model key ·
//   u32 chunk count · per chunk: u64 id · u32 sequence · u8 has vector · str text ·
//   u32 heading count · str headings...
// (str = u32 length + bytes.) Everything is checked on load; a damaged or foreign file is an
// error and the caller rebuilds from the store.
#include <cstring>
#include <mutex>
#include <shared_mutex>

#include "common/random.hpp"
#include "documents/tenant_index.hpp"
#include "vector/snapshot.hpp"

namespace orchestra::documents {
namespace {

namespace snapshot = vector::snapshot;

constexpr std::uint32_t kKindDocuments = 16;
constexpr std::uint32_t kDocsFormat = 1;
constexpr std::uint32_t kMaxStringBytes = 64u << 20;

std::string TenantFileKey(std::string_view tenant) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : tenant) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  char out[24];
  std::snprintf(out, sizeof out, "t%016llx", static_cast<unsigned long long>(h));
  return out;
}

void Str(snapshot::Writer& out, std::string_view s) {
  out.Pod(static_cast<std::uint32_t>(s.size()));
  out.Write(s.data(), s.size());
}

bool Str(snapshot::Reader& in, std::string& s) {
  std::uint32_t n = 0;
  if (!in.Pod(n) || n > kMaxStringBytes || !in.Fits(n, 1)) return false;
  s.resize(n);
  return n == 0 || in.Read(s.data(), n);
}

}  // namespace

Result<void> TenantIndex::SaveSnapshot(const std::filesystem::path& dir,
                                       std::string_view tenant) const {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return Error(ErrorCode::kInternal,
                 "cannot create the snapshot directory " + dir.string() + ": " + ec.message());
  }
  const std::string key = TenantFileKey(tenant);
  const std::string token = RandomHex(6);
  std::shared_lock lock(mutex_);
  std::vector<std::string> files;
  std::size_t n = 0;
  for (const auto& [model_key, slot] : indexes_) {
    std::string file = key + "." + token + "." + std::to_string(n++) + ".vidx";
    if (auto ok = slot.index->Save(dir / file); !ok) return ok.error();
    files.push_back(std::move(file));
  }
  snapshot::Writer out(dir / (key + ".docs"));
  out.Header(kKindDocuments, 0, 0);
  out.Pod(kDocsFormat);
  Str(out, tenant);
  out.Pod(static_cast<std::uint64_t>(next_id_));
  out.Pod(static_cast<std::uint32_t>(indexes_.size()));
  n = 0;
  for (const auto& [model_key, slot] : indexes_) {
    Str(out, model_key);
    Str(out, files[n++]);
    out.Pod(static_cast<std::uint8_t>(slot.graph ? 1 : 0));
  }
  out.Pod(static_cast<std::uint64_t>(documents_.size()));
  for (const auto& [id, doc] : documents_) {
    Str(out, id);
    Str(out, doc->record.generation);
    Str(out, doc->model_key);
    out.Pod(static_cast<std::uint32_t>(doc->chunk_ids.size()));
    for (std::uint64_t chunk_id : doc->chunk_ids) {
      const Chunk& c = chunks_.at(chunk_id);
      out.Pod(chunk_id);
      out.Pod(c.sequence);
      out.Pod(static_cast<std::uint8_t>(c.has_vector ? 1 : 0));
      Str(out, c.text);
      out.Pod(static_cast<std::uint32_t>(c.heading_path.size()));
      for (const std::string& h : c.heading_path)
        Str(out, h);
    }
  }
  if (auto ok = out.Commit(); !ok) return ok.error();
  // The files of earlier snapshots (and of saves that failed before their .docs) go.
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with(key + ".") && name.ends_with(".vidx") &&
        !name.starts_with(key + "." + token + ".")) {
      std::filesystem::remove(entry.path(), ec);
    }
  }
  return {};
}

Result<TenantIndex::Snapshot> TenantIndex::LoadSnapshot(const std::filesystem::path& dir,
                                                        std::string_view tenant) {
  const std::string key = TenantFileKey(tenant);
  auto reader = snapshot::Reader::Open(dir / (key + ".docs"));
  if (!reader) return reader.error();
  snapshot::Reader& in = *reader;
  auto header = in.Header();
  if (!header) return header.error();
  if (header->kind != kKindDocuments) return in.Corrupt("not a document snapshot");
  std::uint32_t format = 0;
  std::string name;
  Snapshot out;
  std::uint32_t index_count = 0;
  if (!in.Pod(format) || format != kDocsFormat) return in.Corrupt("unknown format");
  if (!Str(in, name)) return in.Corrupt("the tenant is truncated");
  if (name != tenant) return in.Corrupt("it is another tenant's");
  if (!in.Pod(out.next_id) || !in.Pod(index_count) || !in.Fits(index_count, 9)) {
    return in.Corrupt("the index list is truncated");
  }
  std::vector<std::string> files;
  for (std::uint32_t i = 0; i < index_count; ++i) {
    SnapshotIndex s;
    std::string file;
    std::uint8_t graph = 0;
    if (!Str(in, s.model_key) || !Str(in, file) || !in.Pod(graph)) {
      return in.Corrupt("the index list is truncated");
    }
    if (file.find('/') != std::string::npos || !file.starts_with(key + ".")) {
      return in.Corrupt("an index file name is not this tenant's");
    }
    s.graph = graph != 0;
    files.push_back(std::move(file));
    out.indexes.push_back(std::move(s));
  }
  std::uint64_t documents = 0;
  if (!in.Pod(documents) || !in.Fits(documents, 16)) return in.Corrupt("the documents are cut");
  for (std::uint64_t d = 0; d < documents; ++d) {
    std::string id;
    SnapshotDocument doc;
    std::uint32_t chunks = 0;
    if (!Str(in, id) || !Str(in, doc.generation) || !Str(in, doc.model_key) || !in.Pod(chunks) ||
        !in.Fits(chunks, 21)) {
      return in.Corrupt("a document is truncated");
    }
    doc.chunks.resize(chunks);
    for (SnapshotChunk& c : doc.chunks) {
      std::uint8_t has_vector = 0;
      std::uint32_t headings = 0;
      if (!in.Pod(c.id) || !in.Pod(c.chunk.sequence) || !in.Pod(has_vector) ||
          !Str(in, c.chunk.text) || !in.Pod(headings) || !in.Fits(headings, 4)) {
        return in.Corrupt("a chunk is truncated");
      }
      c.has_vector = has_vector != 0;
      c.chunk.heading_path.resize(headings);
      for (std::string& h : c.chunk.heading_path)
        if (!Str(in, h)) return in.Corrupt("a chunk heading is truncated");
      if (c.id >= out.next_id) return in.Corrupt("a chunk id is past the next id");
    }
    out.documents.emplace(std::move(id), std::move(doc));
  }
  if (auto ok = in.VerifyTrailer(); !ok) return ok.error();
  for (std::size_t i = 0; i < files.size(); ++i) {
    auto index = vector::LoadIndex(dir / files[i]);
    if (!index) return index.error();
    const std::string& model_key = out.indexes[i].model_key;
    const auto hash = model_key.rfind('#');
    if (hash == std::string::npos ||
        model_key.substr(hash + 1) != std::to_string((*index)->dimension())) {
      return Error(ErrorCode::kInvalidRequest,
                   "snapshot index " + files[i] + " does not have the dimension of " + model_key);
    }
    out.indexes[i].index = std::move(*index);
  }
  return out;
}

}  // namespace orchestra::documents
