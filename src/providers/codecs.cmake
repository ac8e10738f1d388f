# The translating providers' wire-format codecs: pure translation between the canonical types
# (wire/types.hpp) and Gemini's and Anthropic's JSON, with no networking. Included from
# src/providers/CMakeLists.txt.
add_library(orchestra_provider_codecs STATIC
  ${CMAKE_CURRENT_LIST_DIR}/gemini/codec.cpp
  ${CMAKE_CURRENT_LIST_DIR}/anthropic/codec.cpp)
target_link_libraries(orchestra_provider_codecs
  PUBLIC orchestra_wire
  PRIVATE orchestra_warnings)
