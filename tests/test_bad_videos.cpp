// Issue 20, every bad video named: tiny datasets in the three public layouts (Kinetics CSV, SSv2 JSON + webm,
// Diving48 JSON with frame ranges), each with a missing file, files cut at 1/3, 2/3 and after the header, zeroed
// bytes in the middle, a zero-length file, a wrong container, a label outside the class list and a duplicated id
// (Diving48 also a frame range past the end). The datasets must name each with its reason (problems(), check()),
// get() must follow on_truncated, and the loader must stop past max_bad_fraction naming them all.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bevt/data/integrity.h"
#include "bevt/data/media_dataset.h"
#include "bevt/data/video_io.h"
#include "bevt/error.h"
#include "host/compose.h"
#include "host/data/loader.h"
#include "host/data/problems.h"
#include "host/registry.h"
#include "bad_datasets.h"
#include "test_sandbox.h"
#include "test_videos.h"

namespace fs = std::filesystem;
using namespace bevt;

namespace {

using namespace bevt::test::bad;

const host::Registry& registry() {
  static host::Registry r = host::Registry::discover({BEVT_PLUGIN_DIR});
  return r;
}

std::shared_ptr<Dataset> build(const std::string& toml) {
  return registry().build_as<Dataset>("data.test", Config::from_toml(toml, "test.toml"), BuildContext{});
}

const char* kKeys = "clip_len = 4\nframe_interval = 1\nscale_range = []\ncrop = 'none'\nflip = 0.0\n";

std::string stem_of(const std::string& path) { return fs::path(path).stem().string(); }

// Checks every item; returns stem → problems.
std::map<std::string, std::vector<DataProblem>> check_all(const Dataset& ds) {
  std::map<std::string, std::vector<DataProblem>> out;
  for (size_t i = 0; i < ds.size(); ++i) {
    auto& slot = out[stem_of(dynamic_cast<const MediaDataset&>(ds).entries()[i].path)];
    for (auto& p : ds.check(i)) slot.push_back(p);
  }
  return out;
}

void expect_checked(const std::map<std::string, std::vector<DataProblem>>& got,
                    const std::map<std::string, std::string>& expect) {
  for (const auto& [stem, kind] : expect) {
    auto it = got.find(stem);
    ASSERT_NE(it, got.end()) << stem;
    const auto& ps = it->second;
    if (kind.empty()) {
      EXPECT_TRUE(ps.empty()) << stem << ": " << (ps.empty() ? "" : problem_line(ps[0]));
      continue;
    }
    ASSERT_FALSE(ps.empty()) << stem << " was not reported";
    EXPECT_NE(ps[0].path.find(stem), std::string::npos) << problem_line(ps[0]);
    EXPECT_FALSE(ps[0].reason.empty());
    if (kind != "*") {
      EXPECT_EQ(ps[0].kind, kind) << problem_line(ps[0]);
    } else {
      EXPECT_TRUE(ps[0].kind == "corrupt" || ps[0].kind == "truncated") << problem_line(ps[0]);
    }
    EXPECT_EQ(ps[0].kept, kind == "wrong_container") << problem_line(ps[0]);
  }
}

const DataProblem* find_problem(const std::vector<DataProblem>& ps, const std::string& kind, const std::string& stem) {
  for (const auto& p : ps)
    if (p.kind == kind && stem_of(p.path) == stem) return &p;
  return nullptr;
}

size_t index_of(const Dataset& ds, const std::string& stem) {
  const auto& entries = dynamic_cast<const MediaDataset&>(ds).entries();
  for (size_t i = 0; i < entries.size(); ++i)
    if (stem_of(entries[i].path) == stem) return i;
  ADD_FAILURE() << stem << " is not in the dataset";
  return 0;
}

// The annotation-time problems every layout must name: the missing file, the duplicate, the bad label.
void expect_annotation_problems(const Dataset& ds, const std::string& missing, const std::string& missing_where,
                                const std::string& duplicate, const std::string& bad_label) {
  auto ps = ds.problems();
  const DataProblem* m = find_problem(ps, "missing", missing);
  ASSERT_NE(m, nullptr) << "the missing file is not named";
  EXPECT_NE(m->where.find(missing_where), std::string::npos) << problem_line(*m);
  const DataProblem* d = find_problem(ps, "duplicate_id", duplicate);
  ASSERT_NE(d, nullptr) << "the duplicated id is not named";
  EXPECT_NE(d->reason.find("first listed"), std::string::npos) << problem_line(*d);
  const DataProblem* l = find_problem(ps, "label_out_of_range", bad_label);
  ASSERT_NE(l, nullptr) << "the label outside the class list is not named";
  Rng rng(0);
  EXPECT_THROW(ds.get(index_of(ds, bad_label), rng), DecodeError);  // a bad item: the loader counts it
}

}  // namespace

