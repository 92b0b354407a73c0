// The trainable VQ tokenizers (plugins/tokenizers/vq: `vq` and `peco`): shapes, tokens = nearest code, a short
// training run that learns, dead-code restarts, weights round trip and its errors, and peco's perceptual term
// through a frozen backbone plugin (video_swin; skipped when that plugin is not built in BEVT_PLUGIN_DIR).
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>

#include "bevt/backbone.h"
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

// The backbones this context built for a tokenizer (to check that they stay frozen).
std::vector<std::shared_ptr<bevt::Backbone>>& built_backbones() {
  static std::vector<std::shared_ptr<bevt::Backbone>> v;
  return v;
}

bevt::BuildContext context(uint64_t seed = 7) {
  bevt::BuildContext ctx;
  ctx.seed = seed;
  ctx.build = [](bevt::Kind kind, const bevt::Config& cfg) {
    bevt::Config copy = cfg.deep_copy();
    const auto& p = registry().find(copy.get_string("plugin"), kind, copy.where("plugin"));
    auto obj = registry().build(p, copy, bevt::BuildContext{});
    if (kind == bevt::Kind::Backbone) built_backbones().push_back(bevt::component_cast<bevt::Backbone>(obj));
    return obj;
  };
  return ctx;
}

std::shared_ptr<bevt::Tokenizer> make(const std::string& plugin, const std::string& extra, uint64_t seed = 7) {
  bevt::Config cfg = bevt::Config::from_toml("plugin = \"" + plugin + "\"\n" + extra, "test_vq_tokenizer");
  return registry().build_as<bevt::Tokenizer>("tokenizer", cfg, context(seed));
}

std::string tmp(const std::string& name) {
  std::filesystem::create_directories(BEVT_TEST_TMP);
  return (std::filesystem::path(BEVT_TEST_TMP) / name).string();
}

// Images of random colour blocks (27 colours, 8x8 blocks, shifted by a random offset): [n,3,size,size] in [0,1].
torch::Tensor colour_blocks(int64_t n, int64_t size, torch::Generator& gen) {
  const int64_t cells = size / 8 + 1;
  torch::Tensor c = torch::randint(0, 3, {n, 3, cells, cells}, gen).to(torch::kFloat32) * 0.5;
  torch::Tensor img = c.repeat_interleave(8, 2).repeat_interleave(8, 3);
  int64_t dy = torch::randint(0, 8, {1}, gen).item<int64_t>(), dx = torch::randint(0, 8, {1}, gen).item<int64_t>();
  return img.slice(2, dy, dy + size).slice(3, dx, dx + size).contiguous();
}

bool has_plugin(const std::string& name) {
  auto n = registry().names();
  return std::find(n.begin(), n.end(), name) != n.end();
}

TEST(vq_tokenizer, ShapesForSizesAndBatches) {
  auto tok = make("vq", "");
  EXPECT_EQ(tok->vocab_size(), 256);
  EXPECT_EQ(tok->downsample(), 4);
  EXPECT_EQ(tok->input_size(), 32);
  EXPECT_TRUE(tok->trainable());
  int64_t n_params = 0;
  for (const auto& p : tok->parameters()) n_params += p.numel();
  std::printf("vq default: %lld trainable parameters\n", static_cast<long long>(n_params));
  EXPECT_LT(n_params, 150000);
  torch::Tensor img = torch::rand({3, 3, 32, 48});
  torch::Tensor logits = tok->logits(tok->prepare(img));
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{3, 256, 8, 12}));
  torch::Tensor ids = tok->tokenize(img);
  EXPECT_EQ(ids.sizes(), (std::vector<int64_t>{3, 8, 12}));
  EXPECT_EQ(ids.scalar_type(), torch::kInt64);
  EXPECT_TRUE(ids.ge(0).all().item<bool>() && ids.lt(256).all().item<bool>());
  for (int64_t i = 0; i < 3; ++i)
    EXPECT_TRUE(torch::equal(tok->tokenize(img.slice(0, i, i + 1)), ids.slice(0, i, i + 1)));
  auto eight = make("vq", "downsample = 8\nvocab_size = 64\nhidden = 16\ninput_size = 64\n");
  EXPECT_EQ(eight->tokenize(torch::rand({2, 3, 64, 40})).sizes(), (std::vector<int64_t>{2, 8, 5}));
  EXPECT_EQ(eight->logits(eight->prepare(torch::rand({1, 3, 16, 16}))).sizes(),
            (std::vector<int64_t>{1, 64, 2, 2}));
}

TEST(vq_tokenizer, TokensAreTheNearestCode) {
  torch::manual_seed(1);
  auto tok = make("vq", "vocab_size = 128\n");
  torch::Tensor img = torch::rand({2, 3, 16, 24});
  torch::Tensor logits = tok->logits(tok->prepare(img));  // [2,128,4,6] = -||z - e||^2
  torch::Tensor ids = tok->tokenize(img);
  EXPECT_TRUE(torch::equal(ids, logits.argmax(1)));
  // Recover the unit encoder outputs z from the logits (logits = 2 E z - 2) and check argmin distance directly.
  torch::Tensor E = tok->export_weights().at("quantize.embedding");  // [128, 32]
  torch::Tensor L = logits.permute({0, 2, 3, 1}).reshape({-1, 128});
  torch::Tensor z = torch::matmul((L + 2.0) / 2.0, torch::pinverse(E).t());  // [M, 32]
  EXPECT_TRUE(torch::allclose(z.norm(2, 1), torch::ones({z.size(0)}), 1e-3, 1e-3));
  torch::Tensor d = torch::cdist(z, E);
  EXPECT_TRUE(torch::equal(d.argmin(1).reshape({2, 4, 6}), ids));
  EXPECT_TRUE(torch::allclose(-d.pow(2), L, 1e-3, 1e-3));
}

