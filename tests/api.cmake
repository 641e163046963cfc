# The API contract (issue 2, item 6): checks over the herald.v1 descriptors
# and docs/api.md (test_api), and the service structs the server registers
# (test_api_svc).
herald_unit_test(test_api SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_api.c
                 LIBS herald_proto)
target_include_directories(test_api PRIVATE ${CMAKE_SOURCE_DIR}/server)
target_compile_definitions(test_api PRIVATE HERALD_API_DOC="${CMAKE_SOURCE_DIR}/docs/api.md")

# svc_*.c grow handlers that call the runtime, domain, store, http and cache
# modules: build the test from what heraldd is made of (but main.c) and link
# what heraldd links, so the two never drift apart.
if(TARGET heraldd)
  get_target_property(_api_srcs heraldd SOURCES)
  get_target_property(_api_libs heraldd LINK_LIBRARIES)
  set(API_SVC_SRCS)
  foreach(src IN LISTS _api_srcs)
    if(NOT IS_ABSOLUTE ${src})
      set(src ${CMAKE_SOURCE_DIR}/server/${src})
    endif()
    if(NOT src MATCHES "/main\\.c$")
      list(APPEND API_SVC_SRCS ${src})
    endif()
  endforeach()
  herald_unit_test(test_api_svc SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_api_svc.c
                   ${API_SVC_SRCS} LIBS herald_proto ${_api_libs})
  target_include_directories(test_api_svc PRIVATE ${CMAKE_SOURCE_DIR}/server)
  target_compile_definitions(test_api_svc PRIVATE HERALD_VERSION="${PROJECT_VERSION}"
                             HERALD_COMMIT="${HERALD_COMMIT}" HERALD_BUILD="test")
endif()
