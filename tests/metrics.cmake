# The operator's view (server/metrics.c, procstat.c, memwatch.c; issue 8).
#   unit:        test_metrics (exposition writer and families, promtool over
#                synthetic text), test_procstat (/proc parsers and live
#                figures), test_memwatch (state machine, hysteresis, shedding,
#                admission), test_memwatch_rpc (loopback: an expensive method
#                refused with RESOURCE_EXHAUSTED over the limit while a cheap
#                one and health answer).
#   integration: test_metrics_http (the admin listener over real HTTP against a
#                real rpc_server: metric deltas = what the client observed per
#                method and code, started - handled = in flight, promtool
#                clean, /healthz, /readyz, 404/405; plus db_* and cache_*
#                against the services fixture).
# promtool comes from Debian's `prometheus` package: the tests fail without it.
if(TARGET herald_admin)
  herald_unit_test(test_metrics SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_metrics.c
                   LIBS herald_admin m)
  herald_unit_test(test_procstat SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_procstat.c
                   LIBS herald_admin)
  herald_unit_test(test_memwatch SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_memwatch.c
                   LIBS herald_admin)
  # rpc.cmake (which defines rpc_testsvc) is included after this file.
  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/rpc_testd.c AND TARGET herald_client)
    herald_unit_test(test_memwatch_rpc
      SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_memwatch_rpc.c
      LIBS herald_admin rpc_testsvc herald_client)
    add_executable(test_metrics_http ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_metrics_http.c)
    target_link_libraries(test_metrics_http PRIVATE herald_admin rpc_testsvc herald_client
                          PkgConfig::CMOCKA)
    herald_warnings(test_metrics_http)
    add_test(NAME test_metrics_http COMMAND test_metrics_http)
    set_tests_properties(test_metrics_http PROPERTIES LABELS integration TIMEOUT 180
                         ENVIRONMENT "${HERALD_TEST_ENV}" FIXTURES_REQUIRED services)
  endif()
endif()
