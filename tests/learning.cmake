# The learning domain (issue 6): sampling, reward, bandit, best times,
# sentiment, trends (unit tests over herald_domain), the closed-loop
# simulation (tests/sim, labels "unit" and "sim") and the Recommend
# benchmark (label "bench" only: timing is not a unit test, and it is not
# registered under sanitizers).
if(TARGET herald_domain)
  foreach(t test_sampling test_reward test_bandit test_besttimes test_sentiment test_trends)
    if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/unit/${t}.c)
      herald_unit_test(${t} SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/${t}.c LIBS herald_domain)
    endif()
  endforeach()
  if(TARGET test_sentiment)
    target_compile_definitions(test_sentiment PRIVATE
                               HERALD_TEST_DATA_DIR="${CMAKE_CURRENT_SOURCE_DIR}/data")
  endif()

  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/sim/sim_learning.c)
    herald_unit_test(sim_learning SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/sim/sim_learning.c
                     LIBS herald_domain LABELS sim)
    set_tests_properties(sim_learning PROPERTIES TIMEOUT 60)
  endif()

  add_executable(bench_recommend ${CMAKE_SOURCE_DIR}/bench/bench_recommend.c)
  target_link_libraries(bench_recommend PRIVATE herald_domain)
  herald_warnings(bench_recommend)
  if(NOT SANITIZE)
    add_test(NAME bench_recommend COMMAND bench_recommend 2000 --report-only)
    set_tests_properties(bench_recommend PROPERTIES LABELS "bench" TIMEOUT 120)
  endif()
endif()
