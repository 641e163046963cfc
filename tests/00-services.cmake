# The `services` ctest fixture: a private PostgreSQL and Redis (tests/services.sh)
# started once before the tests that require it and stopped after them.
#
# This file is named 00-services.cmake so that tests/CMakeLists.txt includes it
# before every other tests/*.cmake: HERALD_TEST_ENV is defined when they read it.
# An integration test uses it as:
#   set_tests_properties(my_test PROPERTIES ENVIRONMENT "${HERALD_TEST_ENV}"
#                        FIXTURES_REQUIRED services)
# and then finds DATABASE_URL (database `herald`, superuser role `herald`, which
# may create its own databases), REDIS_URL (a unix socket; use your own DB number)
# and HERALD_TEST_SERVICES_DIR (its env file also names REDIS_HOST/REDIS_PORT for
# TCP, PGHOST, PGDATA, PG_BINDIR and both PIDs) in its environment.
set(HERALD_TEST_SERVICES_DIR ${CMAKE_BINARY_DIR}/test-services)
set(HERALD_TEST_ENV
    "DATABASE_URL=postgresql:///herald?host=${HERALD_TEST_SERVICES_DIR}/sock&user=herald"
    "REDIS_URL=unix://${HERALD_TEST_SERVICES_DIR}/sock/redis.sock"
    "HERALD_TEST_SERVICES_DIR=${HERALD_TEST_SERVICES_DIR}")

add_test(NAME services_up
         COMMAND ${CMAKE_SOURCE_DIR}/tests/services.sh up ${HERALD_TEST_SERVICES_DIR})
set_tests_properties(services_up PROPERTIES FIXTURES_SETUP services LABELS services
                     TIMEOUT 180)
add_test(NAME services_down
         COMMAND ${CMAKE_SOURCE_DIR}/tests/services.sh down ${HERALD_TEST_SERVICES_DIR})
set_tests_properties(services_down PROPERTIES FIXTURES_CLEANUP services LABELS services
                     TIMEOUT 120)

# tests/services.sh itself, on its own temp dir (scripts/services-selftest).
add_test(NAME services_selftest COMMAND ${CMAKE_SOURCE_DIR}/scripts/services-selftest)
set_tests_properties(services_selftest PROPERTIES LABELS integration TIMEOUT 180)
