#include "inputs.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "bevt/digest.h"
#include "checkpoint.h"

namespace fs = std::filesystem;

namespace bevt::host::train {

namespace {

// The file a value names, as init.checkpoint would resolve it; empty when it names none.
std::string weights_file(const std::string& value) {
  std::error_code ec;
  const fs::path p(value);
  if (fs::is_regular_file(p, ec)) return value;
  if (!fs::is_directory(p, ec)) return {};
  if (!fs::is_regular_file(p / "model.safetensors", ec) && !last_checkpoint(value)) return {};
  try {
    return resolve_model_file(value, value);
  } catch (const std::exception&) {
    return {};
  }
}

// Content digest (not a cryptographic one: it tells a rewritten file from an unchanged one).
std::string file_digest(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string buf(4 << 20, '\0');
  Digest d;
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const auto n = static_cast<size_t>(in.gcount());
    if (n == 0) break;
    d.update(buf.data(), n);
  }
  return d.hex();
}

}  // namespace


nlohmann::json input_digests(const InputCandidates& candidates) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [key, value] : candidates) {
    std::string file = weights_file(value);
    if (!file.empty()) out[key] = {{"file", file}, {"digest", file_digest(file)}};
  }
  return out;
}

std::vector<std::string> changed_inputs(const nlohmann::json& recorded, const nlohmann::json& now) {
  std::set<std::string> keys;
  auto digest = [](const nlohmann::json& j, const std::string& k) -> std::string {
    if (!j.is_object() || !j.contains(k) || !j[k].is_object()) return {};
    return j[k].value("digest", "");
  };
  for (const auto* j : {&recorded, &now})
    if (j->is_object())
      for (const auto& [k, v] : j->items()) keys.insert(k);
  std::vector<std::string> out;
  for (const auto& k : keys)
    if (digest(recorded, k) != digest(now, k)) out.push_back(k);
  return out;
}

}  // namespace bevt::host::train