TEST(BadVideos, HeaderDeclaresMoreThanTheCutFileHolds) {
  auto d = test::temp_dir("bad_header");
  video(d / "a.webm", "libvpx-vp9");
  video(d / "a.mp4", "mpeg4", true);
  video(d / "b.mp4", "mpeg4");
  video(d / "c.mkv", "libx264");
  for (const char* name : {"a.webm", "a.mp4", "b.mp4", "c.mkv"}) {  // intact files: no false alarm
    VideoReader r((d / name).string());
    EXPECT_EQ(r.info().frames, kFrames) << name;
    EXPECT_NEAR(static_cast<double>(r.info().declared_frames), kFrames, 1) << name << " " << r.info().declared_from;
    EXPECT_FALSE(header_truncation(name, r.info(), r.info().frames)) << name;
    DecodeOptions strict;
    strict.strict = true;
    VideoReader s((d / name).string(), strict);
    auto scan = s.scan();
    EXPECT_EQ(scan.decoded, kFrames) << name;
    EXPECT_EQ(scan.failed, 0) << name << ": " << scan.error;
    EXPECT_EQ(test::read_index(s.read({kFrames - 1}), 0), kFrames - 1) << name;  // reads after a scan
  }
  for (double keep : {1.0 / 3, 2.0 / 3}) {
    for (const char* name : {"a.webm", "a.mp4"}) {
      std::string cut = (d / fmt::format("cut{}_{}", static_cast<int>(keep * 3), name)).string();
      fs::copy_file(d / name, cut);
      test::cut_file(cut, keep);
      VideoReader r(cut);
      auto p = header_truncation(cut, r.info(), r.info().frames);
      ASSERT_TRUE(p) << cut << " frames " << r.info().frames << " declared " << r.info().declared_frames;
      EXPECT_EQ(p->declared, r.info().declared_frames);
      EXPECT_LT(p->decodable, kFrames * 5 / 6);
      EXPECT_NE(p->reason.find("declares"), std::string::npos) << p->reason;
    }
  }
  // mp4 with the index at the end: a cut file has no index left, and says so.
  test::cut_file((d / "b.mp4").string(), 2.0 / 3);
  try {
    VideoReader r((d / "b.mp4").string());
    FAIL() << "opened a cut mp4";
  } catch (const DecodeError& e) {
    EXPECT_NE(std::string(e.what()).find("moov atom not found"), std::string::npos) << e.what();
    EXPECT_EQ(decode_error_kind(e.what()), "truncated");
  }
  EXPECT_TRUE(range_past_end("x", 0, 59, kFrames));
  EXPECT_TRUE(range_past_end("x", 30, -1, kFrames));
  EXPECT_FALSE(range_past_end("x", 2, kFrames - 1, kFrames));
  EXPECT_TRUE(container_mismatch("x.webm", "mov,mp4,m4a,3gp,3g2,mj2"));
  EXPECT_FALSE(container_mismatch("x.webm", "matroska,webm"));
  EXPECT_FALSE(container_mismatch("x.mp4", "mov,mp4,m4a,3gp,3g2,mj2"));
}

