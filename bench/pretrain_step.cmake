# One whole BEVT pre-training iteration (bevt_pretrain_step): reads experiments/pretrain/bevt.toml from the source tree.
bevt_add_bench(bench_pretrain_step bench_pretrain_step.cpp)
target_compile_definitions(bench_pretrain_step PRIVATE BEVT_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
add_dependencies(bench_pretrain_step video_swin dalle mim standard_maskers)
