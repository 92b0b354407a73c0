// Data layer, host side: the loader (determinism across worker counts, shuffling, sharding, bad samples), the
// dataset plugins on tiny datasets laid out exactly like the public ones (with a missing and a corrupt video),
// and bevt-data.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bevt/data/video_io.h"
#include "bevt/error.h"
#include "host/data/loader.h"
#include "host/registry.h"
#include "test_videos.h"
#include "test_sandbox.h"

namespace fs = std::filesystem;
using namespace bevt;
using bevt::host::Batch;
using bevt::host::Loader;
using bevt::host::LoaderOptions;

namespace {

// Sample i: a tensor filled with i plus a draw from the sample's Rng (so the per-sample seed is visible).
class FakeDataset : public Dataset {
 public:
  FakeDataset(size_t n, std::set<int64_t> bad = {}) : n_(n), bad_(std::move(bad)) {}
  size_t size() const override { return n_; }
  Sample get(size_t i, Rng& rng) const override {
    if (bad_.count(static_cast<int64_t>(i))) throw DecodeError(fmt::format("/fake/{}.mp4: corrupt", i));
    Sample s;
    s.input = torch::full({3, 2, 4, 4}, static_cast<float>(i)) + static_cast<float>(rng.uniform());
    s.tokenizer_view = torch::zeros({2, 3, 2, 2});
    s.label = static_cast<int64_t>(i % 5);
    s.id = fmt::format("/fake/{}.mp4", i);
    return s;
  }
  std::vector<std::string> class_names() const override { return {"a", "b", "c", "d", "e"}; }
  bool is_video() const override { return true; }

 private:
  size_t n_;
  std::set<int64_t> bad_;
};

std::vector<Batch> epoch_batches(std::shared_ptr<Dataset> ds, LoaderOptions o, int64_t epoch, int64_t start = 0) {
  Loader l(std::move(ds), o);
  l.start_epoch(epoch, start);
  std::vector<Batch> out;
  Batch b;
  while (l.next(b)) out.push_back(b);
  return out;
}

void expect_same(const std::vector<Batch>& a, const std::vector<Batch>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].indices, b[i].indices);
    EXPECT_TRUE(torch::equal(a[i].input, b[i].input));
    EXPECT_TRUE(torch::equal(a[i].label, b[i].label));
  }
}

const host::Registry& registry() {
  static host::Registry r = host::Registry::discover({BEVT_PLUGIN_DIR});
  return r;
}

std::shared_ptr<Dataset> build(const std::string& toml, const std::string& cache = "") {
  BuildContext ctx;
  ctx.cache_dir = cache;
  return registry().build_as<Dataset>("data.test", Config::from_toml(toml, "test.toml"), ctx);
}

// Raw-pixel view of a sample: no rescale, no crop, mean 0, std 1 → the input holds the decoded pixels.
const char* kRaw = "scale_range = []\ncrop = 'none'\nflip = 0.0\nmean = [0.0, 0.0, 0.0]\nstd = [1.0, 1.0, 1.0]\n";

int64_t index_in(const torch::Tensor& input, int64_t t) {  // [3, T, H, W] raw pixels → the drawn frame index
  auto f = input.select(1, t).permute({1, 2, 0}).round().clamp(0, 255).to(torch::kUInt8).contiguous();
  Clip c(1, f.size(0), f.size(1));
  std::memcpy(c.data.data(), f.data_ptr<uint8_t>(), c.data.size());
  return test::read_index(c, 0);
}

void index_video(const fs::path& p, int64_t frames, const std::string& codec = "mpeg4") {
  fs::create_directories(p.parent_path());
  EncodeOptions o;
  o.codec = codec;
  o.gop = 8;
  test::write_index_video(p.string(), frames, o);
}

void corrupt_video(const fs::path& p) { test::write_bytes(p.string(), std::string(3000, '\x11')); }

}  // namespace

