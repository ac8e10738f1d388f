# The provider wire-format codecs: pure translation between the canonical types
# (providers/types.hpp) and each provider's JSON, with no networking. Included from
# src/providers/CMakeLists.txt.
add_library(orchestra_provider_codecs STATIC
  ${CMAKE_CURRENT_LIST_DIR}/codec_util.cpp
  ${CMAKE_CURRENT_LIST_DIR}/openai/codec.cpp
  ${CMAKE_CURRENT_LIST_DIR}/gemini/codec.cpp
  ${CMAKE_CURRENT_LIST_DIR}/anthropic/codec.cpp)
target_link_libraries(orchestra_provider_codecs
  PUBLIC orchestra_common
  PRIVATE orchestra_warnings)
