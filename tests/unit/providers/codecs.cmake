# Translation tests for the provider wire-format codecs, against the recorded examples in
# testdata/. Included from tests/unit/providers/CMakeLists.txt.
orchestra_add_test(providers_codec_test
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/codec_test_support.cpp
    ${CMAKE_CURRENT_LIST_DIR}/codec_util_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/openai_codec_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/gemini_codec_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/anthropic_codec_test.cpp
  LIBS orchestra_provider_codecs
  LABELS unit)
# Where testdata/ is when the binary runs without $ORCHESTRA_SOURCE_DIR.
target_compile_definitions(providers_codec_test PRIVATE
  ORCHESTRA_CODEC_TESTDATA_DIR="${CMAKE_CURRENT_LIST_DIR}/testdata")
