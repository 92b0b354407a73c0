# Checkpoint converters (tools/convert_checkpoint.py, tools/convert_dalle.py, tools/checkpoint_io.py), run by
# build/bin/bevt-convert with BEVT_PYTHON, the Python of bevt's torch (cmake/BevtConvert.cmake).
# convert.python: the command lines in unittest under BEVT_PYTHON (round trips, layouts, the weights-only
# allow-list, malicious pickles refused, errors, the one-line messages of a Python without torch: /usr/bin/python3
# unless BEVT_PLAIN_PYTHON says otherwise). test_convert: LibTorch's own deserializer loads the written .pth, the
# converter reads what LibTorch's serializer writes, and converted official-layout checkpoints run through bevt-run
# and bevt-forward.
set(BEVT_PLAIN_PYTHON /usr/bin/python3 CACHE FILEPATH "a Python without torch (the converters' missing-torch message)")
add_test(NAME convert.python COMMAND ${BEVT_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/python/test_checkpoint_tools.py)
set_tests_properties(convert.python PROPERTIES LABELS unit ENVIRONMENT "TMPDIR=${BEVT_TEST_TMP};\
BEVT_CONVERT=${CMAKE_RUNTIME_OUTPUT_DIRECTORY}/bevt-convert;BEVT_PLAIN_PYTHON=${BEVT_PLAIN_PYTHON}")
set(BEVT_TEST_LABELS integration)  # runs the real binaries
bevt_add_gtest(test_convert test_convert.cpp)
unset(BEVT_TEST_LABELS)
target_compile_definitions(test_convert PRIVATE BEVT_PYTHON="${BEVT_PYTHON}")
add_dependencies(test_convert bevt-run bevt-forward video_swin i3d synthetic dalle)
