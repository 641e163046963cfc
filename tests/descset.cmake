# Descriptor-set index and server reflection (unit).
#
# Besides the embedded API set, the tests use a fixed set built from protos
# that do not change under us: google/protobuf/api.proto (imports type.proto
# and source_context.proto; type.proto imports any.proto and source_context:
# a diamond for the dependency walk), descriptor.proto (deeply nested types
# and enums) and the runtime's test service, all with source comments.
set(DESCSET_TEST_PB ${CMAKE_BINARY_DIR}/tests/descset_test.pb)
add_custom_command(
  OUTPUT ${DESCSET_TEST_PB}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/tests
  COMMAND ${PROTOC} -I/usr/include -I${CMAKE_SOURCE_DIR}/tests/proto
          --include_imports --include_source_info --descriptor_set_out=${DESCSET_TEST_PB}
          google/protobuf/api.proto google/protobuf/descriptor.proto herald/test/v1/test.proto
  DEPENDS ${CMAKE_SOURCE_DIR}/tests/proto/herald/test/v1/test.proto
  COMMENT "descriptor set for the descset tests"
  VERBATIM)
herald_embed(${HERALD_GEN_DIR}/descset_test_pb.c ${DESCSET_TEST_PB} descset_test_pb)
# One target owns the generated file, so parallel builds of both tests do not
# run the generator twice.
add_library(descset_test_data STATIC ${HERALD_GEN_DIR}/descset_test_pb.c)

herald_unit_test(test_descset
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_descset.c
  LIBS herald_common descset_test_data)

# reflection.c is compiled in directly and linked against a fake runtime
# (the rpc_* functions it calls are defined in the test), so the stream glue
# is tested without gRPC.
herald_unit_test(test_reflection
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_reflection.c
          ${CMAKE_SOURCE_DIR}/server/reflection.c
  LIBS herald_common herald_proto descset_test_data)
target_include_directories(test_reflection PRIVATE ${CMAKE_SOURCE_DIR}/server)
