# orchestra_add_test(<name> SOURCES <files...> LIBS <targets...> [LABELS <labels...>]
#                    [ONE_PROCESS <suffix> <gtest filter>])
# One GoogleTest executable; every TEST becomes its own CTest test, except those matching
# ONE_PROCESS's filter: they run together as one CTest test, <name>.<suffix>, in one process, so
# that they share what is expensive to start (the Firestore emulator's JVM). When the group
# prints "FIRESTORE EMULATOR MISSING" (its tests skipped themselves: no emulator on this
# machine), CTest reports it as skipped rather than passed.
function(orchestra_add_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS;LABELS;ONE_PROCESS" ${ARGN})
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
  set(_env ORCHESTRA_BINARY=$<TARGET_FILE:orchestra>
           ORCHESTRA_SOURCE_DIR=${PROJECT_SOURCE_DIR}
           ORCHESTRA_BUILD_DIR=${PROJECT_BINARY_DIR})
  list(JOIN _env ";" _env_list)
  set_target_properties(${name} PROPERTIES CROSSCOMPILING_EMULATOR
    "${CMAKE_COMMAND};-E;env;${_env_list}")
  set(_filter "")
  if(ARG_ONE_PROCESS)
    list(LENGTH ARG_ONE_PROCESS _n)
    if(NOT _n EQUAL 2)
      message(FATAL_ERROR "orchestra_add_test(${name}): ONE_PROCESS takes <suffix> <filter>")
    endif()
    list(GET ARG_ONE_PROCESS 0 _suffix)
    list(GET ARG_ONE_PROCESS 1 _group)
    set(_filter TEST_FILTER "-${_group}")
    add_test(NAME ${name}.${_suffix}
             COMMAND ${CMAKE_COMMAND} -E env ${_env} $<TARGET_FILE:${name}>
                     --gtest_filter=${_group})
    set_tests_properties(${name}.${_suffix} PROPERTIES
      LABELS "${ARG_LABELS}"
      SKIP_REGULAR_EXPRESSION "FIRESTORE EMULATOR MISSING")
  endif()
  gtest_discover_tests(${name}
    DISCOVERY_MODE PRE_TEST
    ${_filter}
    PROPERTIES LABELS "${ARG_LABELS}")
endfunction()
