# TimeSformer backbone: parity with the official VisionTransformer (divided space-time), and property tests.
bevt_add_parity_test(timesformer)
bevt_add_gtest(test_timesformer test_timesformer.cpp)
add_dependencies(test_timesformer timesformer)
