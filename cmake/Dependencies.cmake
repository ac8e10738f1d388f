# Every library comes from Debian 12 (scripts/setup.sh installs them).

find_package(Threads REQUIRED)
find_package(Boost 1.81 EXACT REQUIRED)
# Static linking of the small libraries the binary needs at every start: each shared library
# costs relocations and constructors at exec (`orchestra version`: ~5 ms all shared, ~2 ms with
# these static). OpenSSL stays shared: it gets security fixes from the distribution, and the
# image carries libssl/libcrypto anyway for libpq, so a static copy would be a second one (image
# budget, DESIGN.md §5). libpq is not linked at all (storage/postgres/libpq_loader.hpp). The
# price: a fix in SQLite, hiredis or yaml-cpp needs a rebuild (every release rebuilds). The
# sanitizer and fuzz builds keep shared libraries.
if(ORCHESTRA_SANITIZE OR ORCHESTRA_FUZZ)
  set(_static_default OFF)
else()
  set(_static_default ON)
endif()
option(ORCHESTRA_STATIC_DEPS "Link libstdc++, SQLite, hiredis, yaml-cpp and zlib statically"
       ${_static_default})
if(ORCHESTRA_STATIC_DEPS)
  add_link_options(-static-libstdc++ -static-libgcc -Wl,--gc-sections)
  add_compile_options(-ffunction-sections -fdata-sections)
endif()

find_package(OpenSSL REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(YAMLCPP REQUIRED IMPORTED_TARGET yaml-cpp)
pkg_check_modules(SQLITE3 REQUIRED IMPORTED_TARGET sqlite3)
pkg_check_modules(HIREDIS REQUIRED IMPORTED_TARGET hiredis)
pkg_check_modules(LIBPQ REQUIRED IMPORTED_TARGET libpq)

# zlib decodes the gzip or deflate bodies an upstream sends although asked not to (net/client.cpp).
find_package(ZLIB REQUIRED)

if(ORCHESTRA_STATIC_DEPS)
  find_library(ZLIB_ARCHIVE libz.a REQUIRED)
  set_target_properties(ZLIB::ZLIB PROPERTIES IMPORTED_LOCATION "${ZLIB_ARCHIVE}")
  foreach(_dep YAMLCPP:yaml-cpp SQLITE3:sqlite3 HIREDIS:hiredis)
    string(REPLACE ":" ";" _pair ${_dep})
    list(GET _pair 0 _prefix)
    list(GET _pair 1 _name)
    find_library(${_prefix}_ARCHIVE lib${_name}.a REQUIRED)
    set_target_properties(PkgConfig::${_prefix} PROPERTIES
      INTERFACE_LINK_LIBRARIES "${${_prefix}_ARCHIVE};m;${CMAKE_DL_LIBS};Threads::Threads")
  endforeach()
endif()

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
