# The trainer through the real bevt-run on tiny generated data: pretrain → finetune → test → probe,
# kill-and-resume bit equality, divergence, and the optimiser's parameter groups.
set(BEVT_TEST_LABELS integration)  # runs the real binaries
bevt_add_gtest(test_trainer ${CMAKE_CURRENT_SOURCE_DIR}/test_trainer.cpp)
unset(BEVT_TEST_LABELS)
add_dependencies(test_trainer bevt-run bevt-test video_swin mim i3d standard_maskers synthetic dalle pixels)
bevt_add_gtest(test_optim_groups ${CMAKE_CURRENT_SOURCE_DIR}/test_optim_groups.cpp)
add_dependencies(test_optim_groups video_swin)
bevt_add_gtest(test_mim_metrics ${CMAKE_CURRENT_SOURCE_DIR}/test_mim_metrics.cpp)
