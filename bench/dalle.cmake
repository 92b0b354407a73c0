# DALL-E tokenizer throughput (tokens per second) at BEVT's 112x112 input.
bevt_add_bench(bench_dalle bench_dalle.cpp)
add_dependencies(bench_dalle dalle)
