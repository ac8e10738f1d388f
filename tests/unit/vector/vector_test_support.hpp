#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <random>
#include <span>
#include <vector>

#include "vector/flat_index.hpp"
#include "vector/hnsw_index.hpp"

namespace orchestra::vector::testing {

// `count` vectors of `dimension` normally distributed components (uniform directions), row
// after row; the same seed gives the same vectors.
inline std::vector<float> RandomVectors(std::size_t count, std::size_t dimension,
                                        std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> out(count * dimension);
  for (float& x : out)
    x = normal(rng);
  return out;
}

// Vectors with the structure of text embeddings: a random `latent`-dimensional Gaussian point,
// mapped through a fixed random dimension × latent matrix (the same for every seed), plus
// isotropic noise of 10 % amplitude. Sentence embeddings have an intrinsic dimension of a few
// tens; uniformly random vectors (RandomVectors) have the full dimension, which is the worst
// case for any graph index (see hnsw_index.hpp).
inline std::vector<float> EmbeddingLikeVectors(std::size_t count, std::size_t dimension,
                                               std::size_t latent, std::uint64_t seed) {
  std::mt19937_64 basis_rng(1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> basis(dimension * latent);
  for (float& x : basis)
    x = normal(basis_rng);
  std::mt19937_64 rng(seed);
  std::vector<float> z(latent);
  std::vector<float> out(count * dimension);
  const float scale = 1.0f / std::sqrt(static_cast<float>(latent));
  for (std::size_t i = 0; i < count; ++i) {
    for (float& x : z)
      x = normal(rng);
    for (std::size_t d = 0; d < dimension; ++d) {
      float s = 0;
      for (std::size_t j = 0; j < latent; ++j)
        s += basis[d * latent + j] * z[j];
      out[i * dimension + d] = s * scale + 0.1f * normal(rng);
    }
  }
  return out;
}

inline std::span<const float> Row(const std::vector<float>& rows, std::size_t dimension,
                                  std::size_t i) {
  return {rows.data() + i * dimension, dimension};
}

inline std::unique_ptr<Index> Flat(std::size_t dimension, Metric metric = Metric::kCosine) {
  return std::move(MakeFlatIndex(dimension, metric).value());
}

inline std::unique_ptr<Index> Hnsw(std::size_t dimension, std::size_t initial_capacity = 1024,
                                   Metric metric = Metric::kCosine) {
  HnswOptions options;
  options.dimension = dimension;
  options.metric = metric;
  options.initial_capacity = initial_capacity;
  return std::move(MakeHnswIndex(options).value());
}

}  // namespace orchestra::vector::testing
