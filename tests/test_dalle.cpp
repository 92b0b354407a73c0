// The dalle tokenizer beyond its golden fixture: shapes for other sizes and batches, the full OpenAI
// configuration's key list and size, frozen state, loading, and the errors a user can meet.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "bevt/error.h"
#include "bevt/safetensors.h"
#include "bevt/state_dict.h"
#include "bevt/tokenizer.h"
#include "host/registry.h"
#include "test_sandbox.h"

namespace {

const bevt::host::Registry& registry() {
  static bevt::host::Registry reg = bevt::host::Registry::discover({BEVT_PLUGIN_DIR});
  return reg;
}

std::shared_ptr<bevt::Tokenizer> make(const std::string& extra) {
  bevt::Config cfg = bevt::Config::from_toml("plugin = \"dalle\"\n" + extra, "test_dalle");
  return registry().build_as<bevt::Tokenizer>("tokenizer", cfg, bevt::BuildContext{});
}

const char* kSmall = "n_hid = 32\nn_blk_per_group = 1\nvocab_size = 64\ninput_size = 48\n";

std::string tmp(const std::string& name) {
  std::filesystem::create_directories(BEVT_TEST_TMP);
  return (std::filesystem::path(BEVT_TEST_TMP) / name).string();
}

TEST(dalle, ShapesForOtherSizesAndBatches) {
  torch::manual_seed(0);
  auto tok = make(kSmall);
  EXPECT_EQ(tok->vocab_size(), 64);
  EXPECT_EQ(tok->input_size(), 48);
  EXPECT_EQ(tok->downsample(), 8);
  torch::Tensor img = torch::rand({3, 3, 48, 80});
  torch::Tensor logits = tok->logits(tok->prepare(img));
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{3, 64, 6, 10}));
  torch::Tensor ids = tok->tokenize(img);
  EXPECT_EQ(ids.sizes(), (std::vector<int64_t>{3, 6, 10}));
  EXPECT_EQ(ids.scalar_type(), torch::kInt64);
  EXPECT_TRUE(ids.ge(0).all().item<bool>() && ids.lt(64).all().item<bool>());
  // Batched equals one by one.
  for (int64_t i = 0; i < 3; ++i) {
    torch::Tensor one = tok->logits(tok->prepare(img.slice(0, i, i + 1)));
    EXPECT_TRUE(torch::allclose(one, logits.slice(0, i, i + 1), 1e-4, 1e-5));
  }
  // Fewer groups: downsampling 2^(groups-1).
  auto two = make("group_count = 2\nn_hid = 16\nn_blk_per_group = 1\nvocab_size = 32\ninput_size = 16\n");
  EXPECT_EQ(two->downsample(), 2);
  EXPECT_EQ(two->tokenize(torch::rand({2, 3, 16, 24})).sizes(), (std::vector<int64_t>{2, 8, 12}));
}

TEST(dalle, PrepareIsMapPixels) {
  auto tok = make(kSmall);
  torch::Tensor x = torch::tensor({0.0f, 0.5f, 1.0f}).reshape({1, 1, 1, 3});
  EXPECT_TRUE(torch::allclose(tok->prepare(x), torch::tensor({0.1f, 0.5f, 0.9f}).reshape({1, 1, 1, 3})));
}

TEST(dalle, FullConfigurationHasOfficialKeysAndSize) {
  auto tok = make("");
  EXPECT_EQ(tok->vocab_size(), 8192);
  EXPECT_EQ(tok->input_size(), 112);
  EXPECT_EQ(tok->downsample(), 8);
  std::ifstream in(std::string(BEVT_SOURCE_DIR) + "/tests/reference/keys/keys_dalle_encoder.txt");
  ASSERT_TRUE(in.good());
  std::map<std::string, std::string> want;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    auto sp = line.find(' ');
    want[line.substr(0, sp)] = line.substr(sp + 1);
  }
  bevt::TensorMap got = tok->export_weights();
  std::map<std::string, std::string> have;
  int64_t count = 0;
  for (const auto& [k, t] : got) {
    have[k] = bevt::test::shape_str(t);
    count += t.numel();
  }
  EXPECT_EQ(have, want);
  EXPECT_EQ(count, 53786240);  // 53.8M
  for (const auto& p : tok->parameters()) EXPECT_FALSE(p.requires_grad());
  EXPECT_FALSE(tok->is_training());
  // Token grid of BEVT's 112x112 view: 14x14.
  EXPECT_EQ(tok->tokenize(torch::rand({1, 3, 112, 112})).sizes(), (std::vector<int64_t>{1, 14, 14}));
}