TEST(vq_tokenizer, ShortTrainingLearnsAndKeepsTheCodebookInUse) {
  torch::manual_seed(0);
  // Tiny convolutions: one intra-op thread is ~3x faster than two on a shared 2-core machine.
  torch::set_num_threads(1);
  torch::Generator gen = at::detail::createCPUGenerator(123);
  auto tok = make("vq", "");
  tok->train();
  const int steps = std::getenv("VQ_TEST_STEPS") ? std::atoi(std::getenv("VQ_TEST_STEPS")) : 200;
  const double lr = std::getenv("VQ_TEST_LR") ? std::atof(std::getenv("VQ_TEST_LR")) : 2e-3;
  torch::optim::Adam opt(tok->parameters(), torch::optim::AdamOptions(lr));
  double first = 0, last = 0, perplexity = 0, dead = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (int s = 0; s < steps; ++s) {
    torch::Tensor img = colour_blocks(16, 32, gen);
    bevt::TokenizerLoss loss = tok->training_loss(img);
    ASSERT_TRUE(loss.total.requires_grad());
    for (const char* k : {"recon", "commit", "perplexity", "dead_codes"}) ASSERT_TRUE(loss.terms.count(k)) << k;
    opt.zero_grad();
    loss.total.backward();
    opt.step();
    double r = loss.terms.at("recon").item<double>();
    if (std::getenv("VQ_TEST_VERBOSE") && s % 25 == 0)
      std::printf("step %d recon %.4f commit %.4f perplexity %.1f dead %.0f\n", s, r,
                  loss.terms.at("commit").item<double>(), loss.terms.at("perplexity").item<double>(),
                  loss.terms.at("dead_codes").item<double>());
    if (s < 5) first += r / 5;
    if (s >= steps - 5) {
      last += r / 5;
      perplexity += loss.terms.at("perplexity").item<double>() / 5;
      dead += loss.terms.at("dead_codes").item<double>() / 5;
    }
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("vq training: %d steps (batch 16, 32x32) in %.1f s: recon %.4f -> %.4f, perplexity %.1f, dead codes %.1f "
              "of 256\n",
              steps, secs, first, last, perplexity, dead);
  EXPECT_LT(last, 0.4 * first);
  EXPECT_GT(perplexity, 16.0);
  // Frozen use afterwards: eval + tokenize of new images uses many codes.
  tok->eval();
  torch::Tensor ids = tok->tokenize(colour_blocks(16, 32, gen));
  EXPECT_GT(std::get<0>(at::_unique(ids.flatten())).numel(), 16);
}

TEST(vq_tokenizer, DeadCodesAreRestartedAndUsed) {
  torch::manual_seed(2);
  auto tok = make("vq", "vocab_size = 64\ndead_code_window = 5\n");
  tok->train();
  torch::Tensor img = torch::rand({4, 3, 32, 32});  // distinct encoder outputs (no ties)
  tok->training_loss(img);                          // initialises the codebook from this batch
  // Force codes 32..63 dead: copies of code 0 (argmax picks the first of equal maxima, so they are never
  // chosen), last used 1000 batches ago.
  bevt::TensorMap w = tok->export_weights();
  for (const char* k : {"quantize.embedding", "quantize.embed_sum"}) {
    torch::Tensor e = w.at(k).clone();
    e.slice(0, 32).copy_(e.slice(0, 0, 1).expand({32, e.size(1)}));
    w[k] = e;
  }
  w.at("quantize.step").fill_(1000);
  w.at("quantize.last_used").fill_(1000);
  w.at("quantize.last_used").slice(0, 32).fill_(0);
  tok->load_weights(w);
  tok->train();
  torch::Tensor before = tok->tokenize(img);  // what the training step will assign
  std::set<int64_t> used_hi;
  for (int64_t v : std::vector<int64_t>(before.data_ptr<int64_t>(), before.data_ptr<int64_t>() + before.numel()))
    if (v >= 32) used_hi.insert(v);
  bevt::TokenizerLoss loss = tok->training_loss(img);
  const int64_t dead = static_cast<int64_t>(loss.terms.at("dead_codes").item<double>());
  EXPECT_EQ(dead, 32 - static_cast<int64_t>(used_hi.size()));
  ASSERT_GT(dead, 0);
  // Each restarted code is now one of this batch's encoder outputs, so the batch uses (almost) all of them.
  torch::Tensor after = tok->tokenize(img);
  std::set<int64_t> now_hi;
  for (int64_t v : std::vector<int64_t>(after.data_ptr<int64_t>(), after.data_ptr<int64_t>() + after.numel()))
    if (v >= 32 && !used_hi.count(v)) now_hi.insert(v);
  std::printf("dead codes restarted: %lld, of which used by the batch afterwards: %zu\n",
              static_cast<long long>(dead), now_hi.size());
  EXPECT_GE(static_cast<double>(now_hi.size()), 0.9 * static_cast<double>(dead));
  // Restarted codes are marked used now: no dead code at the next step with the same batch.
  bevt::TokenizerLoss next = tok->training_loss(img);
  EXPECT_LT(next.terms.at("dead_codes").item<double>(), static_cast<double>(dead));
}

TEST(vq_tokenizer, RestartsAreDeterministic) {
  auto run = [] {
    torch::manual_seed(3);
    auto tok = make("vq", "vocab_size = 512\ndead_code_window = 1\n", 42);
    tok->train();
    torch::Tensor img = torch::rand({2, 3, 32, 32});
    for (int i = 0; i < 3; ++i) tok->training_loss(img);
    return tok->export_weights().at("quantize.embedding").clone();
  };
  EXPECT_TRUE(torch::equal(run(), run()));
}

TEST(vq_tokenizer, WeightsRoundTripAndErrors) {
  torch::manual_seed(4);
  torch::set_num_threads(1);
  torch::Generator gen = at::detail::createCPUGenerator(5);
  auto tok = make("vq", "");
  tok->train();
  torch::optim::Adam opt(tok->parameters(), torch::optim::AdamOptions(2e-3));
  for (int s = 0; s < 5; ++s) {
    auto loss = tok->training_loss(colour_blocks(8, 32, gen));
    opt.zero_grad();
    loss.total.backward();
    opt.step();
  }
  tok->eval();
  const std::string path = tmp("vq_roundtrip.safetensors");
  bevt::save_safetensors(path, tok->export_weights());
  auto loaded = make("vq", "weights = \"" + path + "\"\n");
  torch::Tensor img = colour_blocks(8, 32, gen);
  EXPECT_TRUE(torch::equal(loaded->tokenize(img), tok->tokenize(img)));
  // Loaded = frozen: eval and no grad until train().
  EXPECT_FALSE(loaded->is_training());
  for (const auto& p : loaded->parameters()) EXPECT_FALSE(p.requires_grad());
  loaded->train();
  for (const auto& p : loaded->parameters()) EXPECT_TRUE(p.requires_grad());

  // Another vocabulary: the strict load names the mismatched keys.
  try {
    make("vq", "vocab_size = 128\nweights = \"" + path + "\"\n");
    FAIL() << "expected UserError";
  } catch (const bevt::UserError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("quantize.embedding"), std::string::npos) << m;
    EXPECT_NE(m.find("vocab_size 128"), std::string::npos) << m;
  }
  // Another size (hidden): mismatched conv weights.
  try {
    make("vq", "hidden = 16\nweights = \"" + path + "\"\n");
    FAIL() << "expected UserError";
  } catch (const bevt::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("conv_in.weight (file [32"), std::string::npos) << e.what();
  }
  // Missing file: says how to produce it.
  try {
    make("vq", "weights = \"" + tmp("no_such_vq.safetensors") + "\"\n");
    FAIL() << "expected UserError";
  } catch (const bevt::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("bevt-run experiments/tokenizers/vq_small.toml"), std::string::npos)
        << e.what();
  }
}

