# SchedulingService end to end and the built-in publisher (issue 7 at the RPC
# level). Each program starts its own heraldd (fork/exec, 127.0.0.1, a free
# port, stopped by PID; tests/integration/test_profiles_support.h) on the
# services fixture's PostgreSQL (its own database) and drives it with the C
# client.
#   test_sched_svc              integration: every RPC's happy path and
#                               errors, slots on a synthetic history, a
#                               property test of slots against random
#                               policies, lease expiry and reconciliation
#   test_sched_svc_concurrency  integration: 8 executor threads, 1,000 due
#                               posts, crashes, duplicate and late reports
#   fault_publisher             integration;fault: the built-in publisher
#                               against tests/fakes/fake_receiver.c (429,
#                               500, reset, timeout, heraldd killed -9)
#   bench_lease                 bench: ClaimDueWork + ReportPublishResults
#                               cycles per second with 8 executors (one
#                               batched report per claim: the target's
#                               mode), after the one-at-a-time figures
# The test_api_svc contract test compiles every svc_*.c: it needs the
# scheduling store too.
# OpenSSL's libcrypto checks the publisher's HMAC independently.
pkg_check_modules(SCHED_LIBCRYPTO IMPORTED_TARGET libcrypto)

if(TARGET test_api_svc AND TARGET herald_sched)
  target_link_libraries(test_api_svc PRIVATE herald_sched)
endif()

if(TARGET heraldd AND TARGET herald_client AND TARGET herald_store AND TARGET herald_domain
   AND CMOCKA_FOUND)
  function(herald_sched_program name src)
    add_executable(${name} ${src} ${ARGN})
    target_link_libraries(${name} PRIVATE herald_client herald_store herald_domain herald_proto
                          herald_common PkgConfig::CMOCKA Threads::Threads m)
    target_include_directories(${name} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/integration
                               ${CMAKE_CURRENT_SOURCE_DIR}/fakes)
    target_compile_definitions(${name} PRIVATE HERALD_SOURCE_DIR="${CMAKE_SOURCE_DIR}"
                               HERALDD_BIN="$<TARGET_FILE:heraldd>")
    add_dependencies(${name} heraldd)
    herald_warnings(${name})
  endfunction()

  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_sched_svc.c)
    herald_sched_program(test_sched_svc ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_sched_svc.c)
    add_test(NAME test_sched_svc COMMAND test_sched_svc)
    set_tests_properties(test_sched_svc PROPERTIES LABELS integration TIMEOUT 300
                         SKIP_RETURN_CODE 77 ENVIRONMENT "${HERALD_TEST_ENV}"
                         FIXTURES_REQUIRED services)
  endif()

  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_sched_svc_concurrency.c)
    herald_sched_program(test_sched_svc_concurrency
                         ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_sched_svc_concurrency.c)
    add_test(NAME test_sched_svc_concurrency COMMAND test_sched_svc_concurrency)
    set_tests_properties(test_sched_svc_concurrency PROPERTIES LABELS integration TIMEOUT 600
                         SKIP_RETURN_CODE 77 RUN_SERIAL TRUE ENVIRONMENT "${HERALD_TEST_ENV}"
                         FIXTURES_REQUIRED services)
  endif()

  if(SCHED_LIBCRYPTO_FOUND AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/fakes/fake_receiver.c)
    add_library(fake_receiver STATIC ${CMAKE_CURRENT_SOURCE_DIR}/fakes/fake_receiver.c)
    target_include_directories(fake_receiver PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/fakes)
    target_link_libraries(fake_receiver PUBLIC herald_common PkgConfig::SCHED_LIBCRYPTO Threads::Threads)
    herald_warnings(fake_receiver)
  endif()
  if(TARGET fake_receiver AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/fault/publisher_faults.c)
    herald_sched_program(fault_publisher ${CMAKE_CURRENT_SOURCE_DIR}/fault/publisher_faults.c)
    target_link_libraries(fault_publisher PRIVATE fake_receiver)
    add_test(NAME fault_publisher COMMAND fault_publisher)
    set_tests_properties(fault_publisher PROPERTIES LABELS "integration;fault" TIMEOUT 600
                         SKIP_RETURN_CODE 77 RUN_SERIAL TRUE ENVIRONMENT "${HERALD_TEST_ENV}"
                         FIXTURES_REQUIRED services)
  endif()

  if(EXISTS ${CMAKE_SOURCE_DIR}/bench/bench_lease.c)
    herald_sched_program(bench_lease ${CMAKE_SOURCE_DIR}/bench/bench_lease.c)
    if(NOT SANITIZE)
      add_test(NAME bench_lease COMMAND bench_lease --report-batch --compare --report-only)
      set_tests_properties(bench_lease PROPERTIES LABELS "bench" TIMEOUT 300 SKIP_RETURN_CODE 77
                           RUN_SERIAL TRUE ENVIRONMENT "${HERALD_TEST_ENV}"
                           FIXTURES_REQUIRED services)
    endif()
  endif()
endif()

# The publisher's pure parts (HMAC, JSON receipt, outcome classification):
# a unit test, no network.
if(TARGET herald_sched AND CMOCKA_FOUND AND SCHED_LIBCRYPTO_FOUND
   AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_sched_svc_publisher.c)
  herald_unit_test(test_sched_svc_publisher
                   SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_sched_svc_publisher.c
                   LIBS herald_sched PkgConfig::SCHED_LIBCRYPTO)
endif()
