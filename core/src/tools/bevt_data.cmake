bevt_add_tool(bevt-data src/tools/bevt_data.cpp)
target_link_libraries(bevt-data PRIVATE bevt::data)
