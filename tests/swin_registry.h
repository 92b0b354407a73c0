// Shared helpers of the Video Swin tests: building plugins through the host registry with small configs.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "bevt/backbone.h"
#include "bevt/head.h"
#include "bevt/safetensors.h"
#include "host/registry.h"

namespace swin_test {

inline const bevt::host::Registry& registry() {
  static bevt::host::Registry reg = bevt::host::Registry::discover({BEVT_PLUGIN_DIR});
  return reg;
}

// A tiny Video Swin (embed 8, 2 blocks per stage); `over` replaces or adds keys (TOML literals).
inline std::string tiny(const std::map<std::string, std::string>& over = {}) {
  std::map<std::string, std::string> kv{{"plugin", "\"video_swin\""},
                                        {"embed_dim", "8"},
                                        {"depths", "[2, 2, 2, 2]"},
                                        {"num_heads", "[1, 2, 4, 8]"},
                                        {"drop_path_rate", "0.0"}};
  for (const auto& [k, v] : over) kv[k] = v;
  std::string out;
  for (const auto& [k, v] : kv) out += k + " = " + v + "\n";
  return out;
}

inline std::shared_ptr<bevt::Backbone> build(const std::string& toml, uint64_t seed = 0) {
  torch::manual_seed(seed);
  auto cfg = bevt::Config::from_toml(toml, "test");
  return registry().build_as<bevt::Backbone>("test", cfg, bevt::BuildContext{});
}

inline std::shared_ptr<bevt::Head> build_head(const std::string& name, const bevt::Backbone& bb, int64_t vocab = 0) {
  auto cfg = bevt::Config::from_toml("plugin = \"" + name + "\"\n", "test");
  bevt::BuildContext ctx;
  ctx.backbone = bb.spec();
  ctx.vocab_size = vocab;
  return registry().build_as<bevt::Head>("test", cfg, ctx);
}

inline double rel_err(const torch::Tensor& a, const torch::Tensor& b) {
  auto d = (a.to(torch::kFloat64) - b.to(torch::kFloat64)).norm().item<double>();
  auto n = b.to(torch::kFloat64).norm().item<double>();
  return n > 0 ? d / n : d;
}

inline std::string fixture(const std::string& name) { return std::string(BEVT_FIXTURES_DIR) + "/" + name; }

}  // namespace swin_test
