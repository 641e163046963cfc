# The learning domain (issue 6): sampling, reward, bandit, best times,
# sentiment, trends (unit tests over herald_domain), the closed-loop
# simulation (tests/sim, label "sim" as well as "unit") and the Recommend
# benchmark (label "bench", not run under sanitizers).
if(TARGET herald_domain)
  herald_unit_test(bench_recommend SOURCES ${CMAKE_SOURCE_DIR}/bench/bench_recommend.c
                   LIBS herald_domain LABELS bench)
  set_tests_properties(bench_recommend PROPERTIES LABELS "bench")
endif()
