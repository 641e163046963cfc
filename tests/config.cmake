# Configuration, logging and heraldd lifecycle tests.
# The unit tests compile config.c and log.c directly (no gRPC, no network),
# so they build even while the rpc runtime is being written.
set(HERALD_SERVER_DIR ${CMAKE_SOURCE_DIR}/server)

herald_unit_test(test_config
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_config.c
          ${HERALD_SERVER_DIR}/config.c ${HERALD_SERVER_DIR}/log.c
  LIBS herald_common)
target_include_directories(test_config PRIVATE ${HERALD_SERVER_DIR})

herald_unit_test(test_log
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_log.c ${HERALD_SERVER_DIR}/log.c
  LIBS herald_common PkgConfig::JSONC Threads::Threads)
target_include_directories(test_log PRIVATE ${HERALD_SERVER_DIR})
