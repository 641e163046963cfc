# ContentService end to end (issue 5): test_content_svc starts its own heraldd
# (fork/exec, 127.0.0.1, a free port, stopped by PID) on the services
# fixture's PostgreSQL (its own database) and Redis (DB 8), points heraldd's
# LLM provider at tests/fakes/fake_llm.c (a chat-completions server inside
# the test process) and drives every ContentService RPC with the C client.
#   ctest --test-dir build -R test_content_svc --output-on-failure
# (ctest starts and stops the services fixture itself.)
if(TARGET heraldd AND TARGET herald_client AND TARGET herald_store AND TARGET herald_domain
   AND CMOCKA_FOUND)
  add_executable(test_content_svc ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_content_svc.c
                                  ${CMAKE_CURRENT_SOURCE_DIR}/fakes/fake_llm.c)
  target_link_libraries(test_content_svc PRIVATE herald_client herald_store herald_domain
                        herald_proto herald_common PkgConfig::CMOCKA Threads::Threads m)
  target_include_directories(test_content_svc PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/integration
                             ${CMAKE_CURRENT_SOURCE_DIR}/fakes ${CMAKE_CURRENT_SOURCE_DIR}/unit)
  target_compile_definitions(test_content_svc PRIVATE HERALD_SOURCE_DIR="${CMAKE_SOURCE_DIR}"
                             HERALDD_BIN="$<TARGET_FILE:heraldd>"
                             HERALD_SEED_SQL="${CMAKE_SOURCE_DIR}/migrations/0001_catalog.up.sql")
  add_dependencies(test_content_svc heraldd)
  herald_warnings(test_content_svc)
  add_test(NAME test_content_svc COMMAND test_content_svc)
  set_tests_properties(test_content_svc PROPERTIES LABELS "integration;content" TIMEOUT 600
                       SKIP_RETURN_CODE 77 ENVIRONMENT "${HERALD_TEST_ENV}"
                       FIXTURES_REQUIRED services)
endif()