TEST(dalle, TokenizeRejectsBadInput) {
  auto tok = make(kSmall);
  EXPECT_THROW(tok->tokenize(torch::rand({2, 3, 48, 48}) * 255), bevt::UserError);
  EXPECT_THROW(tok->tokenize(torch::rand({2, 3, 48, 48}) - 0.5), bevt::UserError);
  EXPECT_THROW(tok->tokenize(torch::rand({3, 48, 48})), bevt::UserError);
  EXPECT_THROW(tok->tokenize(torch::rand({2, 1, 48, 48})), bevt::UserError);
  EXPECT_THROW(tok->tokenize(torch::rand({2, 3, 44, 48})), bevt::UserError);  // not a multiple of 8
}

TEST(dalle, LoadsItsExportAndBevtPrefix) {
  torch::manual_seed(1);
  auto a = make(kSmall);
  std::string path = tmp("dalle_small.safetensors");
  bevt::save_safetensors(path, a->export_weights());
  auto b = make(std::string(kSmall) + "weights = \"" + path + "\"\n");
  torch::Tensor img = torch::rand({2, 3, 48, 48});
  EXPECT_TRUE(torch::equal(a->logits(a->prepare(img)), b->logits(b->prepare(img))));
  for (const auto& p : b->parameters()) EXPECT_FALSE(p.requires_grad());
  // A BEVT whole-model checkpoint keeps the encoder at cls_head.vae_encoder.*
  bevt::TensorMap bevt_ckpt;
  for (const auto& [k, t] : a->export_weights()) bevt_ckpt["cls_head.vae_encoder." + k] = t;
  bevt_ckpt["backbone.patch_embed.proj.weight"] = torch::zeros({1});
  auto c = make(kSmall);
  c->load_weights(bevt_ckpt);
  EXPECT_TRUE(torch::equal(a->logits(a->prepare(img)), c->logits(c->prepare(img))));
}

TEST(dalle, WeightErrorsAreOneLineUserErrors) {
  try {
    make(std::string(kSmall) + "weights = \"/nonexistent/encoder.safetensors\"\n");
    FAIL() << "no error";
  } catch (const bevt::UserError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("encoder.pkl"), std::string::npos) << m;
    EXPECT_NE(m.find("convert_dalle.py"), std::string::npos) << m;
    EXPECT_NE(m.find("bevt-convert dalle"), std::string::npos) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  }
  auto a = make(kSmall);
  std::string path = tmp("dalle_vocab64.safetensors");
  bevt::save_safetensors(path, a->export_weights());
  for (const char* other : {"n_hid = 32\nn_blk_per_group = 1\nvocab_size = 128\ninput_size = 48\n",
                            "n_hid = 64\nn_blk_per_group = 1\nvocab_size = 64\ninput_size = 48\n",
                            "n_hid = 32\nn_blk_per_group = 2\nvocab_size = 64\ninput_size = 48\n"}) {
    try {
      make(std::string(other) + "weights = \"" + path + "\"\n");
      FAIL() << "no error for " << other;
    } catch (const bevt::UserError& e) {
      std::string m = e.what();
      EXPECT_NE(m.find("vocabulary"), std::string::npos) << m;
      EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    }
  }
  EXPECT_THROW(make("input_size = 100\n"), bevt::UserError);
}

}  // namespace
