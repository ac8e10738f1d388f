# Translation tests for the Gemini and Anthropic codecs, against the recorded examples in
# testdata/. Included from tests/unit/providers/CMakeLists.txt.
orchestra_add_test(providers_codec_test
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/gemini_codec_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/anthropic_codec_test.cpp
  LIBS orchestra_provider_codecs orchestra_codec_test_support
  LABELS unit)
