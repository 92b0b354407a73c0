# Device placement on the meta device (no GPU needed), tied classifier moves, autocast in checkpoint reruns.
set(BEVT_TEST_PREFIX "placement.")
bevt_add_gtest(test_device_placement test_device_placement.cpp)
unset(BEVT_TEST_PREFIX)
add_dependencies(test_device_placement video_swin timesformer mim i3d dalle vq pixels hog)
