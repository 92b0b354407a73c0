# The data layer (issue 5): decoding, samplers, transforms, the synthetic generator (test_data, which links the
# synthetic plugin's generator library); the loader, the dataset plugins on tiny public layouts and bevt-data
# (test_data_plugins).
bevt_add_gtest(test_data ${CMAKE_CURRENT_SOURCE_DIR}/test_data.cpp)
target_link_libraries(test_data PRIVATE bevt::data synthetic_generator)
bevt_add_gtest(test_data_plugins ${CMAKE_CURRENT_SOURCE_DIR}/test_data_plugins.cpp)
target_link_libraries(test_data_plugins PRIVATE bevt::data)
add_dependencies(test_data_plugins synthetic kinetics ssv2 diving48 imagenet standard_maskers bevt-data)
