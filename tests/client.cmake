# The client library, the JSON mapping and the herald CLI (client/).
#   unit: test_json (proto3 JSON mapping over every API message and the test
#         messages in tests/cli/proto).
#   e2e:  test_client (the C library and its typed stubs against rpc_testd
#         and heraldd) and the CLI tests in tests/cli/ (the herald binary).
# The e2e tests start their own servers on 127.0.0.1 with free ports and stop
# them by PID.

# Test messages: proto3 with maps of every key type and all well-known types,
# proto2 optionals. Generated into their own directory.
set(CLITEST_GEN ${CMAKE_BINARY_DIR}/tests/client_gen)
set(CLITEST_PROTO_ROOT ${CMAKE_SOURCE_DIR}/tests/cli/proto)
set(clitest_srcs)
foreach(p herald/clitest/v1/json3.proto herald/clitest/v1/json2.proto)
  string(REGEX REPLACE "\\.proto$" "" stem ${p})
  add_custom_command(
    OUTPUT ${CLITEST_GEN}/${stem}.pb-c.c ${CLITEST_GEN}/${stem}.pb-c.h
    COMMAND ${CMAKE_COMMAND} -E make_directory ${CLITEST_GEN}
    COMMAND ${PROTOC_C} -I${CLITEST_PROTO_ROOT} -I/usr/include --c_out=${CLITEST_GEN} ${p}
    WORKING_DIRECTORY ${CLITEST_PROTO_ROOT}
    DEPENDS ${CLITEST_PROTO_ROOT}/${p}
    COMMENT "protoc-c ${p} (client tests)"
    VERBATIM)
  list(APPEND clitest_srcs ${CLITEST_GEN}/${stem}.pb-c.c)
endforeach()
# Well-known types the API does not use (so herald_proto lacks them).
get_target_property(herald_proto_srcs herald_proto SOURCES)
foreach(w struct wrappers empty)
  if(NOT "${HERALD_GEN_DIR}/google/protobuf/${w}.pb-c.c" IN_LIST herald_proto_srcs)
    add_custom_command(
      OUTPUT ${CLITEST_GEN}/google/protobuf/${w}.pb-c.c ${CLITEST_GEN}/google/protobuf/${w}.pb-c.h
      COMMAND ${CMAKE_COMMAND} -E make_directory ${CLITEST_GEN}
      COMMAND ${PROTOC_C} -I/usr/include --c_out=${CLITEST_GEN} google/protobuf/${w}.proto
      WORKING_DIRECTORY /usr/include
      COMMENT "protoc-c google/protobuf/${w}.proto (client tests)"
      VERBATIM)
    list(APPEND clitest_srcs ${CLITEST_GEN}/google/protobuf/${w}.pb-c.c)
  endif()
endforeach()
add_library(clitest_proto STATIC ${clitest_srcs})
target_include_directories(clitest_proto PUBLIC ${CLITEST_GEN})
target_link_libraries(clitest_proto PUBLIC herald_proto)

herald_unit_test(test_json SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_json.c
                 LIBS herald_json herald_registry clitest_proto)
herald_unit_test(test_client_cli SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_client_cli.c
                 LIBS herald_cli clitest_proto)

# The C library end to end: its own rpc_testd (plaintext and TLS) on
# 127.0.0.1, the typed stubs over TestService's generated wrappers.
if(TARGET rpc_testd OR EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/rpc_testd.c)
  add_executable(test_client ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_client.c)
  target_link_libraries(test_client PRIVATE herald_client herald_common herald_proto
                        rpc_test_proto PkgConfig::CMOCKA)
  target_compile_definitions(test_client PRIVATE RPC_TESTD_BIN="$<TARGET_FILE:rpc_testd>")
  add_dependencies(test_client rpc_testd)
  herald_warnings(test_client)
  add_test(NAME test_client COMMAND test_client)
  set_tests_properties(test_client PROPERTIES LABELS e2e TIMEOUT 180)
endif()

# The herald binary end to end (tests/cli/test_cli.py, Debian's python3 for
# python3-grpcio): exit codes, -d @file/@-, health, describe, completion.
add_test(NAME test_cli COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/cli/test_cli.py)
set_tests_properties(test_cli PROPERTIES LABELS e2e TIMEOUT 600
                     ENVIRONMENT "HERALD_BIN_DIR=${CMAKE_BINARY_DIR}/bin;PYTHONDONTWRITEBYTECODE=1")

# The installed client (component "client") builds and runs a program of its
# own with only pkg-config's flags.
add_test(NAME test_client_install
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/cli/install_check.sh ${CMAKE_BINARY_DIR})
set_tests_properties(test_client_install PROPERTIES LABELS e2e TIMEOUT 300)
