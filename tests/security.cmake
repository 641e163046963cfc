# Security and hardening (issue 9): bearer tokens and scopes (test_auth),
# TLS/mTLS, tokens end to end and hostile input against a running heraldd
# (tests/security/*.py, label "security"). The libFuzzer targets live in
# tests/fuzz/ and are built by tests/fuzz/run.sh with clang in their own
# build directory, not here.
if(TARGET herald_handler)
  herald_unit_test(test_auth SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_auth.c
                   LIBS herald_handler Threads::Threads LABELS security)
endif()

# libFuzzer targets (built by tests/fuzz/run.sh with -DHERALD_FUZZ=ON) or,
# in every other build, their corpus replays.
option(HERALD_FUZZ "Build the libFuzzer targets (clang only; see tests/fuzz/run.sh)" OFF)
include(${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz.cmake)
