// The run modes' functions (the table that maps run.mode to them is host/modes.cpp), and what they share.
#pragma once

#include <nlohmann/json.hpp>

#include "host/run_context.h"

namespace bevt::host::train {

int run_pretrain(const RunContext& ctx);   // pretrain.cpp
int run_finetune(const RunContext& ctx);   // finetune.cpp
int run_test(const RunContext& ctx);       // evaluate_run.cpp
int run_probe(const RunContext& ctx);      // evaluate_run.cpp
int run_tokenizer(const RunContext& ctx);  // tokenizer_train.cpp
int run_token_probe(const RunContext& ctx);  // token_probe.cpp

// work_dir/results.json, atomically (rank 0 only), with the experiment, seed and hashes added.
void write_results(const RunContext& ctx, nlohmann::json results);
// A run's output file `name` at the work_dir's top and in the run's folder, atomically (rank 0 only).
void write_run_file(const RunContext& ctx, const std::string& name, const std::string& text);

}  // namespace bevt::host::train
