# The fuzz targets of tests/fuzz/ (included by tests/security.cmake).
#
# Each target is one source defining LLVMFuzzerTestOneInput. Two builds:
#   - HERALD_FUZZ=ON (tests/fuzz/run.sh: clang, SANITIZE=address,undefined,
#     fuzzer-no-link): <name> linked with -fsanitize=fuzzer, run by run.sh.
#   - otherwise: <name>_replay linked with replay_main.c, and a ctest
#     fuzz_replay_<name> (labels unit, security) that feeds it every seed of
#     tests/fuzz/corpus/<name>/ once, so the normal and sanitizer builds keep
#     the targets compiling and the seeds passing.
set(FUZZ_DIR ${CMAKE_CURRENT_LIST_DIR})
set(FUZZ_TARGETS)

# herald_fuzz_target(<name> SOURCES <files...> LIBS <libs...>)
function(herald_fuzz_target name)
  cmake_parse_arguments(A "" "" "SOURCES;LIBS" ${ARGN})
  if(HERALD_FUZZ)
    set(exe ${name})
    add_executable(${exe} ${FUZZ_DIR}/${name}.c ${A_SOURCES})
    target_compile_options(${exe} PRIVATE -fsanitize=fuzzer)
    target_link_options(${exe} PRIVATE -fsanitize=fuzzer)
  else()
    set(exe ${name}_replay)
    add_executable(${exe} ${FUZZ_DIR}/${name}.c ${FUZZ_DIR}/replay_main.c ${A_SOURCES})
    add_test(NAME fuzz_replay_${name} COMMAND ${exe} ${FUZZ_DIR}/corpus/${name})
    set_tests_properties(fuzz_replay_${name} PROPERTIES LABELS "unit;security" TIMEOUT 300)
  endif()
  target_include_directories(${exe} PRIVATE ${FUZZ_DIR} ${CMAKE_SOURCE_DIR}/server)
  target_link_libraries(${exe} PRIVATE ${A_LIBS})
  herald_warnings(${exe})
  set(FUZZ_TARGETS ${FUZZ_TARGETS} ${exe} PARENT_SCOPE)
endfunction()

herald_fuzz_target(fuzz_reflection LIBS herald_rpc)
herald_fuzz_target(fuzz_config LIBS herald_rpc)
herald_fuzz_target(fuzz_pbjson LIBS herald_json herald_registry)
if(TARGET herald_http)
  herald_fuzz_target(fuzz_llm_parse LIBS herald_http)
endif()
if(TARGET herald_handler)
  herald_fuzz_target(fuzz_auth LIBS herald_handler)
  herald_fuzz_target(fuzz_descset LIBS herald_handler)
endif()

# Handlers with a fake per-call runtime (fake_rpc.c) instead of rpc.c: what
# heraldd is made of but main.c, and what it links. The fake defines every
# per-call rpc_* function (and the server figures handlers read); when some
# module also needs rpc.o (ops_status reads rpc_server_stats), the linker
# pulls it in and --allow-multiple-definition keeps the first definition of
# each duplicate, the fake's (objects come before archives), so a new
# runtime call in a handler never breaks this link.
if(TARGET heraldd)
  get_target_property(heraldd_srcs heraldd SOURCES)
  get_target_property(heraldd_libs heraldd LINK_LIBRARIES)
  set(fuzz_request_srcs)
  foreach(src IN LISTS heraldd_srcs)
    if(NOT IS_ABSOLUTE ${src})
      set(src ${CMAKE_SOURCE_DIR}/server/${src})
    endif()
    if(NOT src MATCHES "/main\\.c$")
      list(APPEND fuzz_request_srcs ${src})
    endif()
  endforeach()
  list(REMOVE_ITEM heraldd_libs herald_rpc)
  herald_fuzz_target(fuzz_request SOURCES ${FUZZ_DIR}/fake_rpc.c ${fuzz_request_srcs}
    LIBS ${heraldd_libs} herald_rpc herald_proto herald_common PkgConfig::JSONC Threads::Threads)
  if(HERALD_FUZZ)
    target_link_options(fuzz_request PRIVATE -Wl,--allow-multiple-definition)
  else()
    target_link_options(fuzz_request_replay PRIVATE -Wl,--allow-multiple-definition)
  endif()
endif()

add_custom_target(fuzz_all DEPENDS ${FUZZ_TARGETS})
