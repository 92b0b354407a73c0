# TimeSformer-B: eval forward at 8x224 and a training step at 4x112, with peak memory.
bevt_add_bench(bench_timesformer bench_timesformer.cpp)
add_dependencies(bench_timesformer timesformer)
