bevt_add_tool(bevt-data src/tools/bevt_data.cpp src/tools/bevt_data_scan.cpp)
target_link_libraries(bevt-data PRIVATE bevt::data)
