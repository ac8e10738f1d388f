# Every library comes from Debian 12 (scripts/setup.sh installs them).

find_package(Threads REQUIRED)
find_package(Boost 1.81 EXACT REQUIRED)
find_package(OpenSSL REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(YAMLCPP REQUIRED IMPORTED_TARGET yaml-cpp)
pkg_check_modules(SQLITE3 REQUIRED IMPORTED_TARGET sqlite3)
pkg_check_modules(HIREDIS REQUIRED IMPORTED_TARGET hiredis)
pkg_check_modules(LIBPQ REQUIRED IMPORTED_TARGET libpq)

if(ORCHESTRA_BUILD_TESTS)
  find_package(GTest REQUIRED)
  include(GoogleTest)
endif()
if(ORCHESTRA_BUILD_BENCH)
  find_package(benchmark REQUIRED)
endif()

# Commit id baked into orchestra_build_info; "unknown" outside a git checkout.
# Pass -DORCHESTRA_GIT_COMMIT=<sha> where there is no .git (the container build).
if(NOT ORCHESTRA_GIT_COMMIT)
  execute_process(
    COMMAND git rev-parse --short=12 HEAD
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}
    OUTPUT_VARIABLE ORCHESTRA_GIT_COMMIT
    OUTPUT_STRIP_TRAILING_WHITESPACE
    ERROR_QUIET)
endif()
if(NOT ORCHESTRA_GIT_COMMIT)
  set(ORCHESTRA_GIT_COMMIT unknown)
endif()
