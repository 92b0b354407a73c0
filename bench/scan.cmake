# bevt-data --check -1: files/s of the full check on >= 1,000 generated short videos (Kinetics CSV + mp4, SSv2 +
# webm), through the real tool. Command and figures in docs/data.md ("Checking a dataset").
bevt_add_bench(bench_scan bench_scan.cpp)
target_link_libraries(bench_scan PRIVATE bevt::data)
target_compile_definitions(bench_scan PRIVATE BEVT_BIN_DIR="${CMAKE_RUNTIME_OUTPUT_DIRECTORY}")
add_dependencies(bench_scan bevt-data kinetics ssv2)
