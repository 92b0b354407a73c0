# The lean SDK (issue 16): no backbone, head, masker or tokenizer plugin compiles with an OpenCV or FFmpeg
# include folder, and the data library does (so the check is not vacuous). Reads compile_commands.json, which
# the top-level CMakeLists.txt always writes.
set(_banned)
foreach(_d ${OpenCV_INCLUDE_DIRS} ${FFMPEG_INCLUDE_DIRS})
  list(APPEND _banned --banned ${_d})
endforeach()
add_test(NAME sdk.plugin_include_paths
  COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/check_include_paths.py ${CMAKE_BINARY_DIR}/compile_commands.json
    ${PROJECT_SOURCE_DIR} ${_banned})
set_tests_properties(sdk.plugin_include_paths PROPERTIES LABELS unit)
