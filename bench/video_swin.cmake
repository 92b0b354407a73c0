# Video Swin-T speed and memory: training step, eval forward, training step with gradient checkpointing.
bevt_add_bench(bench_video_swin bench_video_swin.cpp)
add_dependencies(bench_video_swin video_swin)
