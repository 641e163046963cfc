# The rpc runtime and health: rpc_testd (the test server the interop tests
# drive), unit tests of the runtime's pure parts, and an in-process loopback
# test (a small C gRPC client against the runtime on 127.0.0.1). All "unit":
# loopback only, no services.

# herald.test.v1 (protoc-c) and the descriptor set rpc_testd serves from:
# test.proto, health.proto and both reflection protos with their imports.
set(RPC_TEST_GEN)
herald_protoc_c(RPC_TEST_GEN ROOT ${CMAKE_SOURCE_DIR}/tests/proto PROTOS herald/test/v1/test.proto)
set(RPC_TEST_PB ${CMAKE_BINARY_DIR}/tests/rpc_test.pb)
add_custom_command(
  OUTPUT ${RPC_TEST_PB}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/tests
  COMMAND ${PROTOC} -I${CMAKE_SOURCE_DIR}/tests/proto -I/usr/share/grpc-proto -I/usr/include
          --include_imports --include_source_info --descriptor_set_out=${RPC_TEST_PB}
          herald/test/v1/test.proto grpc/health/v1/health.proto
          grpc/reflection/v1/reflection.proto grpc/reflection/v1alpha/reflection.proto
  DEPENDS ${CMAKE_SOURCE_DIR}/tests/proto/herald/test/v1/test.proto
  COMMENT "descriptor set rpc_test.pb"
  VERBATIM)
herald_embed(${HERALD_GEN_DIR}/rpc_test_descset.c ${RPC_TEST_PB} rpc_test_descset)

# One target owns the generated files so parallel builds generate them once.
add_library(rpc_test_proto STATIC ${RPC_TEST_GEN} ${HERALD_GEN_DIR}/rpc_test_descset.c)
target_include_directories(rpc_test_proto PUBLIC ${HERALD_GEN_DIR})
target_link_libraries(rpc_test_proto PUBLIC PkgConfig::PROTOBUFC)

# The test service as a library for the loopback test (no main).
add_library(rpc_testsvc STATIC ${CMAKE_CURRENT_SOURCE_DIR}/rpc_testd.c)
target_compile_definitions(rpc_testsvc PRIVATE RPC_TESTD_LIBRARY)
target_include_directories(rpc_testsvc PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(rpc_testsvc PUBLIC herald_rpc rpc_test_proto)
herald_warnings(rpc_testsvc)

add_executable(rpc_testd ${CMAKE_CURRENT_SOURCE_DIR}/rpc_testd.c)
target_link_libraries(rpc_testd PRIVATE herald_rpc rpc_test_proto)
herald_warnings(rpc_testd)
if(EXISTS ${CMAKE_SOURCE_DIR}/server/reflection.c)
  target_compile_definitions(rpc_testsvc PRIVATE HAVE_REFLECTION)
  target_compile_definitions(rpc_testd PRIVATE HAVE_REFLECTION)
endif()

herald_unit_test(test_rpc_pure
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_rpc_pure.c
  LIBS herald_rpc)

herald_unit_test(test_rpc_loopback
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_rpc_loopback.c
  LIBS rpc_testsvc herald_rpc)
set_tests_properties(test_rpc_loopback PROPERTIES TIMEOUT 180)

# The same loopback test under valgrind (label "valgrind", not "unit": about
# a minute): the runtime, health and the test service over 1,000+ calls and
# three graceful shutdowns must lose nothing ("definitely lost" fails it).
find_program(VALGRIND valgrind)
if(VALGRIND AND NOT SANITIZE)
  add_test(NAME test_rpc_loopback_valgrind
           COMMAND ${VALGRIND} --leak-check=full --errors-for-leak-kinds=definite
                   --error-exitcode=3 $<TARGET_FILE:test_rpc_loopback>)
  set_tests_properties(test_rpc_loopback_valgrind PROPERTIES LABELS valgrind TIMEOUT 1200
                       ENVIRONMENT "HERALD_TEST_TIME_SCALE=20")
endif()
