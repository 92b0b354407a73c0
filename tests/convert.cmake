# Checkpoint converters (tools/bevt_pth.py, convert_checkpoint.py, convert_dalle.py: Python 3 + numpy, no torch).
# convert.python: the reader, writer and command lines in unittest (round trips, formats, layouts, safety,
# errors). test_convert: LibTorch's own deserializer loads the written .pth, the reader converts what LibTorch's
# serializer writes, and converted official-layout checkpoints run through bevt-run and bevt-forward.
set(BEVT_PYTHON3 /usr/bin/python3 CACHE FILEPATH "Python 3 with numpy (Debian's python3-numpy) for the converter tests")
execute_process(COMMAND ${BEVT_PYTHON3} -c "import numpy" RESULT_VARIABLE _bevt_numpy OUTPUT_QUIET ERROR_QUIET)
if(NOT _bevt_numpy EQUAL 0)
  message(WARNING "${BEVT_PYTHON3} cannot import numpy: the convert tests will fail (apt-get install python3-numpy)")
endif()
add_test(NAME convert.python COMMAND ${BEVT_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/python/test_checkpoint_tools.py)
set_tests_properties(convert.python PROPERTIES ENVIRONMENT "TMPDIR=${BEVT_TEST_TMP}" LABELS unit)
set(BEVT_TEST_LABELS integration)  # runs the real binaries
bevt_add_gtest(test_convert test_convert.cpp)
unset(BEVT_TEST_LABELS)
target_compile_definitions(test_convert PRIVATE BEVT_PYTHON3="${BEVT_PYTHON3}")
add_dependencies(test_convert bevt-run bevt-forward video_swin i3d synthetic dalle)
