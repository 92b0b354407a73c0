// The checkpoint converters (build/bin/bevt-convert: tools/convert_checkpoint.py and tools/convert_dalle.py on
// the Python of bevt's torch) checked against LibTorch's own serializer: torch::pickle_load is the C++
// deserializer of torch.save's zip format and torch::pickle_save writes that format, so a .pth the converter
// writes must load with pickle_load, and a .pth pickle_save writes must convert. Then official-layout
// checkpoints go through the real binaries: a fine-tune checkpoint evaluates with bevt-run, a pickled DALL-E
// encoder module passes the dalle fixture.
#include <gtest/gtest.h>
#include <torch/csrc/jit/serialization/pickle.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "bevt/safetensors.h"
#include "test_sandbox.h"

namespace t = bevt::test;
using t::read_text;
namespace fs = std::filesystem;

namespace {

// The converters' command lines: bevt-convert (tools/convert_checkpoint.py) and bevt-convert dalle
// (tools/convert_dalle.py).
std::string tool(const std::string& script) {
  return t::bin("bevt-convert") + (script == "convert_dalle.py" ? " dalle " : " ");
}

std::vector<char> read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::vector<char>(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const fs::path& p, const std::vector<char>& b) {
  std::ofstream(p, std::ios::binary).write(b.data(), static_cast<std::streamsize>(b.size()));
}

// Every dtype bevt's safetensors holds, a 0-d and an empty tensor, official-looking names.
bevt::TensorMap every_dtype() {
  torch::manual_seed(0);
  bevt::TensorMap m;
  m["backbone.patch_embed.proj.weight"] = torch::randn({4, 3, 2, 2, 2});
  m["backbone.layers.0.blocks.0.attn.relative_position_index"] = torch::randint(0, int64_t(1) << 40, {7, 7}, torch::kLong);
  m["cls_head.fc_cls.weight"] = torch::randn({10, 4});
  m["f64"] = torch::randn({5}, torch::kFloat64);
  m["f16"] = torch::randn({3, 2}).to(torch::kHalf);
  m["bf16"] = torch::randn({2, 3}).to(torch::kBFloat16);
  m["i32"] = torch::randint(-1000000, 1000000, {4}, torch::kInt);
  m["i16"] = torch::randint(-30000, 30000, {3}, torch::kShort);
  m["i8"] = torch::randint(-128, 127, {2}, torch::kChar);
  m["u8"] = torch::randint(0, 255, {3}, torch::kByte);
  m["mask"] = torch::rand({2, 2}) > 0.5;
  m["scalar"] = torch::tensor(2.5);
  m["empty"] = torch::zeros({0, 3});
  return m;
}

void expect_same(const bevt::TensorMap& want, const c10::impl::GenericDict& got) {
  EXPECT_EQ(got.size(), want.size());
  for (const auto& [k, v] : want) {
    ASSERT_TRUE(got.contains(k)) << k;
    at::Tensor g = got.at(k).toTensor();
    EXPECT_EQ(g.scalar_type(), v.scalar_type()) << k;
    EXPECT_EQ(g.sizes(), v.sizes()) << k;
    EXPECT_TRUE(torch::equal(g, v)) << k;
  }
}

void expect_same(const bevt::TensorMap& want, const bevt::TensorMap& got) {
  EXPECT_EQ(got.size(), want.size());
  for (const auto& [k, v] : want) {
    auto it = got.find(k);
    ASSERT_NE(it, got.end()) << k;
    EXPECT_EQ(it->second.scalar_type(), v.scalar_type()) << k;
    EXPECT_EQ(it->second.sizes(), v.sizes()) << k;
    EXPECT_TRUE(torch::equal(it->second, v)) << k;
  }
}

}  // namespace

// safetensors (written by the SDK) -> .pth (the converter's writer) -> LibTorch's deserializer.
TEST(convert, PytorchDeserializerLoadsTheWrittenPth) {
  auto d = t::temp_dir("convert_to_pth");
  bevt::TensorMap m = every_dtype();
  bevt::save_safetensors((d / "a.safetensors").string(), m);

  auto r = t::run(tool("convert_checkpoint.py") + (d / "a.safetensors").string() + " " + (d / "mmcv.pth").string());
  ASSERT_EQ(r.status, 0) << r.output;
  c10::IValue top = torch::pickle_load(read_bytes(d / "mmcv.pth"));
  ASSERT_TRUE(top.isGenericDict());
  auto dict = top.toGenericDict();
  ASSERT_TRUE(dict.contains("state_dict") && dict.contains("meta"));
  expect_same(m, dict.at("state_dict").toGenericDict());

  r = t::run(tool("convert_checkpoint.py") + (d / "a.safetensors").string() + " " + (d / "plain.pth").string() +
             " --layout plain");
  ASSERT_EQ(r.status, 0) << r.output;
  expect_same(m, torch::pickle_load(read_bytes(d / "plain.pth")).toGenericDict());
}

