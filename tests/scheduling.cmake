# Scheduling domain (issue 7): time zones, posting policy, slots, leases,
# reply opportunities. Pure C, no services: label unit.
herald_unit_test(test_tz SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_tz.c
                 LIBS herald_common Threads::Threads)
herald_unit_test(test_policy SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_policy.c
                 LIBS herald_domain herald_common)
herald_unit_test(test_slots SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_slots.c
                 LIBS herald_domain herald_common m)
herald_unit_test(test_lease SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_lease.c
                 LIBS herald_domain herald_common)
herald_unit_test(test_replyopp SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_replyopp.c
                 LIBS herald_domain herald_common m)
