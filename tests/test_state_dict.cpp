// Loading state dicts: reports of missing, unexpected and mis-shaped keys; prefixes; optional buffers.
#include <gtest/gtest.h>

#include "bevt/error.h"
#include "bevt/state_dict.h"

namespace {
struct NetImpl : torch::nn::Module {
  NetImpl() {
    fc = register_module("fc", torch::nn::Linear(3, 2));
    norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({2})));
    register_buffer("relative_position_index", torch::arange(4));
  }
  torch::nn::Linear fc{nullptr};
  torch::nn::LayerNorm norm{nullptr};
};
}  // namespace

TEST(StateDict, LoadsWithPrefixesAndOptionalBuffers) {
  NetImpl net;
  bevt::TensorMap file;
  file["backbone.fc.weight"] = torch::full({2, 3}, 2.0);
  file["backbone.fc.bias"] = torch::full({2}, 3.0);
  file["backbone.norm.weight"] = torch::ones({2});
  file["backbone.norm.bias"] = torch::zeros({2});
  file["cls_head.fc_cls.weight"] = torch::zeros({5, 2});  // another module's: dropped by the prefix
  auto r = bevt::load_state_dict(net, file);
  EXPECT_TRUE(r.ok()) << r.summary();
  EXPECT_EQ(r.loaded, 4u);
  EXPECT_TRUE(torch::equal(net.fc->weight, torch::full({2, 3}, 2.0)));
}

TEST(StateDict, StrictErrorsListProblemsWithNearestNames) {
  NetImpl net;
  bevt::TensorMap file;
  file["fc.weight"] = torch::zeros({2, 4});   // mis-shaped
  file["fc.bais"] = torch::zeros({2});        // typo: unexpected, nearest fc.bias
  file["norm.weight"] = torch::ones({2});
  file["norm.bias"] = torch::zeros({2});
  bevt::LoadOptions o;
  o.source = "w.safetensors";
  try {
    bevt::load_state_dict(net, file, o);
    FAIL() << "strict load accepted a bad file";
  } catch (const bevt::UserError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("w.safetensors"), std::string::npos) << m;
    EXPECT_NE(m.find("1 missing: fc.bias"), std::string::npos) << m;
    EXPECT_NE(m.find("fc.bais (nearest: fc.bias)"), std::string::npos) << m;
    EXPECT_NE(m.find("fc.weight (file [2,4] vs model [2,3])"), std::string::npos) << m;
  }
  o.strict = false;
  auto r = bevt::load_state_dict(net, file, o);
  EXPECT_EQ(r.loaded, 2u);
  EXPECT_EQ(r.missing, std::vector<std::string>{"fc.bias"});
}

TEST(StateDict, ExportUsesModuleNames) {
  NetImpl net;
  auto sd = bevt::state_dict(net);
  std::vector<std::string> names;
  for (const auto& kv : sd) names.push_back(kv.first);
  EXPECT_EQ(names, (std::vector<std::string>{"fc.bias", "fc.weight", "norm.bias", "norm.weight",
                                             "relative_position_index"}));
}
