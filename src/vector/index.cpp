#include "vector/index.hpp"

#include "vector/snapshot.hpp"
#include "vector/vector_math.hpp"

namespace orchestra::vector {

Result<std::unique_ptr<Index>> LoadIndex(const std::filesystem::path& path) {
  auto reader = snapshot::Reader::Open(path);
  if (!reader) return reader.error();
  snapshot::Reader& in = *reader;
  auto header = in.Header();
  if (!header) return header.error();
  const auto metric = static_cast<Metric>(header->metric);
  if (metric != Metric::kCosine && metric != Metric::kInnerProduct)
    return in.Corrupt("unknown metric " + std::to_string(header->metric));
  if (header->dimension < 1 || header->dimension > (1u << 16))
    return in.Corrupt("dimension " + std::to_string(header->dimension) + " is out of range");
  switch (header->kind) {
    case snapshot::kKindFlat:
      return detail::LoadFlat(in, header->dimension, metric);
    case snapshot::kKindHnsw:
      return detail::LoadHnsw(in, header->dimension, metric);
    default:
      return in.Corrupt("unknown index kind " + std::to_string(header->kind));
  }
}

}  // namespace orchestra::vector
