# The fuzz targets (tests/fuzz) need clang's libFuzzer; the bounded run is a ctest under the label "fuzz".
find_program(BEVT_CLANGXX clang++)
if(BEVT_BUILD_FUZZERS AND BEVT_CLANGXX)
  add_test(NAME fuzz.parsers COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/run_fuzz.sh ${CMAKE_BINARY_DIR}/fuzz 20 ${BEVT_FMT_INCLUDE_DIR})
  set_tests_properties(fuzz.parsers PROPERTIES LABELS fuzz TIMEOUT 600)
endif()