TEST(vq_tokenizer, CentredTokensIgnoreAGlobalColourShiftAndItsWeightsSayCentred) {
  torch::manual_seed(4);
  torch::Generator gen = at::detail::createCPUGenerator(6);
  auto plain = make("vq", "");
  auto centred = make("vq", "centre = true\n");
  plain->eval();
  centred->eval();
  // Blocks in [0.25, 0.75]: shifting every pixel by 0.2 keeps the image in [0, 1].
  torch::Tensor img = colour_blocks(8, 32, gen) * 0.5 + 0.25;
  torch::Tensor shifted = img + 0.2;
  EXPECT_TRUE(torch::equal(centred->tokenize(img), centred->tokenize(shifted)));
  EXPECT_FALSE(torch::equal(plain->tokenize(img), plain->tokenize(shifted)));
  // What the encoder sees and the decoder reconstructs: the image less its mean colour.
  torch::Tensor p = centred->prepare(img);
  EXPECT_TRUE(torch::allclose(p, centred->prepare(shifted), 1e-5, 1e-5));
  EXPECT_LT(p.mean({2, 3}).abs().max().item<double>(), 1e-6);
  // Centred weights carry a marker: loading them without centre = true (or the other way) is a clear error.
  EXPECT_TRUE(centred->export_weights().count("input_centre"));
  EXPECT_FALSE(plain->export_weights().count("input_centre"));
  const std::string cpath = tmp("vq_centred.safetensors"), ppath = tmp("vq_plain.safetensors");
  bevt::save_safetensors(cpath, centred->export_weights());
  bevt::save_safetensors(ppath, plain->export_weights());
  EXPECT_TRUE(torch::equal(make("vq", "centre = true\nweights = \"" + cpath + "\"\n")->tokenize(img),
                           centred->tokenize(img)));
  for (const auto& [extra, path] : {std::pair<std::string, std::string>{"", cpath}, {"centre = true\n", ppath}}) {
    auto err = bevt::test::error_of([&] { make("vq", extra + "weights = \"" + path + "\"\n"); });
    EXPECT_NE(err.find("input_centre"), std::string::npos) << err;
    EXPECT_NE(err.find(extra.empty() ? "centre false" : "centre true"), std::string::npos) << err;
  }
}

// A silhouette drawn in two colours: the object brighter than the background, as the generator draws them.
torch::Tensor silhouette(const torch::Tensor& mask, const std::array<double, 3>& bg, const std::array<double, 3>& fg) {
  auto c = [](const std::array<double, 3>& v) { return torch::tensor({v[0], v[1], v[2]}).view({1, 3, 1, 1}); };
  torch::Tensor m = mask.to(torch::kFloat32).unsqueeze(1);
  return c(bg) * (1 - m) + c(fg) * m;
}

