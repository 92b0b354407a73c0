# The official initialisation distributions of SwinTransformerBEVT (encoder, decoders), lm_head and I3DHead.
bevt_add_gtest(test_official_init ${CMAKE_CURRENT_SOURCE_DIR}/test_official_init.cpp)
add_dependencies(test_official_init video_swin mim i3d)