// LibTorch's serializer (torch.save's zip format, views sharing one storage, transposed and strided views,
// an mmcv-style nesting) -> safetensors -> the SDK's reader.
TEST(convert, ReadsWhatPytorchSerializerWrites) {
  auto d = t::temp_dir("convert_from_pth");
  bevt::TensorMap m = every_dtype();
  torch::Tensor base = torch::arange(24, torch::kFloat32).reshape({4, 6});
  c10::Dict<std::string, at::Tensor> sd;
  for (const auto& [k, v] : m) sd.insert(k, v);
  sd.insert("base", base);
  sd.insert("transposed", base.t());
  sd.insert("columns", base.slice(1, 2, 5));
  sd.insert("every_other", base.slice(0, 0, 4, 2).slice(1, 1, 6, 2));
  c10::impl::GenericDict meta(c10::StringType::get(), c10::AnyType::get());
  meta.insert("epoch", 30);
  meta.insert("mmcv_version", std::string("1.3.16"));
  c10::impl::GenericDict top(c10::StringType::get(), c10::AnyType::get());
  top.insert("meta", meta);
  top.insert("state_dict", sd);
  write_bytes(d / "official.pth", torch::pickle_save(top));

  auto r = t::run(tool("convert_checkpoint.py") + (d / "official.pth").string() + " " +
                  (d / "out.safetensors").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("mmcv checkpoint"), std::string::npos) << r.output;
  bevt::TensorMap want = m;
  want["base"] = base;
  want["transposed"] = base.t().contiguous();
  want["columns"] = base.slice(1, 2, 5).contiguous();
  want["every_other"] = base.slice(0, 0, 4, 2).slice(1, 1, 6, 2).contiguous();
  expect_same(want, bevt::load_safetensors((d / "out.safetensors").string()).tensors);
}

// An official-layout fine-tune checkpoint (mmcv {"meta", "state_dict", "optimizer"}, backbone.* and
// cls_head.fc_cls.*, EMA buffers) converts and evaluates: bevt-run ... --set run.mode=test --set
// init.checkpoint=<converted>.safetensors gives exactly the results of the model it came from.
TEST(convert, FinetuneCheckpointEvaluatesAfterConversion) {
  auto d = t::temp_dir("convert_finetune");
  const std::string model =
      "[model.backbone]\nplugin = \"video_swin\"\nembed_dim = 8\ndepths = [1, 1, 1, 1]\nnum_heads = [1, 1, 2, 2]\n"
      "window_size = [2, 4, 4]\nimage_attention = \"swin\"\n[model.heads.cls]\nplugin = \"i3d\"\n";
  auto clips = [](const std::string& table, const std::string& split, int n) {
    return "[" + table + "]\nplugin = \"synthetic\"\nsplit = \"" + split + "\"\nnum_videos = " + std::to_string(n) +
           "\nframes = 8\nsize = 32\nclip_len = 4\nframe_interval = 2\nscale_range = []\ncrop = \"none\"\n"
           "crop_size = 32\nflip = 0.0\n";
  };
  t::write_file(d / "ft.toml", "[run]\nmode = \"finetune\"\nwork_dir = \"" + (d / "ft").string() +
                                   "\"\nmax_steps = 2\nlog_every = 1\ndevice = \"cpu\"\nseed = 3\n" + model +
                                   clips("data.train", "train", 16) + clips("data.val", "val", 8) +
                                   clips("data.test", "test", 12) + "[loader]\nbatch_size = 8\neval_batch_size = 4\n");
  auto r = t::run(t::bin("bevt-run") + " " + (d / "ft.toml").string());
  ASSERT_EQ(r.status, 0) << r.output;
  std::string last = read_text(d / "ft" / "checkpoints" / "last");
  while (!last.empty() && std::isspace(static_cast<unsigned char>(last.back()))) last.pop_back();
  fs::path trained = d / "ft" / "checkpoints" / last / "model.safetensors";
  ASSERT_TRUE(fs::exists(trained)) << trained;
  bevt::TensorMap weights = bevt::load_safetensors(trained.string()).tensors;
  ASSERT_TRUE(weights.count("cls_head.fc_cls.weight") && weights.count("backbone.patch_embed.proj.weight"));

  // The file BEVT's mmcv runner would write: EMA buffers (zeros here, so using them would show), meta and
  // optimizer state next to the state dict.
  c10::Dict<std::string, at::Tensor> sd;
  for (const auto& [k, v] : weights) sd.insert(k, v);
  for (const auto& [k, v] : weights) {
    if (!v.is_floating_point()) continue;
    std::string flat = k;
    std::replace(flat.begin(), flat.end(), '.', '_');
    sd.insert("ema_" + flat, torch::zeros_like(v));
  }
  c10::impl::GenericDict meta(c10::StringType::get(), c10::AnyType::get());
  c10::impl::GenericDict optimizer(c10::StringType::get(), c10::AnyType::get());
  meta.insert("epoch", 60);
  meta.insert("config", std::string("model = dict(type='Recognizer3D')"));
  optimizer.insert("state", c10::Dict<std::string, at::Tensor>());
  c10::impl::GenericDict top(c10::StringType::get(), c10::AnyType::get());
  top.insert("meta", meta);
  top.insert("state_dict", sd);
  top.insert("optimizer", optimizer);
  write_bytes(d / "bevt_tiny.pth", torch::pickle_save(top));

  r = t::run(tool("convert_checkpoint.py") + (d / "bevt_tiny.pth").string() + " " +
             (d / "bevt_tiny.safetensors").string());
  ASSERT_EQ(r.status, 0) << r.output;
  // The EMA buffers are kept (the loader lists them and evaluates the plain weights, as mmaction's test.py).
  EXPECT_NE(r.output.find("kept"), std::string::npos) << r.output;
  bevt::TensorMap written = bevt::load_safetensors((d / "bevt_tiny.safetensors").string()).tensors;
  bevt::TensorMap plain;
  for (const auto& [k, v] : written)
    if (k.rfind("ema_", 0) != 0) plain[k] = v;
  expect_same(weights, plain);
  EXPECT_GT(written.size(), plain.size());

  auto test_with = [&](const fs::path& file, const std::string& name) {
    auto res = t::run(t::bin("bevt-run") + " " + (d / "ft.toml").string() + " --set run.mode=test --set init.checkpoint=" +
                      file.string() + " --set run.work_dir=" + (d / name).string());
    EXPECT_EQ(res.status, 0) << res.output;
    return res;
  };
  auto converted = test_with(d / "bevt_tiny.safetensors", "test_converted");
  EXPECT_NE(converted.output.find("loaded the model from"), std::string::npos) << converted.output;
  EXPECT_NE(converted.output.find("mmcv EMAHook buffers (ema_*): the official test evaluates the plain weights"),
            std::string::npos)
      << converted.output;
  test_with(trained, "test_original");
  auto a = nlohmann::json::parse(read_text(d / "test_converted" / "results.json"));
  auto b = nlohmann::json::parse(read_text(d / "test_original" / "results.json"));
  ASSERT_TRUE(a.contains("top1")) << a.dump();
  EXPECT_EQ(a["top1"], b["top1"]);
  EXPECT_EQ(a["top5"], b["top5"]);
  EXPECT_EQ(read_text(d / "test_converted" / "confusion.csv"), read_text(d / "test_original" / "confusion.csv"));
}