TEST(vq_tokenizer, LumaTokensTellTheSilhouetteNotItsColoursAndReplicatePaddingKeepsFlatCellsAlike) {
  torch::manual_seed(4);
  torch::Generator gen = at::detail::createCPUGenerator(9);
  auto luma = make("vq", "input = \"luma\"\npadding = \"replicate\"\n");
  auto plain = make("vq", "");
  luma->eval();
  plain->eval();
  // Four random blobs of 8x8 blocks on a 32x32 frame, in two colour schemes with the object the brighter one.
  torch::Tensor mask = torch::rand({4, 1, 4, 4}, gen) < 0.3;
  mask = mask.repeat_interleave(8, 2).repeat_interleave(8, 3).squeeze(1);
  torch::Tensor a = silhouette(mask, {0.10, 0.25, 0.15}, {0.95, 0.60, 0.20});
  torch::Tensor b = silhouette(mask, {0.30, 0.05, 0.20}, {0.40, 0.90, 0.95});
  EXPECT_TRUE(torch::equal(luma->tokenize(a), luma->tokenize(b)));
  EXPECT_FALSE(torch::equal(plain->tokenize(a), plain->tokenize(b)));
  // What the encoder sees (and the decoder reconstructs): zero mean, unit deviation, the same in all 3 channels.
  torch::Tensor p = luma->prepare(a);
  EXPECT_LT(p.mean({2, 3}).abs().max().item<double>(), 1e-5);
  EXPECT_NEAR(p.pow(2).mean({2, 3}).sqrt().min().item<double>(), 1.0, 1e-4);
  EXPECT_TRUE(torch::equal(p.select(1, 0), p.select(1, 2)));
  // A flat frame: every cell the same code with replicated borders; zero padding sets the border cells apart.
  torch::Tensor flat = torch::full({1, 3, 32, 32}, 0.4);
  auto rep = make("vq", "padding = \"replicate\"\n");
  rep->eval();
  EXPECT_EQ(std::get<0>(at::_unique(rep->tokenize(flat))).numel(), 1);
  EXPECT_EQ(std::get<0>(at::_unique(luma->tokenize(flat))).numel(), 1);
  torch::Tensor zl = plain->logits(plain->prepare(flat));
  EXPECT_FALSE(torch::allclose(zl.select(2, 0).select(2, 0), zl.select(2, 1).select(2, 1)));
  // The weights say how they were trained: loading them into the other configuration is a clear error.
  auto w = luma->export_weights();
  EXPECT_TRUE(w.count("input_luma") && w.count("pad_replicate"));
  const std::string lpath = tmp("vq_luma.safetensors");
  bevt::save_safetensors(lpath, w);
  EXPECT_TRUE(torch::equal(
      make("vq", "input = \"luma\"\npadding = \"replicate\"\nweights = \"" + lpath + "\"\n")->tokenize(a),
      luma->tokenize(a)));
  auto err = bevt::test::error_of([&] { make("vq", "weights = \"" + lpath + "\"\n"); });
  EXPECT_NE(err.find("input_luma"), std::string::npos) << err;
  EXPECT_NE(err.find("input rgb, padding zeros"), std::string::npos) << err;
  EXPECT_THROW(make("vq", "input = \"hsv\"\n"), bevt::UserError);
  EXPECT_THROW(make("vq", "padding = \"reflect\"\n"), bevt::UserError);
  EXPECT_THROW(make("vq", "input = \"luma\"\ncentre = true\n"), bevt::UserError);
}

TEST(vq_tokenizer, BadInputAndBadKeys) {
  auto tok = make("vq", "");
  EXPECT_THROW(tok->tokenize(torch::rand({2, 3, 32, 32}) * 2), bevt::UserError);
  EXPECT_THROW(tok->tokenize(torch::rand({2, 3, 30, 32})), bevt::UserError);
  EXPECT_THROW(tok->tokenize(torch::rand({2, 1, 32, 32})), bevt::UserError);
  EXPECT_THROW(make("vq", "downsample = 6\n"), bevt::UserError);
  EXPECT_THROW(make("vq", "recon_loss = \"l3\"\n"), bevt::UserError);
  EXPECT_THROW(make("vq", "channel_mult = [1, 2, 3]\n"), bevt::UserError);
  EXPECT_THROW(make("vq", "perceptual_weight = 1.0\n"), bevt::UserError);  // not a vq key
  EXPECT_THROW(make("peco", "input_size = 32\ndownsample = 4\nchannel_mult = []\n"), bevt::UserError);  // no table
}

TEST(vq_tokenizer, PecoPaperConfiguration) {
  // The paper's geometry: codebook 8192, 14x14 tokens for 224 inputs (no backbone needed to tokenize).
  auto peco = make("peco", "perceptual_weight = 0.0\n");
  EXPECT_EQ(peco->vocab_size(), 8192);
  EXPECT_EQ(peco->downsample(), 16);
  EXPECT_EQ(peco->input_size(), 224);
  int64_t n_params = 0;
  for (const auto& p : peco->parameters()) n_params += p.numel();
  std::printf("peco default: %lld trainable parameters\n", static_cast<long long>(n_params));
  torch::Tensor ids = peco->tokenize(torch::rand({2, 3, 224, 224}));
  EXPECT_EQ(ids.sizes(), (std::vector<int64_t>{2, 14, 14}));
  EXPECT_TRUE(ids.lt(8192).all().item<bool>());
}

const char* kTinyPeco =
    "vocab_size = 64\ncode_dim = 8\ndownsample = 4\nhidden = 16\nchannel_mult = []\ninput_size = 32\n"
    "perceptual_stages = [\"stage1\", \"stage2\"]\n"
    "[perceptual]\nplugin = \"video_swin\"\nembed_dim = 8\ndepths = [1, 1]\nnum_heads = [1, 1]\n"
    "window_size = [2, 4, 4]\ndrop_path_rate = 0.0\n";

