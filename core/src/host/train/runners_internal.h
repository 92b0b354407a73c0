// Helpers and registration functions shared by the built-in runners.
#pragma once

#include <nlohmann/json.hpp>

#include "host/runners.h"

namespace bevt::host::train {

// work_dir/results.json, atomically, with the experiment and seed added.
void write_results(const RunContext& ctx, nlohmann::json results);

void register_pretrain_runner();
void register_finetune_runners();  // finetune, test, probe
void register_tokenizer_runner();

}  // namespace bevt::host::train
