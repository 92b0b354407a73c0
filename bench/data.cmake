# Data layer: decode + transform per clip against PyAV (bench/pyav_decode.py) and the minimal decode work; loader
# clips/s with the default workers. Table and command in docs/benchmarks.md ("Data").
bevt_add_bench(bench_data bench_data.cpp)
target_link_libraries(bench_data PRIVATE bevt::data)
target_compile_definitions(bench_data PRIVATE BEVT_BENCH_DIR="${CMAKE_CURRENT_SOURCE_DIR}")
add_dependencies(bench_data synthetic kinetics)