TEST(Loader, SameBatchesWithAnyWorkerCount) {
  auto ds = std::make_shared<FakeDataset>(37);
  LoaderOptions o;
  o.batch_size = 4;
  o.seed = 11;
  o.drop_last = false;
  o.workers = 0;
  for (int64_t epoch : {0, 1}) {
    auto ref = epoch_batches(ds, o, epoch);
    ASSERT_EQ(ref.size(), 10u);
    EXPECT_EQ(ref.back().indices.size(), 1u);
    for (int64_t w : {1, 4}) {
      auto oo = o;
      oo.workers = w;
      oo.prefetch = 2;
      expect_same(ref, epoch_batches(ds, oo, epoch));
    }
  }
  // Shuffled differently per epoch, identically per (seed, epoch); resume from a batch.
  auto e0 = epoch_batches(ds, o, 0), e1 = epoch_batches(ds, o, 1);
  EXPECT_NE(e0[0].indices, e1[0].indices);
  auto resumed = epoch_batches(ds, o, 1, 3);
  expect_same(std::vector<Batch>(e1.begin() + 3, e1.end()), resumed);
  EXPECT_EQ(e0[0].input.sizes(), torch::IntArrayRef({4, 3, 2, 4, 4}));
  EXPECT_EQ(e0[0].tokenizer_view.sizes(), torch::IntArrayRef({4, 2, 3, 2, 2}));
}

TEST(Loader, ShardsCoverEverySampleOnce) {
  auto ds = std::make_shared<FakeDataset>(23);
  for (bool drop : {false, true}) {
    std::multiset<int64_t> seen;
    std::set<int64_t> counts;
    for (int64_t rank = 0; rank < 4; ++rank) {
      LoaderOptions o;
      o.batch_size = 2;
      o.world_size = 4;
      o.rank = rank;
      o.drop_last = drop;
      o.workers = 2;
      Loader l(ds, o);
      l.start_epoch(3);
      counts.insert(l.batches_per_epoch());
      Batch b;
      while (l.next(b))
        for (auto i : b.indices) seen.insert(i);
    }
    if (!drop) {
      EXPECT_EQ(seen.size(), 23u);
      for (int64_t i = 0; i < 23; ++i) EXPECT_EQ(seen.count(i), 1u) << i;
    } else {
      EXPECT_EQ(counts.size(), 1u);  // every rank runs the same number of steps
      EXPECT_EQ(seen.size(), 4u * 2 * 2);
      EXPECT_EQ(std::set<int64_t>(seen.begin(), seen.end()).size(), seen.size());
    }
  }
}

TEST(Loader, BadSamplesAreReplacedCountedAndBounded) {
  auto ds = std::make_shared<FakeDataset>(50, std::set<int64_t>{3, 17});
  LoaderOptions o;
  o.batch_size = 5;
  o.max_bad_fraction = 0.1;
  o.workers = 0;
  auto ref = epoch_batches(ds, o, 0);
  ASSERT_EQ(ref.size(), 10u);
  for (auto& b : ref)
    for (auto i : b.indices) EXPECT_TRUE(i != 3 && i != 17);
  o.workers = 3;
  expect_same(ref, epoch_batches(ds, o, 0));
  Loader l(ds, o);
  l.start_epoch(0);
  Batch b;
  while (l.next(b)) {
  }
  EXPECT_EQ(l.bad_samples(), 2);
  auto files = l.bad_files();
  ASSERT_EQ(files.size(), 2u);
  o.max_bad_fraction = 0.01;
  Loader strict(ds, o);
  strict.start_epoch(0);
  try {
    while (strict.next(b)) {
    }
    FAIL() << "expected RunError";
  } catch (const RunError& e) {
    EXPECT_NE(std::string(e.what()).find("/fake/"), std::string::npos) << e.what();
  }
}

