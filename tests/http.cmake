# Outbound HTTP (server/http.c) and the LLM provider (server/llm.c), tested
# against tests/fakes/fake_llm.c: a scripted chat-completions server the
# tests run in-process on 127.0.0.1. Labelled "unit": loopback only.

add_library(fake_llm STATIC ${CMAKE_CURRENT_SOURCE_DIR}/fakes/fake_llm.c)
target_include_directories(fake_llm PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/fakes)
target_link_libraries(fake_llm PUBLIC herald_common Threads::Threads)
herald_warnings(fake_llm)

if(TARGET herald_http)
  herald_unit_test(test_http
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_http.c
    LIBS herald_http fake_llm)
endif()

# The LLM tests need llm.c inside herald_http (server/CMakeLists.txt).
set(HERALD_HTTP_HAS_LLM OFF)
if(TARGET herald_http)
  get_target_property(_http_srcs herald_http SOURCES)
  if(_http_srcs MATCHES "llm\\.c")
    set(HERALD_HTTP_HAS_LLM ON)
  endif()
endif()

if(HERALD_HTTP_HAS_LLM)
  herald_unit_test(test_llm_parse
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_llm_parse.c
    LIBS herald_http PkgConfig::JSONC)
endif()

if(HERALD_HTTP_HAS_LLM)
  herald_unit_test(test_llm
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_llm.c
    LIBS herald_http fake_llm PkgConfig::JSONC)
endif()

# The llm.* settings: config.c and log.c compiled in, as tests/config.cmake
# does, so no gRPC is needed.
if(HERALD_HTTP_HAS_LLM)
  herald_unit_test(test_llm_config
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_llm_config.c
            ${CMAKE_SOURCE_DIR}/server/config.c ${CMAKE_SOURCE_DIR}/server/log.c
    LIBS herald_http herald_common)
  target_include_directories(test_llm_config PRIVATE ${CMAKE_SOURCE_DIR}/server)
endif()
