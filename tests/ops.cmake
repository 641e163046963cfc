# OpsService profiles end to end (issue 4 items 6-7) and the heraldd-level
# fault tests. Each test starts its own heraldd (fork/exec, 127.0.0.1, a free
# port, stopped by PID) and drives it with the C client library.
#   test_profiles         integration: the services fixture's PostgreSQL
#                         (its own database) and Redis (DB 7)
#   fault_heraldd_pg      integration;fault: a private PostgreSQL killed with
#                         `pg_ctl -m immediate stop` and restarted 3 times
#                         under a CreateProfile/UpdateProfile load
#   fault_heraldd_pg_control  the same with synchronous_commit=off: the
#                         checker must find a lost acknowledged write
#   fault_heraldd_redis   integration;fault: Redis stopped, then SIGSTOPped,
#                         under a GetProfile load
# The fault tests start their own PostgreSQL/Redis (tests/services.sh in a
# temp dir) and run serially.
if(TARGET heraldd AND TARGET herald_client AND TARGET herald_store AND CMOCKA_FOUND)
  function(herald_heraldd_test name src)
    cmake_parse_arguments(A "FAULT" "TIMEOUT" "ARGS" ${ARGN})
    add_executable(${name} ${src})
    target_link_libraries(${name} PRIVATE herald_client herald_store herald_proto herald_common
                          PkgConfig::CMOCKA Threads::Threads)
    target_include_directories(${name} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/integration)
    target_compile_definitions(${name} PRIVATE HERALD_SOURCE_DIR="${CMAKE_SOURCE_DIR}"
                               HERALDD_BIN="$<TARGET_FILE:heraldd>")
    add_dependencies(${name} heraldd)
    herald_warnings(${name})
  endfunction()

  herald_heraldd_test(test_profiles ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_profiles.c)
  add_test(NAME test_profiles COMMAND test_profiles)
  set_tests_properties(test_profiles PROPERTIES LABELS integration TIMEOUT 300
                       SKIP_RETURN_CODE 77 ENVIRONMENT "${HERALD_TEST_ENV}"
                       FIXTURES_REQUIRED services)

  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/fault/heraldd_pg_crash.c)
    herald_heraldd_test(fault_heraldd_pg ${CMAKE_CURRENT_SOURCE_DIR}/fault/heraldd_pg_crash.c)
    add_test(NAME fault_heraldd_pg COMMAND fault_heraldd_pg)
    add_test(NAME fault_heraldd_pg_control COMMAND fault_heraldd_pg --sync-off)
    set_tests_properties(fault_heraldd_pg fault_heraldd_pg_control PROPERTIES
                         LABELS "integration;fault" TIMEOUT 600 SKIP_RETURN_CODE 77 RUN_SERIAL TRUE
                         ENVIRONMENT "${HERALD_TEST_ENV}" FIXTURES_REQUIRED services)
  endif()
  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/fault/heraldd_redis.c)
    herald_heraldd_test(fault_heraldd_redis ${CMAKE_CURRENT_SOURCE_DIR}/fault/heraldd_redis.c)
    add_test(NAME fault_heraldd_redis COMMAND fault_heraldd_redis)
    set_tests_properties(fault_heraldd_redis PROPERTIES LABELS "integration;fault" TIMEOUT 600
                         SKIP_RETURN_CODE 77 RUN_SERIAL TRUE ENVIRONMENT "${HERALD_TEST_ENV}"
                         FIXTURES_REQUIRED services)
  endif()
endif()

# The handler toolkit's pure parts (page tokens, catalog keys, ids, enum
# spellings, Timestamps): a unit test, no network.
if(TARGET herald_handler)
  herald_unit_test(test_profiles_toolkit
                   SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_profiles_toolkit.c
                   LIBS herald_handler)
endif()
