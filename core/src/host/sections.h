// Host-owned tables of an experiment file ([run], ...) with their keys, and the resolved run settings.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bevt/config.h"

namespace bevt::host {

// Host sections and their keys; every other table must be a component (`plugin = ...`) or a group of them.
const std::vector<std::pair<std::string, std::vector<KeySpec>>>& host_sections();

struct RunSettings {
  std::string mode;
  std::string work_dir;
  uint64_t seed = 0;
  std::string device;  // resolved: "cpu" or "cuda:N"
  int64_t max_steps = 0;
  int64_t epochs = 0;
  int64_t log_every = 0;
  int64_t ckpt_every = 0;
  int64_t keep_last = 0;
  int64_t threads = 0;
};

// Validates [run] (filling defaults; work_dir defaults to work_dirs/<experiment file stem>) and resolves it.
RunSettings resolve_run(Config& root, const std::string& experiment_path);

// A host section of root (created empty when absent), validated against its keys with defaults filled in.
Config host_section(Config& root, const std::string& name);

// "auto" → cuda:0 when CUDA is present, else cpu; "cuda" → cuda:0; checks that a requested GPU exists.
std::string resolve_device(const std::string& requested, const std::string& where);

}  // namespace bevt::host
