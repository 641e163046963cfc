# Store and cache tests (issue 4): integration tests against the `services`
# fixture's PostgreSQL and Redis, and fault tests that start their own private
# instances (tests/services.sh in a temp directory) because they kill, stop or
# pause them. Tests skip (exit 77) when DATABASE_URL / REDIS_URL are unset.
function(herald_store_test name)
  cmake_parse_arguments(A "PRIVATE" "TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  if(NOT A_TIMEOUT)
    set(A_TIMEOUT 120)
  endif()
  add_executable(${name} ${A_SOURCES})
  target_link_libraries(${name} PRIVATE ${A_LIBS} PkgConfig::CMOCKA Threads::Threads)
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests/integration)
  target_compile_definitions(${name} PRIVATE HERALD_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
  herald_warnings(${name})
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS "integration;${A_LABELS}"
                       TIMEOUT ${A_TIMEOUT} SKIP_RETURN_CODE 77
                       ENVIRONMENT "${HERALD_TEST_ENV}" FIXTURES_REQUIRED services)
  if(A_PRIVATE)
    # starts/stops its own PostgreSQL or Redis: keep it away from the others
    set_tests_properties(${name} PROPERTIES RUN_SERIAL TRUE)
  endif()
endfunction()

if(TARGET herald_store AND CMOCKA_FOUND)
  set(_it ${CMAKE_CURRENT_SOURCE_DIR}/integration)
  herald_store_test(test_db SOURCES ${_it}/test_db.c LIBS herald_store)
  if(EXISTS ${_it}/test_migrate.c)
    herald_store_test(test_migrate SOURCES ${_it}/test_migrate.c LIBS herald_store TIMEOUT 180)
  endif()
  if(EXISTS ${_it}/test_idem.c)
    herald_store_test(test_idem SOURCES ${_it}/test_idem.c LIBS herald_store)
  endif()
  if(EXISTS ${_it}/test_db_reconnect.c)
    herald_store_test(test_db_reconnect SOURCES ${_it}/test_db_reconnect.c LIBS herald_store
                      LABELS fault PRIVATE TIMEOUT 240)
  endif()
  if(TARGET herald_cache AND EXISTS ${_it}/test_cache.c)
    herald_store_test(test_cache SOURCES ${_it}/test_cache.c LIBS herald_cache herald_store
                      LABELS fault PRIVATE TIMEOUT 180)
  endif()
  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/fault/pg_write_load.c)
    herald_store_test(fault_pg_write_load SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fault/pg_write_load.c
                      LIBS herald_store LABELS fault PRIVATE TIMEOUT 600)
    # the control: synchronous_commit=off must make the same checker find a loss
    add_test(NAME fault_pg_write_load_control COMMAND fault_pg_write_load --sync-off)
    set_tests_properties(fault_pg_write_load_control PROPERTIES LABELS "integration;fault"
                         TIMEOUT 600 SKIP_RETURN_CODE 77 RUN_SERIAL TRUE
                         ENVIRONMENT "${HERALD_TEST_ENV}" FIXTURES_REQUIRED services)
  endif()
endif()

# Two heraldd processes migrating one empty database at once; a tampered
# checksum refuses (process level).
if(TARGET heraldd AND TARGET herald_store)
  add_test(NAME test_migrate_procs
           COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_migrate_procs.sh
                   $<TARGET_FILE:heraldd>)
  set_tests_properties(test_migrate_procs PROPERTIES LABELS integration TIMEOUT 180
                       SKIP_RETURN_CODE 77 ENVIRONMENT "${HERALD_TEST_ENV}"
                       FIXTURES_REQUIRED services)
endif()

# The background job runner shared by every periodic job (server/jobs.c).
if(TARGET herald_store AND CMOCKA_FOUND AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_jobs.c)
  herald_store_test(test_jobs SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_jobs.c
                    LIBS herald_store)
endif()
