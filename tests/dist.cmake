# Distributed training (issue 7), Gloo with 2 processes: launch variables (torchrun, Slurm), the bucketed
# gradient all-reduce against hand-computed means, and real bevt-run runs: 2 ranks x batch b = 1 process x 2b,
# launches through the torchrun variables and --nproc, a killed or stopped worker, rendezvous errors.
set(BEVT_TEST_LABELS integration)  # runs the real binaries
bevt_add_gtest(test_dist ${CMAKE_CURRENT_SOURCE_DIR}/test_dist.cpp)
unset(BEVT_TEST_LABELS)
add_dependencies(test_dist bevt-run bevt-test video_swin i3d mim standard_maskers dalle synthetic)
