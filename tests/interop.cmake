# Interop tests (label `interop`): Debian's /usr/bin/python3 with grpcio and Node
# @grpc/grpc-js call rpc_testd and heraldd, each test starting its own server on
# 127.0.0.1 with a free port and stopping it by PID. Sources: tests/interop/.
# The binaries are found in ${CMAKE_BINARY_DIR}/bin (HERALD_BIN_DIR); a test
# whose binary is not built fails and says so.
set(INTEROP_DIR ${CMAKE_CURRENT_SOURCE_DIR}/interop)
set(INTEROP_PYTHON /usr/bin/python3) # python3-grpcio exists only for Debian's python
find_program(HERALD_NODE NAMES node nodejs)
set(INTEROP_ENV "HERALD_BIN_DIR=${CMAKE_BINARY_DIR}/bin" "PYTHONDONTWRITEBYTECODE=1")

# herald_interop_test(<name> <timeout_s> [SERVICES] COMMAND <argv...>)
function(herald_interop_test name timeout)
  cmake_parse_arguments(A "SERVICES;NODE" "" "COMMAND" ${ARGN})
  add_test(NAME ${name} COMMAND ${A_COMMAND} WORKING_DIRECTORY ${INTEROP_DIR})
  set(env ${INTEROP_ENV})
  set(fixtures)
  if(A_SERVICES)
    list(APPEND env ${HERALD_TEST_ENV})
    list(APPEND fixtures services)
  endif()
  if(A_NODE)
    list(APPEND fixtures interop_node)
  endif()
  set_tests_properties(${name} PROPERTIES LABELS interop TIMEOUT ${timeout}
                       ENVIRONMENT "${env}")
  if(fixtures)
    set_tests_properties(${name} PROPERTIES FIXTURES_REQUIRED "${fixtures}")
  endif()
endfunction()

herald_interop_test(interop_py_rpc 180 COMMAND ${INTEROP_PYTHON} ${INTEROP_DIR}/test_py_rpc.py)
herald_interop_test(interop_py_shutdown 180
                    COMMAND ${INTEROP_PYTHON} ${INTEROP_DIR}/test_py_shutdown.py)
herald_interop_test(interop_py_heraldd 600 SERVICES
                    COMMAND ${INTEROP_PYTHON} ${INTEROP_DIR}/test_py_heraldd.py)

if(HERALD_NODE)
  # node_modules come from `npm ci` (scripts/deps does it too); this fixture
  # installs them when missing or older than package-lock.json.
  add_test(NAME interop_npm_ci
           COMMAND sh -c "if [ -d node_modules ] && [ ! package-lock.json -nt node_modules/.package-lock.json ]; then echo 'node_modules up to date'; else npm ci --no-audit --no-fund --loglevel=error; fi"
           WORKING_DIRECTORY ${INTEROP_DIR})
  set_tests_properties(interop_npm_ci PROPERTIES FIXTURES_SETUP interop_node
                       LABELS interop TIMEOUT 600)
  herald_interop_test(interop_node_rpc 180 NODE
                      COMMAND ${HERALD_NODE} --test ${INTEROP_DIR}/node_rpc.test.js)
  herald_interop_test(interop_node_heraldd 600 NODE SERVICES
                      COMMAND ${HERALD_NODE} --test ${INTEROP_DIR}/node_heraldd.test.js)
else()
  message(WARNING "node not found: the Node interop tests are not registered (run scripts/deps)")
endif()
