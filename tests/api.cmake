# The API contract (issue 2, item 6): checks over the herald.v1 descriptors
# and docs/api.md (test_api), and the service structs the server registers
# (test_api_svc).
herald_unit_test(test_api SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_api.c
                 LIBS herald_proto)
target_include_directories(test_api PRIVATE ${CMAKE_SOURCE_DIR}/server)
target_compile_definitions(test_api PRIVATE HERALD_API_DOC="${CMAKE_SOURCE_DIR}/docs/api.md")

# svc_*.c grow handlers that call the runtime, domain, store, http and cache
# modules: link whichever of them exist, as heraldd does.
file(GLOB API_SVC_SRCS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/server/svc_*.c)
herald_unit_test(test_api_svc SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_api_svc.c
                 ${API_SVC_SRCS} LIBS herald_proto)
target_include_directories(test_api_svc PRIVATE ${CMAKE_SOURCE_DIR}/server)
foreach(lib herald_handler herald_rpc herald_domain herald_store herald_http herald_cache)
  if(TARGET ${lib})
    target_link_libraries(test_api_svc PRIVATE ${lib})
  endif()
endforeach()
