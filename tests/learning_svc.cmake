# LearningService end to end (issue 6 at the RPC level). Each program starts
# its own heraldd (fork/exec, 127.0.0.1, a free port, stopped by PID) on the
# services fixture's PostgreSQL (its own database) and Redis (DB 8), and
# drives it with the C client's typed stubs. They also link herald_learning
# to run the outcome checkpoint job directly (outcomes.h), with the clock of
# their choosing.
#   test_learning_svc      integration: every RPC's happy path and errors,
#                          batch rejection, idempotency, NULL metrics, the
#                          job -> arms -> Recommend chain, cache invalidation,
#                          SetArmEnabled, recompute, trends, audience
#   sim_learning_svc       sim (only: 1-3 minutes on a busy 2-core machine, too slow for
#                          every integration run): >= 2,000 simulated posts through
#                          Recommend -> post -> RecordEngagement -> outcome job
#                          against a synthetic audience (learnsim.h); asserts
#                          >= 90 % of the oracle over the last 1,000 posts
#   bench_learning         bench: RecordEngagement (1 per call at 8-way
#                          concurrency; 500 per call), GetInsights cache hits
#                          beside Health/Check, Recommend p99; machine-readable
#                          last line
if(TARGET heraldd AND TARGET herald_client AND TARGET herald_learning AND CMOCKA_FOUND)
  function(herald_learning_program name src)
    add_executable(${name} ${src})
    target_link_libraries(${name} PRIVATE herald_client herald_learning herald_store herald_proto
                          herald_domain herald_common PkgConfig::CMOCKA Threads::Threads m)
    target_include_directories(${name} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/integration)
    target_compile_definitions(${name} PRIVATE HERALD_SOURCE_DIR="${CMAKE_SOURCE_DIR}"
                               HERALDD_BIN="$<TARGET_FILE:heraldd>")
    add_dependencies(${name} heraldd)
    herald_warnings(${name})
  endfunction()

  herald_learning_program(test_learning_svc
                          ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_learning_svc.c)
  add_test(NAME test_learning_svc COMMAND test_learning_svc)
  set_tests_properties(test_learning_svc PROPERTIES LABELS integration TIMEOUT 300
                       SKIP_RETURN_CODE 77 ENVIRONMENT "${HERALD_TEST_ENV}"
                       FIXTURES_REQUIRED services)

  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/sim/sim_learning_svc.c)
    herald_learning_program(sim_learning_svc ${CMAKE_CURRENT_SOURCE_DIR}/sim/sim_learning_svc.c)
    add_test(NAME sim_learning_svc COMMAND sim_learning_svc)
    set_tests_properties(sim_learning_svc PROPERTIES LABELS sim TIMEOUT 900
                         SKIP_RETURN_CODE 77 ENVIRONMENT "${HERALD_TEST_ENV}"
                         FIXTURES_REQUIRED services)
  endif()

  if(EXISTS ${CMAKE_SOURCE_DIR}/bench/bench_learning.c)
    herald_learning_program(bench_learning ${CMAKE_SOURCE_DIR}/bench/bench_learning.c)
    if(NOT SANITIZE)
      add_test(NAME bench_learning COMMAND bench_learning --report-only)
      set_tests_properties(bench_learning PROPERTIES LABELS bench TIMEOUT 600 RUN_SERIAL TRUE
                           SKIP_RETURN_CODE 77 ENVIRONMENT "${HERALD_TEST_ENV}"
                           FIXTURES_REQUIRED services)
    endif()
  endif()
endif()