TEST(vq_tokenizer, PecoPerceptualTermThroughAFrozenBackbone) {
  if (!has_plugin("video_swin"))
    GTEST_SKIP() << "the video_swin backbone plugin is not built in " << BEVT_PLUGIN_DIR
                 << " (build target video_swin to run this case)";
  torch::manual_seed(5);
  built_backbones().clear();
  auto peco = make("peco", kTinyPeco);
  ASSERT_EQ(built_backbones().size(), 1u);
  auto backbone = built_backbones().front();
  // Only the tokenizer's own tensors are parameters / weights.
  for (const auto& kv : peco->export_weights()) {
    const std::string& k = kv.first;
    EXPECT_TRUE(k.rfind("encoder.", 0) == 0 || k.rfind("decoder.", 0) == 0 || k.rfind("quantize.", 0) == 0) << k;
  }
  for (const auto& p : backbone->parameters()) EXPECT_FALSE(p.requires_grad());

  peco->train();
  torch::Tensor img = torch::rand({2, 3, 32, 32});
  bevt::TokenizerLoss loss = peco->training_loss(img);
  ASSERT_TRUE(loss.terms.count("perceptual"));
  EXPECT_GT(loss.terms.at("perceptual").item<double>(), 0.0);
  EXPECT_FALSE(backbone->is_training());
  peco->zero_grad();
  loss.total.backward();
  for (const auto& p : backbone->parameters()) EXPECT_FALSE(p.grad().defined());

  // Gradients with and without the perceptual term, from identical weights and images: they differ, so the
  // term is differentiable w.r.t. the tokenizer (and only the tokenizer: the backbone never gets a grad).
  auto plain = make("peco", kTinyPeco);
  auto nop = registry().build_as<bevt::Tokenizer>(
      "tokenizer",
      bevt::Config::from_toml("plugin = \"peco\"\nvocab_size = 64\ncode_dim = 8\ndownsample = 4\nhidden = 16\n"
                              "channel_mult = []\ninput_size = 32\nperceptual_weight = 0.0\n",
                              "test_vq_tokenizer"),
      context());
  bevt::TensorMap w = peco->export_weights();
  nop->load_weights(w);
  plain->load_weights(w);
  nop->train();
  plain->train();
  torch::Tensor img2 = torch::rand({2, 3, 32, 32});
  auto l_nop = nop->training_loss(img2);
  auto l_per = plain->training_loss(img2);
  EXPECT_EQ(l_nop.terms.at("perceptual").item<double>(), 0.0);
  EXPECT_TRUE(torch::allclose(l_nop.terms.at("recon"), l_per.terms.at("recon")));
  nop->zero_grad();
  plain->zero_grad();
  l_nop.total.backward();
  l_per.total.backward();
  double diff = 0;
  auto pn = nop->named_parameters();
  for (const auto& kv : plain->named_parameters())
    diff += (kv.value().grad() - pn[kv.key()].grad()).abs().sum().item<double>();
  EXPECT_GT(diff, 0.0);
  for (const auto& b : built_backbones())
    for (const auto& p : b->parameters()) EXPECT_FALSE(p.grad().defined());
}

// A tiny peco without the perceptual network (perceptual_weight 0: the adversarial mechanics alone).
#define TINY_GAN_BASE \
  "vocab_size = 64\ncode_dim = 8\ndownsample = 4\nhidden = 16\nchannel_mult = []\ninput_size = 32\n" \
  "perceptual_weight = 0.0\n"
const char* kTinyGan = TINY_GAN_BASE "disc_layers = 2\ndisc_width = 16\n";

// Copies the tokenizer weights of `from` into `to` and switches both to training.
void same_start(bevt::Tokenizer& from, bevt::Tokenizer& to) {
  to.load_weights(from.export_weights());
  from.train();
  to.train();
}

double grad_diff(bevt::Tokenizer& a, bevt::Tokenizer& b) {
  double diff = 0;
  auto pb = b.named_parameters();
  for (const auto& kv : a.named_parameters()) {
    const torch::Tensor& ga = kv.value().grad();
    const torch::Tensor& gb = pb[kv.key()].grad();
    if (!ga.defined() || !gb.defined()) return -1;
    diff += (ga - gb).abs().sum().item<double>();
  }
  return diff;
}

TEST(vq_tokenizer, PecoAdversarialTermIsWired) {
  torch::manual_seed(6);
  auto gan = make("peco", std::string(kTinyGan) + "disc_weight = 0.8\ndisc_start = 0\n");
  auto late = make("peco", std::string(kTinyGan) + "disc_weight = 0.8\ndisc_start = 5\n");
  auto none = make("peco", std::string(kTinyGan) + "disc_weight = 0.0\n");
  ASSERT_TRUE(gan->adversary());
  EXPECT_FALSE(none->adversary());
  // The discriminator is not part of the tokenizer's parameters or weights.
  for (const auto& kv : gan->export_weights()) EXPECT_EQ(kv.first.rfind("discriminator", 0), std::string::npos);
  const auto own = gan->parameters().size();
  EXPECT_EQ(own, none->parameters().size());
  same_start(*gan, *none);
  same_start(*gan, *late);
  torch::Tensor img = torch::rand({4, 3, 32, 32});
  gan->set_train_step(0);
  late->set_train_step(0);
  auto lg = gan->training_loss(img);
  auto ll = late->training_loss(img);
  auto ln = none->training_loss(img);
  EXPECT_TRUE(torch::equal(lg.terms.at("recon"), ln.terms.at("recon")));
  // On: an adaptive weight > 0, a discriminator loss to train on; off (before disc_start / weight 0): neither.
  const double lambda = lg.terms.at("adv_weight").item<double>();
  std::printf("adversarial: lambda %.4g, adv %.4g, disc_loss %.4g, logits real %.4g fake %.4g\n", lambda,
              lg.terms.at("adv").item<double>(), lg.terms.at("disc_loss").item<double>(),
              lg.terms.at("logits_real").item<double>(), lg.terms.at("logits_fake").item<double>());
  EXPECT_GT(lambda, 0.0);
  ASSERT_TRUE(lg.adversary.defined());
  EXPECT_TRUE(lg.adversary.requires_grad());
  EXPECT_FALSE(ll.adversary.defined());
  EXPECT_FALSE(ln.adversary.defined());
  EXPECT_EQ(ll.terms.at("adv_weight").item<double>(), 0.0);
  EXPECT_FALSE(ln.terms.count("adv_weight") && ln.terms.at("adv_weight").item<double>() != 0.0);
  // total = nll + commit + lambda * adv (perceptual off).
  EXPECT_NEAR(lg.total.item<double>(),
              (lg.terms.at("recon") + lg.terms.at("commit") + lambda * lg.terms.at("adv")).item<double>(), 1e-5);

  for (auto* t : {gan.get(), late.get(), none.get()}) t->zero_grad();
  gan->adversary()->zero_grad();
  lg.total.backward();
  ll.total.backward();
  ln.total.backward();
  // The generator's gradient differs with the term on, and is identical with it off.
  EXPECT_GT(grad_diff(*gan, *none), 0.0);
  // VQGAN's adaptive weight by hand, at the decoder's last layer W: with perceptual off, nll = recon and the
  // commitment term does not reach W, so dL_none/dW = dnll/dW and dL_gan/dW - dL_none/dW = lambda * dg/dW. With
  // a = |dnll/dW| and b = |lambda * dg/dW|, lambda = 0.8 * a / (|dg/dW| + 1e-4) becomes b + 1e-4 * lambda = 0.8 a.
  {
    const torch::Tensor gw = gan->named_parameters()["decoder.conv_out.weight"].grad();
    const torch::Tensor nw = none->named_parameters()["decoder.conv_out.weight"].grad();
    const double a = nw.norm().item<double>();
    const double b = (gw - nw).norm().item<double>();
    ASSERT_GT(a, 0.0);
    EXPECT_NEAR(b + 1e-4 * lambda, 0.8 * a, 1e-4 * 0.8 * a) << "lambda " << lambda << ", a " << a << ", b " << b;
  }
  EXPECT_EQ(grad_diff(*late, *none), 0.0);
  // The tokenizer's loss gives the discriminator no gradient; the adversary loss gives it one (and the
  // tokenizer none: it is computed on detached images).
  for (const auto& p : gan->adversary()->parameters()) EXPECT_FALSE(p.grad().defined() && p.grad().abs().sum().item<double>() > 0);
  std::vector<torch::Tensor> before;
  for (const auto& p : gan->parameters()) before.push_back(p.grad().clone());
  lg.adversary.backward();
  double dg = 0;
  for (const auto& p : gan->adversary()->parameters()) dg += p.grad().abs().sum().item<double>();
  EXPECT_GT(dg, 0.0);
  auto after = gan->parameters();
  for (size_t i = 0; i < after.size(); ++i) EXPECT_TRUE(torch::equal(after[i].grad(), before[i]));

  // The non-saturating form: softplus losses, positive and finite.
  auto ns = make("peco", std::string(kTinyGan) + "disc_start = 0\ndisc_loss = \"non_saturating\"\n");
  ns->train();
  auto lns = ns->training_loss(img);
  ASSERT_TRUE(lns.adversary.defined());
  EXPECT_GT(lns.terms.at("adv").item<double>(), 0.0);
  EXPECT_TRUE(std::isfinite(lns.adversary.item<double>()) && lns.adversary.item<double>() > 0.0);

  // Outside training (eval) the term is off.
  gan->eval();
  torch::NoGradGuard ng;
  EXPECT_FALSE(gan->training_loss(img).adversary.defined());
}

