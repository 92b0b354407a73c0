# Distributed training: step time with 1 and 2 processes (Gloo) and the all-reduce share of a step, through real
# bevt-run runs. Table and command in docs/distributed.md ("Speed on this CPU").
bevt_add_bench(bench_dist bench_dist.cpp)
add_dependencies(bench_dist bevt-run video_swin i3d synthetic)
