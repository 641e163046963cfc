# OpsService's operator view end to end (issue 8): GetStatus, GetSloReport,
# ListSlowQueries, GetConfig, /metrics deltas against what the clients saw
# (promtool clean), the kill switch, and the memory manager under a batch
# ingest load, each through a real heraldd (tests/integration/test_ops_svc.c).
#   test_ops_svc   integration: the services fixture's PostgreSQL (its own
#                  database) and Redis (DB 6); needs promtool (Debian
#                  `prometheus`, scripts/deps).
# And the 5-minute soak (bench/soak.c, label "soak"): a private PostgreSQL and
# Redis (tests/services.sh in a temp dir), heraldd under a fixed mixed load,
# RSS/fds/threads sampled. Not part of the default run: it is registered for
# the `soak` configuration only:
#   ctest -C soak -L soak --output-on-failure
if(TARGET heraldd AND TARGET herald_client AND TARGET herald_store AND CMOCKA_FOUND)
  add_executable(test_ops_svc ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_ops_svc.c)
  target_link_libraries(test_ops_svc PRIVATE herald_client herald_store herald_proto
                        herald_common PkgConfig::CMOCKA Threads::Threads m)
  target_include_directories(test_ops_svc PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/integration)
  target_compile_definitions(test_ops_svc PRIVATE HERALD_SOURCE_DIR="${CMAKE_SOURCE_DIR}"
                             HERALDD_BIN="$<TARGET_FILE:heraldd>")
  add_dependencies(test_ops_svc heraldd)
  herald_warnings(test_ops_svc)
  add_test(NAME test_ops_svc COMMAND test_ops_svc)
  set_tests_properties(test_ops_svc PROPERTIES LABELS integration TIMEOUT 300
                       SKIP_RETURN_CODE 77 ENVIRONMENT "${HERALD_TEST_ENV}"
                       FIXTURES_REQUIRED services)

  if(EXISTS ${CMAKE_SOURCE_DIR}/bench/soak.c)
    add_executable(soak ${CMAKE_SOURCE_DIR}/bench/soak.c)
    target_link_libraries(soak PRIVATE herald_client herald_store herald_proto herald_common
                          Threads::Threads m)
    target_include_directories(soak PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/integration)
    target_compile_definitions(soak PRIVATE HERALD_SOURCE_DIR="${CMAKE_SOURCE_DIR}"
                               HERALDD_BIN="$<TARGET_FILE:heraldd>")
    add_dependencies(soak heraldd)
    herald_warnings(soak)
    add_test(NAME soak COMMAND soak CONFIGURATIONS soak)
    set_tests_properties(soak PROPERTIES LABELS soak TIMEOUT 600 RUN_SERIAL TRUE)
  endif()
endif()
