# The scripts of bench/ that turn bench output into the tables of docs/benchmarks.md (standard-library Python,
# run by BEVT_PYTHON).
# bench.ratios: bench/official/ratios.py pairs the Video Swin rounds of compare_official.sh, prints both floors,
# and stops with a one-line message on a missing or unpaired case.
add_test(NAME bench.ratios COMMAND ${BEVT_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/python/test_bench_ratios.py)
set_tests_properties(bench.ratios PROPERTIES LABELS unit)