TEST(vq_tokenizer, DiscriminatorLearnsToSeparateRealFromReconstructions) {
  // The tokenizer stays fixed (an untrained one reconstructs badly); 40 Adam steps on the adversary loss alone
  // must take the hinge loss from ~1 (chance) well down and put real logits above fake ones.
  torch::manual_seed(8);
  torch::set_num_threads(1);
  torch::Generator gen = at::detail::createCPUGenerator(9);
  auto tok = make("peco", std::string(kTinyGan) + "disc_start = 0\n");
  tok->train();
  tok->set_train_step(0);
  auto disc = tok->adversary();
  torch::optim::Adam opt(disc->parameters(), torch::optim::AdamOptions(1e-3).betas({0.5, 0.9}));
  double first = 0, last = 0, real = 0, fake = 0;
  const int steps = 40;
  for (int s = 0; s < steps; ++s) {
    auto l = tok->training_loss(colour_blocks(8, 32, gen));
    opt.zero_grad();
    l.adversary.backward();
    opt.step();
    if (s < 3) first += l.terms.at("disc_loss").item<double>() / 3;
    if (s >= steps - 3) {
      last += l.terms.at("disc_loss").item<double>() / 3;
      real += l.terms.at("logits_real").item<double>() / 3;
      fake += l.terms.at("logits_fake").item<double>() / 3;
    }
  }
  std::printf("discriminator: hinge loss %.3f -> %.3f, logits real %.3f fake %.3f\n", first, last, real, fake);
  EXPECT_LT(last, 0.5 * first);
  EXPECT_GT(real, fake + 0.5);
}

TEST(vq_tokenizer, FrozenPecoLoadsOnlyItsOwnParts) {
  torch::manual_seed(10);
  auto gan = make("peco", std::string(kTinyGan) + "disc_start = 0\n");
  gan->train();
  gan->training_loss(torch::rand({4, 3, 32, 32}));
  gan->eval();
  // A checkpoint-like file: the tokenizer's weights plus discriminator.* tensors.
  bevt::TensorMap w = gan->export_weights();
  for (const auto& kv : bevt::state_dict(*gan->adversary())) w["discriminator." + kv.first] = kv.second;
  const std::string path = tmp("peco_with_disc.safetensors");
  bevt::save_safetensors(path, w);
  // Frozen use: no [perceptual] table (perceptual_weight keeps its default 1.0), no discriminator built.
  auto frozen = make("peco", "vocab_size = 64\ncode_dim = 8\ndownsample = 4\nhidden = 16\nchannel_mult = []\n"
                             "input_size = 32\nweights = \"" + path + "\"\n");
  EXPECT_FALSE(frozen->adversary());
  EXPECT_FALSE(frozen->is_training());
  torch::Tensor img = torch::rand({6, 3, 32, 32});
  EXPECT_TRUE(torch::equal(frozen->tokenize(img), gan->tokenize(img)));
  // Training it further needs the parts it did not build: a one-line UserError, not a silent change of loss.
  std::string e = bevt::test::error_of([&] { frozen->train(); });
  EXPECT_NE(e.find("[perceptual] table"), std::string::npos) << e;
}