TEST(Datasets, KineticsCsvWithMissingAndCorruptVideos) {
  auto root = test::temp_dir("data_k400");
  test::write_file(root / "annotations" / "train.csv",
                   "label,youtube_id,time_start,time_end,split\n"
                   "air drumming,aaa,10,20,train\n"
                   "abseiling,bbb,0,10,train\n"
                   "\"dancing, ballet\",ccc,5,15,train\n"
                   "abseiling,ddd,3,13,train\n"
                   "air drumming,missing,1,11,train\n");
  index_video(root / "train" / "aaa_000010_000020.mp4", 40);
  index_video(root / "train" / "abseiling" / "bbb_000000_000010.mp4", 40);  // class-folder layout
  index_video(root / "train" / "ccc_000005_000015.mp4", 40);
  corrupt_video(root / "train" / "ddd_000003_000013.mp4");
  auto ds = build(fmt::format("plugin = 'kinetics'\nroot = '{}'\nclip_len = 4\nframe_interval = 2\n{}", root.string(), kRaw));
  ASSERT_EQ(ds->size(), 4u);  // the missing one is skipped
  EXPECT_EQ(ds->class_names(), (std::vector<std::string>{"abseiling", "air drumming", "dancing, ballet"}));
  Rng rng(1);
  auto s = ds->get(0, rng);
  EXPECT_EQ(s.label, 1);
  ASSERT_EQ(s.input.sizes(), torch::IntArrayRef({3, 4, test::kIdxH, test::kIdxW}));
  int64_t f0 = index_in(s.input, 0);
  for (int64_t t = 1; t < 4; ++t) EXPECT_EQ(index_in(s.input, t), f0 + 2 * t);
  EXPECT_EQ(ds->get(1, rng).label, 0);
  EXPECT_THROW(ds->get(3, rng), DecodeError);
  LoaderOptions o;
  o.batch_size = 2;
  o.max_bad_fraction = 0.5;
  Loader l(ds, o);
  l.start_epoch(0);
  Batch b;
  int n = 0;
  while (l.next(b)) ++n;
  EXPECT_EQ(n, 2);
  EXPECT_EQ(l.bad_samples(), 1);
  EXPECT_NE(l.bad_files()[0].find("ddd_000003_000013.mp4"), std::string::npos);
}

TEST(Datasets, KineticsListAndWrongLayout) {
  auto root = test::temp_dir("data_k400_list");
  test::write_file(root / "kinetics400_val_list_videos.txt", "x/a.mp4 1\nb.mp4 0\n");
  index_video(root / "videos_val" / "x" / "a.mp4", 20);
  index_video(root / "videos_val" / "b.mp4", 20);
  auto ds = build(fmt::format("plugin = 'kinetics'\nroot = '{}'\nsplit = 'val'\ntest_mode = true\nclip_len = 2\n"
                              "num_clips = 2\ncrop = 'three'\ncrop_size = 32\nscale_range = [32]\n",
                              root.string()));
  ASSERT_EQ(ds->size(), 2u);
  Rng rng(0);
  auto s = ds->get(0, rng);
  EXPECT_EQ(s.label, 1);
  EXPECT_EQ(s.input.sizes(), torch::IntArrayRef({6, 3, 2, 32, 32}));  // 2 clips × 3 crops
  auto empty = test::temp_dir("data_k400_empty");
  try {
    build(fmt::format("plugin = 'kinetics'\nroot = '{}'\n", empty.string()));
    FAIL();
  } catch (const UserError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("annotations/train.csv"), std::string::npos) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos);
  }
}

TEST(Datasets, Ssv2OfficialJson) {
  auto root = test::temp_dir("data_ssv2");
  test::write_file(root / "labels" / "something-something-v2-labels.json",
                   R"({"Pushing something from left to right": "0", "Pushing something from right to left": "1"})");
  test::write_file(root / "labels" / "something-something-v2-train.json", R"([
    {"id": "7", "label": "pushing a cup from right to left", "template": "Pushing [something] from right to left", "placeholders": ["a cup"]},
    {"id": "12", "label": "pushing a pen from left to right", "template": "Pushing [something] from left to right", "placeholders": ["a pen"]},
    {"id": "13", "label": "pushing a box from left to right", "template": "Pushing [something] from left to right", "placeholders": ["a box"]},
    {"id": "99", "label": "gone", "template": "Pushing [something] from left to right", "placeholders": ["x"]}])");
  index_video(root / "20bn-something-something-v2" / "7.webm", 30, "libvpx-vp9");
  index_video(root / "20bn-something-something-v2" / "12.webm", 30, "libvpx-vp9");
  corrupt_video(root / "20bn-something-something-v2" / "13.webm");
  auto ds = build(fmt::format("plugin = 'ssv2'\nroot = '{}'\nclip_len = 6\ntest_mode = true\nflip = 1.0\n"
                              "flip_label_map = ['Pushing something from left to right:Pushing something from right to left']\n{}",
                              root.string(), "scale_range = []\ncrop = 'none'\nmean = [0.0, 0.0, 0.0]\nstd = [1.0, 1.0, 1.0]\n"));
  ASSERT_EQ(ds->size(), 3u);
  EXPECT_EQ(ds->class_names()[1], "Pushing something from right to left");
  Rng rng(0);
  auto s = ds->get(0, rng);
  EXPECT_EQ(s.label, 1);
  // Uniform test sampling: middles of 6 segments of [0, 29].
  std::vector<int64_t> got;
  for (int64_t t = 0; t < 6; ++t) got.push_back(index_in(s.input, t));
  EXPECT_EQ(got, (std::vector<int64_t>{2, 7, 12, 16, 21, 26}));  // numpy rounding: round(14.5) = 14
  EXPECT_THROW(ds->get(2, rng), DecodeError);
  auto bad = test::temp_dir("data_ssv2_bad");
  test::write_file(bad / "labels" / "something-something-v2-labels.json", "{}");
  EXPECT_THROW(build(fmt::format("plugin = 'ssv2'\nroot = '{}'\n", bad.string())), UserError);
}

