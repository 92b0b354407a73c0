# The linear probe on a tokenizer's targets (run.mode = "token_probe", issue #18): the closed-form ridge and its
# leave-one-out shortcut (unit), and the mode through the real bevt-run and bevt-report (integration).
bevt_add_gtest(test_ridge_probe ${CMAKE_CURRENT_SOURCE_DIR}/test_ridge_probe.cpp)
set(BEVT_TEST_LABELS integration)  # runs the real binaries
bevt_add_gtest(test_token_probe ${CMAKE_CURRENT_SOURCE_DIR}/test_token_probe.cpp)
unset(BEVT_TEST_LABELS)
add_dependencies(test_token_probe bevt-run bevt-report synthetic hog vq)
