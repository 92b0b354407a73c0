# Video Swin backbone + BEVT MIM heads: golden parity (all keys incl. the decoder's `final`) and property tests.
bevt_add_parity_test(bevt_swin_video)
bevt_add_parity_test(bevt_swin_image)
bevt_add_parity_test(bevt_swin_video_masked)
bevt_add_parity_test(bevt_swin_video_tshift)
bevt_add_gtest(test_video_swin test_video_swin.cpp test_video_swin_weights.cpp)
add_dependencies(test_video_swin video_swin mim)
