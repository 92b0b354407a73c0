// Issue 20 through the real tool: bevt-data --check -1 on damaged datasets in the three public layouts
// (bad_datasets.h) names every bad video in its log, bad_files.{txt,json} and summary.json, exits 1, still draws
// contact sheets, and its bad_files.json given back as the dataset's `exclude` key leaves a clean run (exit 0).
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bad_datasets.h"
#include "test_sandbox.h"

namespace fs = std::filesystem;
using namespace bevt;
using namespace bevt::test::bad;

TEST(BadVideosTool, CheckAllNamesBadFilesInEveryLayout) {
  struct Layout {
    std::string name, table;
    fs::path root;
    std::vector<std::string> bad;  // path fragments that must be listed
  };
  std::vector<Layout> layouts = {
      {"kinetics", "plugin = \"kinetics\"\nlabel_map = \"classes.txt\"", kinetics_root("bad_tool_k400"),
       {"gone_000000", "cut13_000000", "cut23_000000", "cutfs_000000", "header_000000", "zeroed_000000",
        "empty_000000", "text_000000", "good3_000000"}},
      {"ssv2", "plugin = \"ssv2\"", ssv2_root("bad_tool_ssv2"), {"999.webm", "100.webm", "101.webm", "102.webm", "200.webm"}},
      {"diving48", "plugin = \"diving48\"", diving48_root("bad_tool_diving"),
       {"gone.mp4", "cut13.mp4", "cutfs.mp4", "longrange.mp4", "latestart.mp4", "badlabel.mp4", "zeroed.mp4"}},
  };
  for (const auto& l : layouts) {
    const fs::path exp = l.root / "exp.toml";
    test::write_file(exp, fmt::format("[run]\nmode = \"pretrain\"\nwork_dir = \"{0}/work\"\n[data.video]\n{1}\nroot = "
                                      "\"{0}\"\nclip_len = 4\nframe_interval = 1\nscale_range = []\ncrop = \"none\"\n"
                                      "flip = 0.0\n",
                                      l.root.string(), l.table));
    const fs::path out = l.root / "out";
    auto r = test::run(fmt::format("timeout 120 {} {} --stream video --show 2 --check -1 --jobs 2 --out {}",
                                   test::bin("bevt-data"), exp.string(), out.string()));
    ASSERT_EQ(r.status, 1) << l.name << ": " << r.output;
    const std::string txt = test::read_text(out / "bad_files.txt");
    auto j = nlohmann::json::parse(test::read_text(out / "bad_files.json"));
    auto summary = nlohmann::json::parse(test::read_text(out / "summary.json"));
    for (const auto& frag : l.bad) {
      EXPECT_NE(txt.find(frag), std::string::npos) << l.name << ": " << frag << " not in bad_files.txt\n" << txt;
      EXPECT_NE(r.output.find(frag), std::string::npos) << l.name << ": " << frag << " not named in the log";
      EXPECT_NE(summary.dump().find(frag), std::string::npos) << l.name << ": " << frag;
    }
    EXPECT_NE(r.output.find("files/s"), std::string::npos) << r.output;
    EXPECT_GT(j["bad"].get<int64_t>(), 0);
    EXPECT_TRUE(fs::exists(out / "sample_000.png")) << l.name;
    EXPECT_TRUE(fs::exists(out / "sample_001.png")) << l.name;
    auto again = test::run(fmt::format("timeout 120 {} {} --stream video --show 1 --check -1 --out {} --set "
                                       "data.video.exclude={}",
                                       test::bin("bevt-data"), exp.string(), (l.root / "out2").string(),
                                       (out / "bad_files.json").string()));
    EXPECT_EQ(again.status, 0) << l.name << ": " << again.output;
    EXPECT_NE(again.output.find("excluded"), std::string::npos) << again.output;
  }
}