TEST(Datasets, Diving48FrameRanges) {
  auto root = test::temp_dir("data_diving");
  test::write_file(root / "Diving48_vocab.json", R"([["Back", "15som", "05Twis", "FREE"], ["Forward", "25som", "NoTwis", "PIKE"]])");
  test::write_file(root / "Diving48_V2_train.json", R"([
    {"vid_name": "abc_00001", "label": 1, "start_frame": 10, "end_frame": 20},
    {"vid_name": "abc_00002", "label": 0, "start_frame": 0, "end_frame": 40},
    {"vid_name": "abc_00003", "label": 0, "start_frame": 0, "end_frame": 40}])");
  index_video(root / "rgb" / "abc_00001.mp4", 40);
  corrupt_video(root / "rgb" / "abc_00002.mp4");
  auto ds = build(fmt::format("plugin = 'diving48'\nroot = '{}'\nclip_len = 5\n{}", root.string(), kRaw));
  ASSERT_EQ(ds->size(), 2u);
  EXPECT_EQ(ds->class_names()[1], "Forward 25som NoTwis PIKE");
  Rng rng(4);
  for (int rep = 0; rep < 5; ++rep) {
    auto s = ds->get(0, rng);
    EXPECT_EQ(s.label, 1);
    for (int64_t t = 0; t < 5; ++t) {
      int64_t f = index_in(s.input, t);
      EXPECT_GE(f, 10);
      EXPECT_LE(f, 19);
    }
  }
  EXPECT_THROW(ds->get(1, rng), DecodeError);
  EXPECT_THROW(build(fmt::format("plugin = 'diving48'\nroot = '{}'\nsplit = 'test'\n", root.string())), UserError);
}

TEST(Datasets, ImageNetFoldersAndList) {
  auto root = test::temp_dir("data_imagenet");
  Clip c = test::index_clip(8);
  fs::create_directories(root / "train" / "n01" );
  fs::create_directories(root / "train" / "n02");
  write_image((root / "train" / "n01" / "a.JPEG").string(), c, 3);
  write_image((root / "train" / "n02" / "b.png").string(), c, 5);
  test::write_bytes((root / "train" / "n02" / "c.JPEG").string(), "broken");
  auto ds = build(fmt::format("plugin = 'imagenet'\nroot = '{}'\ncrop = 'random'\ncrop_size = 24\nscale_range = [32]\n"
                              "tokenizer_size = 12\n",
                              root.string()));
  EXPECT_FALSE(ds->is_video());
  ASSERT_EQ(ds->size(), 3u);
  EXPECT_EQ(ds->class_names(), (std::vector<std::string>{"n01", "n02"}));
  Rng rng(0);
  auto s = ds->get(1, rng);
  EXPECT_EQ(s.label, 1);
  EXPECT_EQ(s.input.sizes(), torch::IntArrayRef({3, 24, 24}));
  EXPECT_EQ(s.tokenizer_view.sizes(), torch::IntArrayRef({3, 12, 12}));
  EXPECT_THROW(ds->get(2, rng), DecodeError);
  test::write_file(root / "train_list.txt", "n02/b.png 0\nn01/a.JPEG 1\n");
  auto l = build(fmt::format("plugin = 'imagenet'\nroot = '{}'\nlist = 'train_list.txt'\n{}", root.string(), kRaw));
  ASSERT_EQ(l->size(), 2u);
  auto s0 = l->get(0, rng);
  EXPECT_EQ(s0.label, 0);
  EXPECT_EQ(index_in(s0.input.unsqueeze(1), 0), 5);
  EXPECT_THROW(build(fmt::format("plugin = 'imagenet'\nroot = '{}'\nsplit = 'val'\n", root.string())), UserError);
}