TEST(BadVideos, KineticsCsvNamesEveryBadFile) {
  auto root = kinetics_root("bad_k400");
  auto ds = build(fmt::format("plugin = 'kinetics'\nroot = '{}'\nlabel_map = 'classes.txt'\n{}", root.string(), kKeys));
  expect_annotation_problems(*ds, "gone_000000_000010", "train.csv:", "good1_000000_000010", "good3_000000_000010");
  auto m = find_problem(ds->problems(), "missing", "gone_000000_000010");
  EXPECT_NE(m->where.find("train.csv:11"), std::string::npos) << m->where;  // the CSV line
  std::map<std::string, std::string> expect = {{"good1", ""},          {"good2", ""},          {"cut13", "truncated"},
                                               {"cut23", "truncated"}, {"header", "truncated"}, {"zeroed", "*"},
                                               {"empty", "empty"},     {"text", "corrupt"},     {"cutfs", "truncated"}};
  std::map<std::string, std::string> stems;
  for (auto& [k, v] : expect) stems[k + "_000000_000010"] = v;
  auto got = check_all(*ds);
  expect_checked(got, stems);
  const auto& fs_cut = got["cutfs_000000_000010"][0];  // the index in front: both numbers
  EXPECT_EQ(fs_cut.declared, kFrames);
  EXPECT_GE(fs_cut.decodable, 0);
  EXPECT_LT(fs_cut.decodable, kFrames / 2);
  EXPECT_NE(got["cut13_000000_000010"][0].reason.find("moov"), std::string::npos);
}

