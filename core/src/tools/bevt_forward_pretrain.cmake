# bevt-forward's pre-training step fixture (bevt_add_tool(bevt-forward ...) is in core/CMakeLists.txt).
target_sources(bevt-forward PRIVATE src/tools/bevt_forward_pretrain.cpp)
