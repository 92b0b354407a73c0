bevt_add_tool(bevt-data src/tools/bevt_data.cpp)