TEST(BadVideos, Ssv2NamesEveryBadFile) {
  auto root = ssv2_root("bad_ssv2");
  auto ds = build(fmt::format("plugin = 'ssv2'\nroot = '{}'\n{}", root.string(), kKeys));
  // damaged_set's stems map to ids 100.. in name order.
  std::vector<std::string> names = {"cut13", "cut23", "empty", "good1", "good2", "header", "renamed", "text", "zeroed"};
  std::map<std::string, std::string> kinds = {{"good1", ""},          {"good2", ""},           {"cut13", "truncated"},
                                              {"cut23", "truncated"}, {"header", "truncated"}, {"zeroed", "*"},
                                              {"empty", "empty"},     {"text", "corrupt"},     {"renamed", "wrong_container"}};
  std::map<std::string, std::string> expect;
  for (size_t i = 0; i < names.size(); ++i) expect[std::to_string(100 + i)] = kinds[names[i]];
  expect_annotation_problems(*ds, "999", "id 999", "100", "200");
  auto got = check_all(*ds);
  expect_checked(got, expect);
  const auto& cut = got["101"][0];  // cut at 2/3: the Segment Duration still declares every frame
  EXPECT_EQ(cut.declared, kFrames);
  EXPECT_GT(cut.decodable, 0);
  EXPECT_LT(cut.decodable, kFrames);
  // on_truncated: skip (default) fails the item, use decodes what is there, error stops the run.
  Rng rng(0);
  const size_t i = index_of(*ds, "101");
  try {
    ds->get(i, rng);
    FAIL() << "a truncated file was used";
  } catch (const DecodeError& e) {
    EXPECT_NE(std::string(e.what()).find("declares 24 frames"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("id 101"), std::string::npos) << e.what();
  }
  auto use = build(fmt::format("plugin = 'ssv2'\nroot = '{}'\non_truncated = 'use'\n{}", root.string(), kKeys));
  EXPECT_EQ(use->get(index_of(*use, "101"), rng).input.size(1), 4);
  EXPECT_TRUE(use->check(index_of(*use, "101"))[0].kept);
  auto stop = build(fmt::format("plugin = 'ssv2'\nroot = '{}'\non_truncated = 'error'\n{}", root.string(), kKeys));
  EXPECT_THROW(stop->get(index_of(*stop, "101"), rng), RunError);
  EXPECT_THROW(build(fmt::format("plugin = 'ssv2'\nroot = '{}'\non_truncated = 'maybe'\n", root.string())), UserError);
}

TEST(BadVideos, Diving48NamesEveryBadFileAndRangesPastTheEnd) {
  auto root = diving48_root("bad_diving");
  auto ds = build(fmt::format("plugin = 'diving48'\nroot = '{}'\n{}", root.string(), kKeys));
  expect_annotation_problems(*ds, "gone", "vid_name gone", "good1", "badlabel");
  std::map<std::string, std::string> expect = {
      {"good1", ""},      {"good2", ""},           {"cut13", "truncated"}, {"cut23", "truncated"},
      {"header", "truncated"}, {"zeroed", "*"},    {"empty", "empty"},     {"text", "corrupt"},
      {"cutfs", "truncated"}, {"longrange", "range_past_end"}, {"latestart", "range_past_end"}};
  auto got = check_all(*ds);
  expect_checked(got, expect);
  EXPECT_EQ(got["longrange"][0].declared, 60);
  EXPECT_EQ(got["longrange"][0].decodable, kFrames);
  Rng rng(1);
  EXPECT_THROW(ds->get(index_of(*ds, "longrange"), rng), DecodeError);
  auto use = build(fmt::format("plugin = 'diving48'\nroot = '{}'\non_truncated = 'use'\n{}", root.string(), kKeys));
  EXPECT_EQ(use->get(index_of(*use, "longrange"), rng).input.size(1), 4);  // clamped to the video
}

TEST(BadVideos, LoaderStopsPastTheBadFractionNamingEveryFile) {
  auto root = diving48_root("bad_loader");
  auto ds = build(fmt::format("plugin = 'diving48'\nroot = '{}'\n{}", root.string(), kKeys));
  host::LoaderOptions o;
  o.batch_size = 2;
  o.workers = 0;  // on this thread: the list at the stop is every bad file met so far
  o.max_bad_fraction = 0.2;
  host::Loader l(ds, o);
  l.start_epoch(0);
  host::Batch b;
  try {
    while (l.next(b)) {
    }
    FAIL() << "expected RunError";
  } catch (const RunError& e) {
    std::string m = e.what();
    EXPECT_GE(l.bad_files().size(), 3u);  // 0.2 of 12 items: the third stops the run
    for (const auto& f : l.bad_files()) EXPECT_NE(m.find(f), std::string::npos) << f;
    EXPECT_NE(m.find("exclude"), std::string::npos) << m;
  }
  EXPECT_FALSE(host::recorded_bad_files(ds.get()).empty());
  // results.json's data_problems: per stream, the annotation's problems and what the loaders met.
  host::Composition comp;
  host::Component c;
  c.path = "data.video";
  c.object = AnyComponent(ds);
  comp.components.push_back(c);
  auto j = host::data_problems_json(comp);
  ASSERT_TRUE(j.contains("video")) << j.dump();
  EXPECT_FALSE(j["video"]["bad_files"].empty());
  bool named = false;
  for (const auto& p : j["video"]["annotation"]) named = named || p["path"].get<std::string>().find("gone") != std::string::npos;
  EXPECT_TRUE(named) << j.dump();
}

TEST(BadVideos, ExcludeListsDropItems) {
  auto root = diving48_root("bad_exclude");
  const std::string keys = fmt::format("plugin = 'diving48'\nroot = '{}'\n{}", root.string(), kKeys);
  const size_t all = build(keys)->size();
  const std::string cut = (root / "rgb" / "cut13.mp4").string();
  test::write_file(root / "bad.txt", fmt::format("# a comment\n{}\tvid_name cut13\ttruncated\tcut\n", cut));
  auto txt = build(keys + fmt::format("exclude = '{}'\n", (root / "bad.txt").string()));
  EXPECT_EQ(txt->size(), all - 1);
  nlohmann::json j = {{"bad_files",
                       {{{"path", cut}, {"kind", "truncated"}},
                        {{"path", (root / "rgb" / "good1.mp4").string()}, {"kind", "duplicate_id"}},
                        {{"path", (root / "rgb" / "zeroed.mp4").string()}, {"kind", "corrupt"}}}},
                      {"kept", nlohmann::json::array()}};
  test::write_file(root / "bad.json", j.dump());
  auto js = build(keys + fmt::format("exclude = '{}'\n", (root / "bad.json").string()));
  EXPECT_EQ(js->size(), all - 2);  // a duplicate's path is its first listing's: that one stays
  std::string err = test::error_of([&] { build(keys + "exclude = 'nope.json'\n"); });
  EXPECT_NE(err.find("nope.json"), std::string::npos) << err;
  EXPECT_NE(err.find("exclude"), std::string::npos) << err;
}
