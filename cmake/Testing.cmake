# orchestra_add_test(<name> SOURCES <files...> LIBS <targets...> [LABELS <labels...>])
# One GoogleTest executable; every TEST becomes its own CTest test.
function(orchestra_add_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} GTest::gtest GTest::gmock GTest::gtest_main
                                        orchestra_warnings)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  # One label per executable: gtest_discover_tests flattens a list of labels into separate
  # property arguments.
  list(LENGTH ARG_LABELS _count)
  if(_count GREATER 1)
    message(FATAL_ERROR "orchestra_add_test(${name}): give one label, not ${ARG_LABELS}")
  endif()
  # The environment goes in through an `env` launcher: gtest_discover_tests splits a list-valued
  # ENVIRONMENT property so that only its first entry would survive.
  set_target_properties(${name} PROPERTIES CROSSCOMPILING_EMULATOR
    "${CMAKE_COMMAND};-E;env;ORCHESTRA_BINARY=$<TARGET_FILE:orchestra>;ORCHESTRA_SOURCE_DIR=${PROJECT_SOURCE_DIR};ORCHESTRA_BUILD_DIR=${PROJECT_BINARY_DIR}")
  gtest_discover_tests(${name}
    DISCOVERY_MODE PRE_TEST
    PROPERTIES LABELS "${ARG_LABELS}")
endfunction()
