# BEVT with TimeSformer: the MIM heads' tokens decoder on a one-scale backbone, pre-training with both streams
# through the real bevt-run, and the plan variants (the quickstart with TimeSformer through one --set).
set(BEVT_TEST_LABELS integration)  # runs the real binaries
bevt_add_gtest(test_timesformer_bevt ${CMAKE_CURRENT_SOURCE_DIR}/test_timesformer_bevt.cpp)
unset(BEVT_TEST_LABELS)
add_dependencies(test_timesformer_bevt bevt-run timesformer video_swin mim standard_maskers synthetic dalle vq)
