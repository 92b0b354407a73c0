# The data layer (issue 5): decoding, samplers, transforms, the synthetic generator (test_data, which links the
# synthetic plugin's generator library); the loader, the dataset plugins on tiny public layouts and bevt-data
# (test_data_plugins).
bevt_add_gtest(test_data ${CMAKE_CURRENT_SOURCE_DIR}/test_data.cpp)
target_link_libraries(test_data PRIVATE bevt::data synthetic_generator)
# Issue 15: imgaug's RandAugment and timm's RandomErasing as BEVT's SSv2 fine-tune runs them.
bevt_add_gtest(test_randaugment ${CMAKE_CURRENT_SOURCE_DIR}/test_randaugment.cpp)
target_link_libraries(test_randaugment PRIVATE bevt::data)
target_include_directories(test_randaugment SYSTEM PRIVATE ${OpenCV_INCLUDE_DIRS})
target_link_libraries(test_randaugment PRIVATE opencv_core opencv_imgproc)
set(BEVT_TEST_LABELS integration)  # runs the real bevt-run
bevt_add_gtest(test_randaugment_run ${CMAKE_CURRENT_SOURCE_DIR}/test_randaugment_run.cpp)
unset(BEVT_TEST_LABELS)
add_dependencies(test_randaugment_run bevt-run synthetic i3d test_toy)
bevt_add_gtest(test_data_plugins ${CMAKE_CURRENT_SOURCE_DIR}/test_data_plugins.cpp)
target_link_libraries(test_data_plugins PRIVATE bevt::data)
add_dependencies(test_data_plugins synthetic kinetics ssv2 diving48 imagenet standard_maskers bevt-data)
# Issue 20, every bad video named: damaged files in the three public layouts (library and plugins: unit), and
# bevt-data --check -1 on them (integration).
bevt_add_gtest(test_bad_videos ${CMAKE_CURRENT_SOURCE_DIR}/test_bad_videos.cpp)
target_link_libraries(test_bad_videos PRIVATE bevt::data)
add_dependencies(test_bad_videos kinetics ssv2 diving48)
set(BEVT_TEST_LABELS integration)  # runs the real bevt-data
bevt_add_gtest(test_bad_videos_tool ${CMAKE_CURRENT_SOURCE_DIR}/test_bad_videos_tool.cpp)
unset(BEVT_TEST_LABELS)
target_link_libraries(test_bad_videos_tool PRIVATE bevt::data)
add_dependencies(test_bad_videos_tool kinetics ssv2 diving48 bevt-data)
