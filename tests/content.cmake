# Content domain (issue 5): catalog, built-in generator, quality gates and
# near-duplicate detection. Unit tests over the real seed catalog
# (migrations/0001_catalog.up.sql) and the ValidateText table in tests/data.
# bench_generator is a benchmark executable, not a test:
#   build/bin/bench_generator [drafts]
if(TARGET herald_domain)
  set(HERALD_CONTENT_DEFS
      HERALD_SEED_SQL="${CMAKE_SOURCE_DIR}/migrations/0001_catalog.up.sql"
      HERALD_GATES_CASES="${CMAKE_CURRENT_SOURCE_DIR}/data/gates_cases.tsv")
  foreach(t test_catalog test_textsim test_gates test_generator test_generator_variety)
    herald_unit_test(${t} SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/${t}.c
                     LIBS herald_domain m LABELS content)
    target_include_directories(${t} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/unit)
    target_compile_definitions(${t} PRIVATE ${HERALD_CONTENT_DEFS})
  endforeach()

  add_executable(bench_generator ${CMAKE_SOURCE_DIR}/bench/bench_generator.c)
  target_link_libraries(bench_generator PRIVATE herald_domain m)
  target_include_directories(bench_generator PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/unit)
  target_compile_definitions(bench_generator PRIVATE ${HERALD_CONTENT_DEFS})
  herald_warnings(bench_generator)
endif()
