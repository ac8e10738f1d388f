#pragma once

#include <cstddef>
#include <memory>

#include "vector/index.hpp"

namespace orchestra::vector {

// The exact index: vectors in one contiguous array, a search scores every one of them. A
// removal moves the last vector into the hole, so memory follows the live count. Cost per
// search: size() × dimension multiply-adds, bound by memory bandwidth (384-d: about 1 ms of CPU
// per 10,000 vectors, 21 ms per 100,000, see bench/vector_bench.cpp); no graph and no fixed
// overhead, which makes it the right index for small tenants and the ground truth for
// HnswIndex's recall.
// Thread-safety and errors: as Index. kInvalidRequest when dimension is not in 1 … 65,536.
Result<std::unique_ptr<Index>> MakeFlatIndex(std::size_t dimension,
                                             Metric metric = Metric::kCosine);

}  // namespace orchestra::vector
