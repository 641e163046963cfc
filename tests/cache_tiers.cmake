# The cache tiers in front of PostgreSQL (issue 6): the in-process copy of
# Redis hits (cache/lcache.h) and the cache versions kept in memory by
# LISTEN/NOTIFY (server/vercache.h, migration 0007).
#   test_lcache          unit: byte bound, expiry, LRU eviction
#   test_vercache        unit: trust, max-merge, reads racing forgets,
#                        notifications and resets, the entry cap, payloads
#   test_cache_versions  integration: two heraldd on one database; a write on
#                        one is read at once there and within 2 s on the
#                        other; reads served from the map; listener backends
#                        killed: correct reads, both subscribe again
#   test_pgbouncer_versions  integration: heraldd behind a private pgbouncer
#                        (transaction pooling): its map is never trusted and
#                        reads direct writes at once; a direct one trusts
if(TARGET herald_cache AND CMOCKA_FOUND)
  herald_unit_test(test_lcache SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_lcache.c
                   LIBS herald_cache herald_common)
endif()
if(TARGET herald_store AND CMOCKA_FOUND)
  herald_unit_test(test_vercache SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_vercache.c
                   LIBS herald_store herald_common)
endif()
if(TARGET heraldd AND TARGET herald_client AND TARGET herald_learning AND CMOCKA_FOUND)
  foreach(t test_cache_versions test_pgbouncer_versions)
    add_executable(${t} ${CMAKE_CURRENT_SOURCE_DIR}/integration/${t}.c)
    target_link_libraries(${t} PRIVATE herald_client herald_learning herald_store herald_proto
                          herald_domain herald_common PkgConfig::CMOCKA Threads::Threads m)
    target_include_directories(${t} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/integration)
    target_compile_definitions(${t} PRIVATE HERALD_SOURCE_DIR="${CMAKE_SOURCE_DIR}"
                               HERALDD_BIN="$<TARGET_FILE:heraldd>")
    add_dependencies(${t} heraldd)
    herald_warnings(${t})
    add_test(NAME ${t} COMMAND ${t})
    set_tests_properties(${t} PROPERTIES LABELS integration TIMEOUT 300
                         SKIP_RETURN_CODE 77 ENVIRONMENT "${HERALD_TEST_ENV}"
                         FIXTURES_REQUIRED services)
  endforeach()
endif()