// A file shaped like OpenAI's encoder.pkl (a whole dall_e Encoder torch.saved by the fixture script from
// stand-in classes under dall_e's module names) holding the golden fixture's weights converts to the names the
// dalle plugin
// loads strictly, and the plugin then reproduces the official encoder's output (bevt-forward --check).
TEST(convert, PickledDalleEncoderPassesTheFixture) {
  auto d = t::temp_dir("convert_dalle");
  const fs::path fixture = fs::path(BEVT_FIXTURES_DIR) / "dalle_encoder";
  auto r = t::run(std::string(BEVT_PYTHON) + " " + BEVT_SOURCE_DIR + "/tests/python/checkpoint_fixtures.py encoder-pkl " +
                  (fixture / "weights.safetensors").string() + " " + (d / "encoder.pkl").string());
  ASSERT_EQ(r.status, 0) << r.output;
  fs::create_directories(d / "fx");
  for (const char* f : {"config.toml", "input.safetensors", "output.safetensors"})
    fs::copy_file(fixture / f, d / "fx" / f);
  r = t::run(tool("convert_dalle.py") + (d / "encoder.pkl").string() + " " + (d / "fx" / "weights.safetensors").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("pickled module (dall_e.encoder.Encoder)"), std::string::npos) << r.output;
  expect_same(bevt::load_safetensors((fixture / "weights.safetensors").string()).tensors,
              bevt::load_safetensors((d / "fx" / "weights.safetensors").string()).tensors);
  r = t::run(t::bin("bevt-forward") + " --fixture " + (d / "fx").string() + " --output " +
             (d / "out.safetensors").string() + " --check");
  EXPECT_EQ(r.status, 0) << r.output;
}

// Bad input to the converters: one line, exit status 2, nothing written.
TEST(convert, BadInputIsOneLineAndStatus2) {
  auto d = t::temp_dir("convert_bad");
  t::write_file(d / "notes.pth", "not a checkpoint");
  for (const std::string& cmd :
       {tool("convert_checkpoint.py") + (d / "missing.pth").string() + " " + (d / "o.safetensors").string(),
        tool("convert_checkpoint.py") + (d / "notes.pth").string() + " " + (d / "o.safetensors").string(),
        tool("convert_dalle.py") + (d / "notes.pth").string() + " " + (d / "o.safetensors").string()}) {
    auto r = t::run(cmd);
    EXPECT_EQ(r.status, 2) << cmd << "\n" << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
    EXPECT_FALSE(fs::exists(d / "o.safetensors"));
  }
}
