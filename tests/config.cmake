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

# heraldd end to end: exits and messages, --print-config, Health/Check via
# Debian's grpcio, SIGHUP reload, SIGTERM drain, second signal, bind failure.
if(TARGET heraldd)
  add_test(NAME daemon_lifecycle
           COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_config_daemon.py
                   $<TARGET_FILE:heraldd>)
  set_tests_properties(daemon_lifecycle PROPERTIES LABELS "e2e;interop" TIMEOUT 120)
endif()
