# Plan files (core/src/host/orchestrate/): the reader, its errors and the checks made before any stage runs.
# Nothing trains here; plans that run their stages are in ablations.cmake and timesformer_bevt.cmake.
bevt_add_gtest(test_plan ${CMAKE_CURRENT_SOURCE_DIR}/test_plan.cpp)