TEST(Datasets, SyntheticPlugin) {
  auto cache = test::temp_dir("data_synth_plugin");
  auto ds = build("plugin = 'synthetic'\nnum_videos = 16\nframes = 8\nsize = 32\nclip_len = 8\ntokenizer_size = 16\n",
                  cache.string());
  ASSERT_EQ(ds->size(), 16u);
  EXPECT_TRUE(ds->is_video());
  auto names = ds->class_names();
  // Every class, motion first: 8 motion (4 orders, 4 screen directions) and 4 appearance classes.
  ASSERT_EQ(names.size(), 12u);
  EXPECT_EQ(names[0].rfind("motion/", 0), 0u);
  EXPECT_EQ(names[7].rfind("motion/", 0), 0u);
  EXPECT_EQ(names[8].rfind("appearance/", 0), 0u);
  Rng rng(0);
  auto s = ds->get(5, rng);
  EXPECT_EQ(s.label, 5);
  EXPECT_EQ(s.input.sizes(), torch::IntArrayRef({3, 8, 32, 32}));
  EXPECT_EQ(s.tokenizer_view.sizes(), torch::IntArrayRef({8, 3, 16, 16}));
  // Real decoding through the loader: the same batches with 0, 1 and 4 workers (random crops and flips on).
  auto aug = build("plugin = 'synthetic'\nnum_videos = 16\nframes = 8\nsize = 32\nclip_len = 4\nframe_interval = 2\n"
                   "crop = 'random_resized'\ncrop_size = 24\ncolor_jitter = [0.3, 0.3, 0.3]\n",
                   cache.string());
  LoaderOptions o;
  o.batch_size = 3;
  o.seed = 5;
  o.workers = 0;
  auto ref = epoch_batches(aug, o, 2);
  for (int64_t w : {1, 4}) {
    o.workers = w;
    expect_same(ref, epoch_batches(aug, o, 2));
  }
  auto img = build("plugin = 'synthetic'\nnum_videos = 8\nsize = 32\nvideo = false\n", cache.string());
  EXPECT_FALSE(img->is_video());
  EXPECT_EQ(img->class_names().size(), 4u);
  EXPECT_EQ(img->get(0, rng).input.sizes(), torch::IntArrayRef({3, 32, 32}));
  EXPECT_THROW(build("plugin = 'synthetic'\nclasses = ['motion/sideways']\n", cache.string()), UserError);
}

TEST(BevtData, ContactSheetsAndSummary) {
  auto d = test::temp_dir("data_tool");
  test::write_file(d / "exp.toml", fmt::format(R"([run]
mode = "pretrain"
work_dir = "{0}/work"
[data.video]
plugin = "synthetic"
num_videos = 12
frames = 8
size = 32
clip_len = 8
tokenizer_size = 16
cache_dir = "{0}/cache"
[masker.video]
plugin = "tube_random"
mask_ratio = 0.5
)", d.string()));
  auto r = test::run(fmt::format("{} {}/exp.toml --stream video --show 3 --out {}/out", test::bin("bevt-data"), d.string(),
                                 d.string()));
  ASSERT_EQ(r.status, 0) << r.output;
  std::ifstream f(d / "out" / "summary.json");
  auto j = nlohmann::json::parse(f);
  EXPECT_EQ(j["samples"].get<int64_t>(), 12);
  EXPECT_EQ(j["classes"].size(), 12u);
  EXPECT_TRUE(j["bad_files"].empty());
  EXPECT_TRUE(fs::exists(d / "out" / "sample_000.png"));
  auto masked = test::run(fmt::format("{} {}/exp.toml --stream video --show 1 --check 0 --masker masker.video "
                                      "--mask-cell 2 8 8 --out {}/out_mask",
                                      test::bin("bevt-data"), d.string(), d.string()));
  ASSERT_EQ(masked.status, 0) << masked.output;
  EXPECT_TRUE(fs::exists(d / "out_mask" / "sample_000.png"));
  auto bad = test::run(fmt::format("{} {}/exp.toml --stream nope --out {}/out2", test::bin("bevt-data"), d.string(), d.string()));
  EXPECT_EQ(bad.status, 2) << bad.output;
}
