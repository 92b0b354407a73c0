# The standard maskers (plugins/maskers/standard_maskers): statistics, determinism, errors.
bevt_add_gtest(test_maskers ${CMAKE_CURRENT_SOURCE_DIR}/test_maskers.cpp)
add_dependencies(test_maskers standard_maskers)
