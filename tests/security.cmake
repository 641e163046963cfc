# Security and hardening (issue 9): bearer tokens and scopes (test_auth),
# TLS/mTLS, tokens end to end and hostile input against a running heraldd
# (tests/security/*.py, label "security"). The libFuzzer targets live in
# tests/fuzz/ and are built by tests/fuzz/run.sh with clang in their own
# build directory, not here.
if(TARGET herald_handler)
  herald_unit_test(test_auth SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_auth.c
                   LIBS herald_handler Threads::Threads LABELS security)
endif()

# heraldd end to end (Debian's /usr/bin/python3 with grpcio, openssl for the
# throw-away PKI). Each test starts its own heraldd on 127.0.0.1 and stops it
# by PID; test_tokens and test_hostile use the services fixture.
if(TARGET heraldd AND TARGET herald)
  set(SEC_DIR ${CMAKE_CURRENT_SOURCE_DIR}/security)
  set(SEC_ENV "HERALD_BIN_DIR=${CMAKE_BINARY_DIR}/bin" "PYTHONDONTWRITEBYTECODE=1")
  add_test(NAME security_tls COMMAND /usr/bin/python3 ${SEC_DIR}/test_tls.py
           WORKING_DIRECTORY ${SEC_DIR})
  set_tests_properties(security_tls PROPERTIES LABELS "security;e2e" TIMEOUT 300
                       ENVIRONMENT "${SEC_ENV}")
  foreach(t tokens hostile)
    add_test(NAME security_${t} COMMAND /usr/bin/python3 ${SEC_DIR}/test_${t}.py
             WORKING_DIRECTORY ${SEC_DIR})
    set_tests_properties(security_${t} PROPERTIES LABELS "security;e2e" TIMEOUT 600
                         ENVIRONMENT "${SEC_ENV};${HERALD_TEST_ENV}" FIXTURES_REQUIRED services)
  endforeach()
endif()

# libFuzzer targets (built by tests/fuzz/run.sh with -DHERALD_FUZZ=ON) or,
# in every other build, their corpus replays.
option(HERALD_FUZZ "Build the libFuzzer targets (clang only; see tests/fuzz/run.sh)" OFF)
include(${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz.cmake)
