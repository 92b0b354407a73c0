// Helpers of the tests that run bevt-run and read what it wrote: results.json, metrics.jsonl, checkpoints.
#pragma once

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bevt/safetensors.h"
#include "test_sandbox.h"

namespace bevt::test {

inline nlohmann::json read_json(const std::filesystem::path& p) {
  std::ifstream in(p);
  nlohmann::json j;
  in >> j;
  return j;
}

inline std::vector<nlohmann::json> read_jsonl(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::vector<nlohmann::json> out;
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

inline CmdResult bevt_run(const std::filesystem::path& exp, const std::string& extra = "") {
  return run(bin("bevt-run") + " " + exp.string() + " " + extra);
}

// Same names, shapes and bit-identical values.
inline bool same_tensors(const std::filesystem::path& a, const std::filesystem::path& b) {
  auto x = load_safetensors(a.string()).tensors, y = load_safetensors(b.string()).tensors;
  if (x.size() != y.size()) return false;
  for (const auto& [k, v] : x)
    if (!y.count(k) || !torch::equal(v, y.at(k))) return false;
  return true;
}

}  // namespace bevt::test