TEST(vq_tokenizer, PecoBadAdversarialKeys) {
  auto msg = [](const std::string& extra) {
    try {
      make("peco", TINY_GAN_BASE + extra);
    } catch (const bevt::UserError& e) {
      return std::string(e.what());
    }
    return std::string("(no UserError)");
  };
  EXPECT_NE(msg("disc_weight = -0.5\n").find("disc_weight must be >= 0"), std::string::npos);
  EXPECT_NE(msg("disc_loss = \"wgan\"\n").find("disc_loss must be"), std::string::npos);
  EXPECT_NE(msg("disc_layers = 0\n").find("disc_layers must be in 1..8"), std::string::npos);
  EXPECT_NE(msg("disc_layers = 4\n").find("small enough for input_size = 32"), std::string::npos);
  EXPECT_NE(msg("disc_start = -1\n").find("disc_start must be >= 0"), std::string::npos);
  EXPECT_NE(msg("disc_width = 0\n").find("disc_width must be >= 1"), std::string::npos);
  EXPECT_NE(msg("disc_lr_mult = 0.0\n").find("disc_lr_mult must be > 0"), std::string::npos);
  EXPECT_THROW(make("vq", "disc_weight = 0.5\n"), bevt::UserError);  // not a vq key
  // Images the host should never pass: NaN or out of range, in training too.
  auto tok = make("peco", kTinyGan);
  tok->train();
  torch::Tensor nan = torch::rand({2, 3, 32, 32});
  nan[0][0][0][0] = std::nan("");
  EXPECT_THROW(tok->training_loss(nan), bevt::UserError);
  EXPECT_THROW(tok->training_loss(torch::rand({2, 3, 32, 32}) * 255), bevt::UserError);
  EXPECT_THROW(tok->tokenize(nan), bevt::UserError);
}

}  // namespace

// `pixels`: MAE's normalised-pixel regression targets (no weights, nothing trained).
TEST(pixel_targets, PatchifyOrderNormalisationAndShapes) {
  torch::Generator gen = at::detail::createCPUGenerator(3);
  torch::Tensor img = torch::rand({2, 3, 32, 32}, gen);
  auto raw = make("pixels", "input_size = 32\ndownsample = 8\nnorm = \"none\"\n");
  EXPECT_EQ(raw->target_dim(), 192);
  EXPECT_EQ(raw->vocab_size(), 192);  // the decoders' lm_head outputs
  torch::Tensor t = raw->targets(img);
  ASSERT_EQ(t.sizes(), (std::vector<int64_t>{2, 192, 4, 4}));
  // MAE's patchify order: value k = (row * 8 + column) * 3 + channel of the cell.
  for (auto [n, i, j, py, px, c] : {std::array<int64_t, 6>{0, 0, 0, 0, 0, 0}, {1, 2, 3, 5, 1, 2}, {0, 3, 1, 7, 6, 1}})
    EXPECT_EQ(t[n][(py * 8 + px) * 3 + c][i][j].item<float>(), img[n][c][i * 8 + py][j * 8 + px].item<float>());
  // norm = "patch": each cell's vector has mean 0 and (unbiased) variance 1.
  torch::Tensor z = make("pixels", "input_size = 32\ndownsample = 8\n")->targets(img);
  EXPECT_LT(z.mean(1).abs().max().item<double>(), 1e-5);
  EXPECT_LT((z.var(1, /*unbiased=*/true) - 1).abs().max().item<double>(), 1e-3);
  // luma: one value per pixel, the BT.601 luminance; a flat cell gives zeros (up to the rounding of its mean).
  auto luma = make("pixels", "input_size = 32\ndownsample = 8\nluma = true\nnorm = \"none\"\n");
  EXPECT_EQ(luma->target_dim(), 64);
  torch::Tensor y = luma->targets(img);
  EXPECT_NEAR(y[1][9][2][0].item<float>(),
              (0.299 * img[1][0][17][1] + 0.587 * img[1][1][17][1] + 0.114 * img[1][2][17][1]).item<float>(), 1e-6);
  torch::Tensor flat = make("pixels", "input_size = 32\ndownsample = 8\nluma = true\n")->targets(torch::full({1, 3, 32, 32}, 0.3));
  EXPECT_LT(flat.abs().max().item<double>(), 1e-4);
  // It serves pre-training only, and says so; bad keys and views are one-line errors.
  EXPECT_THROW(raw->tokenize(img), bevt::UserError);
  EXPECT_THROW(raw->targets(torch::rand({1, 3, 30, 32})), bevt::UserError);
  EXPECT_THROW(raw->targets(img * 2), bevt::UserError);
  EXPECT_THROW(make("pixels", "input_size = 30\ndownsample = 8\n"), bevt::UserError);
  EXPECT_THROW(make("pixels", "norm = \"l2\"\n"), bevt::UserError);
  EXPECT_THROW(make("pixels", "input_size = 8\ndownsample = 1\nluma = true\n"), bevt::UserError);
  EXPECT_TRUE(raw->export_weights().empty());
}

