# Registry, config, safetensors and state-dict tests, plus the test plugin libraries they load. Each test
# library lives in its own folder under build/test-plugins so that a case can point the host at exactly it.
set(_tp ${CMAKE_BINARY_DIR}/test-plugins)
function(bevt_test_plugin name dir)
  bevt_add_plugin(${name} SOURCES ${ARGN} NO_INSTALL)
  set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${_tp}/${dir})
endfunction()
# In bevt_add_plugin the in-tree output folder is the host's; tests override it per library.
bevt_test_plugin(test_toy good plugins/toy_plugins.cpp)
bevt_test_plugin(test_toy_dup dup plugins/toy_plugins.cpp)  # same names as "good": a duplicate
# Mismatched libraries compile the entry object themselves, with another ABI version or fingerprint.
set(_entry ${PROJECT_SOURCE_DIR}/core/src/sdk/plugin_entry.cpp)
bevt_test_plugin(test_toy_abi abi plugins/toy_plugins.cpp ${_entry})
target_compile_definitions(test_toy_abi PRIVATE BEVT_SDK_ABI_VERSION=999 TOY_PREFIX="abi")
target_link_libraries(test_toy_abi PRIVATE Boost::headers)
bevt_test_plugin(test_toy_fp fingerprint plugins/toy_plugins.cpp ${_entry})
target_compile_definitions(test_toy_fp PRIVATE BEVT_FINGERPRINT_OVERRIDE="compiler=other,torch=0.0" TOY_PREFIX="fp")
target_link_libraries(test_toy_fp PRIVATE Boost::headers)
add_library(test_broken MODULE plugins/broken_plugin.cpp)
set_target_properties(test_broken PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${_tp}/broken PREFIX "lib"
  OUTPUT_NAME bevt_broken LINK_FLAGS "-Wl,--unresolved-symbols=ignore-all")
file(WRITE ${_tp}/garbage/libbevt_garbage.so "this is not an ELF file\n")

bevt_add_gtest(test_foundation
  test_csv.cpp
  test_progress.cpp
  test_registry.cpp
  test_config.cpp
  test_safetensors.cpp
  test_state_dict.cpp)
add_dependencies(test_foundation test_toy test_toy_dup test_toy_abi test_toy_fp test_broken)
