# The offline local models as pure algorithms (no networking, no provider types): tokenizer,
# word vectors, embeddings, sentences, summaries, answers, classification and the extractive
# chat. orchestra_providers adapts them to the Provider interface; the task service calls them
# directly. Included from src/providers/CMakeLists.txt.
add_library(orchestra_local_models STATIC
  ${CMAKE_CURRENT_LIST_DIR}/tokens.cpp
  ${CMAKE_CURRENT_LIST_DIR}/word_vectors.cpp
  ${CMAKE_CURRENT_LIST_DIR}/embedder.cpp
  ${CMAKE_CURRENT_LIST_DIR}/sentences.cpp
  ${CMAKE_CURRENT_LIST_DIR}/summarizer.cpp
  ${CMAKE_CURRENT_LIST_DIR}/answerer.cpp
  ${CMAKE_CURRENT_LIST_DIR}/classifier.cpp
  ${CMAKE_CURRENT_LIST_DIR}/extractive_chat.cpp)
target_link_libraries(orchestra_local_models
  PUBLIC orchestra_common
  PRIVATE OpenSSL::Crypto orchestra_warnings)
