# Video Swin backbone + BEVT MIM heads: golden parity (all keys incl. the decoder's `final`) and property tests.
bevt_add_parity_test(bevt_swin_video)
bevt_add_parity_test(bevt_swin_image)
bevt_add_parity_test(bevt_swin_video_masked)
bevt_add_parity_test(bevt_swin_video_tshift)
bevt_add_gtest(test_video_swin test_video_swin.cpp test_video_swin_weights.cpp)
add_dependencies(test_video_swin video_swin mim)
# The window partition's permutation backward, compiled from the plugin's sources (internal, no SDK surface).
bevt_add_gtest(test_swin_row_permute test_swin_row_permute.cpp
  ${PROJECT_SOURCE_DIR}/plugins/backbones/video_swin/row_permute.cpp
  ${PROJECT_SOURCE_DIR}/plugins/backbones/video_swin/window_plan.cpp)
target_include_directories(test_swin_row_permute PRIVATE ${PROJECT_SOURCE_DIR}/plugins/backbones/video_swin)