namespace {

// MaskFeat's HOG written out pixel by pixel (loops, no tensor ops): reflect padding, Sobel, unsigned
// orientation bin floor(atan2(gx, gy) / pi * bins) mod bins, Gaussian-weighted magnitude summed per cell, L2.
std::vector<double> hog_by_hand(const torch::Tensor& img, int64_t d, int64_t cell, int64_t bins) {
  const int64_t C = img.size(0), H = img.size(1), W = img.size(2), k = d / cell;
  auto a = img.accessor<float, 3>();
  auto px = [&](int64_t c, int64_t y, int64_t x) {  // reflect padding by one
    y = y < 0 ? -y : (y >= H ? 2 * H - 2 - y : y);
    x = x < 0 ? -x : (x >= W ? 2 * W - 2 - x : x);
    return static_cast<double>(a[c][y][x]);
  };
  std::vector<double> g(static_cast<size_t>(d));
  double gsum = 0;
  for (int64_t i = 0; i < d; ++i) {
    const double n = (static_cast<double>(i) - (static_cast<double>(d) - 1) / 2) / static_cast<double>(d / 2);
    g[static_cast<size_t>(i)] = std::exp(-0.5 * n * n);
  }
  for (double u : g)
    for (double v : g) gsum += u * v;
  // hist[c][bin][cy][cx] over the whole image's HOG cells.
  const int64_t Hc = H / cell, Wc = W / cell;
  std::vector<double> hist(static_cast<size_t>(C * bins * Hc * Wc), 0.0);
  for (int64_t c = 0; c < C; ++c)
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x) {
        // Cross-correlation with [[1,0,-1],[2,0,-2],[1,0,-1]] (gx) and its transpose (gy).
        const double gx = px(c, y - 1, x - 1) - px(c, y - 1, x + 1) + 2 * px(c, y, x - 1) - 2 * px(c, y, x + 1) +
                          px(c, y + 1, x - 1) - px(c, y + 1, x + 1);
        const double gy = px(c, y - 1, x - 1) - px(c, y + 1, x - 1) + 2 * px(c, y - 1, x) - 2 * px(c, y + 1, x) +
                          px(c, y - 1, x + 1) - px(c, y + 1, x + 1);
        int64_t b = static_cast<int64_t>(std::floor(std::atan2(gx, gy) / M_PI * static_cast<double>(bins)));
        b = ((b % bins) + bins) % bins;
        const double w = g[static_cast<size_t>(y % d)] * g[static_cast<size_t>(x % d)] / gsum;
        hist[static_cast<size_t>(((c * bins + b) * Hc + y / cell) * Wc + x / cell)] += w * std::hypot(gx, gy);
      }
  for (int64_t c = 0; c < C; ++c)
    for (int64_t cy = 0; cy < Hc; ++cy)
      for (int64_t cx = 0; cx < Wc; ++cx) {
        double n2 = 0;
        for (int64_t b = 0; b < bins; ++b) n2 += std::pow(hist[static_cast<size_t>(((c * bins + b) * Hc + cy) * Wc + cx)], 2);
        for (int64_t b = 0; b < bins; ++b)
          hist[static_cast<size_t>(((c * bins + b) * Hc + cy) * Wc + cx)] /= std::max(std::sqrt(n2), 1e-12);
      }
  // Token cell (i, j): values in (channel, bin, row, column) order, then cells row-major.
  std::vector<double> out;
  for (int64_t i = 0; i < H / d; ++i)
    for (int64_t j = 0; j < W / d; ++j)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t b = 0; b < bins; ++b)
          for (int64_t r = 0; r < k; ++r)
            for (int64_t s = 0; s < k; ++s)
              out.push_back(hist[static_cast<size_t>(((c * bins + b) * Hc + i * k + r) * Wc + j * k + s)]);
  return out;
}

}  // namespace

// `hog`: MaskFeat's histograms of oriented gradients as regression targets (no weights, nothing trained).
TEST(hog_targets, MaskFeatHistogramsPerCellInChannelBinRowColumnOrder) {
  torch::Generator gen = at::detail::createCPUGenerator(5);
  const torch::Tensor img = torch::rand({2, 3, 16, 24}, gen);
  auto hog = make("hog", "input_size = 16\ndownsample = 8\ncell = 4\n");
  EXPECT_EQ(hog->target_dim(), 3 * 9 * 2 * 2);
  EXPECT_EQ(hog->vocab_size(), hog->target_dim());
  const torch::Tensor t = hog->targets(img);
  ASSERT_EQ(t.sizes(), (std::vector<int64_t>{2, 108, 2, 3}));
  for (int64_t n = 0; n < 2; ++n) {
    const std::vector<double> want = hog_by_hand(img[n].contiguous(), 8, 4, 9);
    const torch::Tensor got = t[n].permute({1, 2, 0}).reshape({-1});
    ASSERT_EQ(got.numel(), static_cast<int64_t>(want.size()));
    double worst = 0;
    for (size_t i = 0; i < want.size(); ++i)
      worst = std::max(worst, std::abs(got[static_cast<int64_t>(i)].item<double>() - want[i]));
    EXPECT_LT(worst, 1e-5) << "image " << n;
  }
  // Orientation: a vertical edge has horizontal gradients (bin 4 of 9: atan2(gx, 0) = +-pi/2), a horizontal
  // edge vertical ones (bin 0); luma gives one channel; flat views give zeros.
  auto luma = make("hog", "input_size = 16\ndownsample = 8\ncell = 8\nluma = true\ngaussian = false\n");
  EXPECT_EQ(luma->target_dim(), 9);
  torch::Tensor vertical = torch::zeros({1, 3, 16, 16});
  vertical.index_put_({torch::indexing::Slice(), torch::indexing::Slice(), torch::indexing::Slice(),
                       torch::indexing::Slice(4, 12)}, 1.0);
  const torch::Tensor v = luma->targets(vertical);
  EXPECT_NEAR(v[0][4][0][0].item<double>(), 1.0, 1e-6);
  const torch::Tensor h = luma->targets(vertical.transpose(2, 3).contiguous());
  EXPECT_NEAR(h[0][0][0][0].item<double>(), 1.0, 1e-6);
  // A flat view's gradients are zero up to the rounding of the convolution, which MaskFeat's norm floor
  // (eps 1e-12) would scale up to unit histograms; a floor above rounding keeps them at zero.
  auto floored = make("hog", "input_size = 16\ndownsample = 8\ncell = 8\nluma = true\neps = 1e-3\n");
  EXPECT_LT(floored->targets(torch::full({1, 3, 16, 16}, 0.4)).abs().max().item<double>(), 1e-3);
  EXPECT_NEAR(floored->targets(vertical)[0][4][0][0].item<double>(), 1.0, 1e-6);
  // Pre-training only; bad keys and views are one-line errors; no weights.
  EXPECT_THROW(hog->tokenize(img), bevt::UserError);
  EXPECT_THROW(hog->targets(torch::rand({1, 3, 12, 16})), bevt::UserError);
  EXPECT_THROW(hog->targets(img * 2), bevt::UserError);
  EXPECT_THROW(make("hog", "downsample = 8\ncell = 3\n"), bevt::UserError);
  EXPECT_THROW(make("hog", "norm = \"l1\"\n"), bevt::UserError);
  EXPECT_THROW(make("hog", "bins = 1\n"), bevt::UserError);
  EXPECT_THROW(make("hog", "eps = 0.0\n"), bevt::UserError);
  EXPECT_TRUE(hog->export_weights().empty());
}
