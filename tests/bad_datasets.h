// Tiny datasets in the three public layouts (Kinetics CSV, SSv2 JSON + webm, Diving48 JSON with frame ranges),
// each with the damage datasets in the wild have (issue 20): a missing file, files cut at 1/3, 2/3 and after the
// header, zeroed bytes in the middle, a zero-length file, a wrong container, a label outside the class list and a
// duplicated id; Diving48 also frame ranges past the end. Shared by test_bad_videos (the library, the plugins) and
// test_bad_videos_tool (bevt-data).
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bevt/data/video_io.h"
#include "test_sandbox.h"
#include "test_videos.h"

namespace bevt::test::bad {

namespace fs = std::filesystem;

constexpr int64_t kFrames = 24;

inline void video(const fs::path& p, const std::string& codec, bool faststart = false) {
  fs::create_directories(p.parent_path());
  EncodeOptions o;
  o.codec = codec;
  o.gop = 6;
  o.faststart = faststart;
  write_noisy_index_video(p.string(), kFrames, o);
}

// The damaged files every layout gets, under `dir` with extension `ext` (".mp4" or ".webm"). Returns what each
// file's check must report (a kind; "" = clean).
inline std::map<std::string, std::string> damaged_set(const fs::path& dir, const std::string& ext, const std::string& codec) {
  std::map<std::string, std::string> expect;
  auto make = [&](const std::string& name, bool faststart = false) {
    video(dir / (name + ext), codec, faststart);
    return (dir / (name + ext)).string();
  };
  make("good1");
  make("good2");
  cut_file(make("cut13"), 1.0 / 3);
  cut_file(make("cut23"), 2.0 / 3);
  keep_header_only(make("header"));
  zero_middle(make("zeroed"));
  write_bytes((dir / ("empty" + ext)).string(), "");
  write_bytes((dir / ("text" + ext)).string(), "this is not a video, it is a text file\n");
  expect = {{"good1", ""},         {"good2", ""},          {"cut13", "truncated"}, {"cut23", "truncated"},
            {"header", "truncated"}, {"zeroed", "*"},      {"empty", "empty"},     {"text", "corrupt"}};
  if (ext == ".mp4") {  // an mp4 with its index in front keeps the declared count when cut
    cut_file(make("cutfs", true), 1.0 / 3);
    expect["cutfs"] = "truncated";
  } else {  // an mp4 named .webm: it decodes, and is named
    video(dir / "renamed.mp4", "mpeg4");
    fs::rename(dir / "renamed.mp4", dir / "renamed.webm");
    expect["renamed"] = "wrong_container";
  }
  return expect;
}

inline fs::path kinetics_root(const std::string& name) {
  auto root = temp_dir(name);
  auto expect = damaged_set(root / "train", ".mp4", "mpeg4");
  std::string csv = "label,youtube_id,time_start,time_end,split\n";
  for (const auto& [stem, kind] : expect) {
    fs::rename(root / "train" / (stem + ".mp4"), root / "train" / (stem + "_000000_000010.mp4"));
    csv += fmt::format("abseiling,{},0,10,train\n", stem);
  }
  csv += "abseiling,gone,0,10,train\n";     // missing (line 11)
  csv += "zumba,good2,0,10,train\n";        // a duplicate whose label is outside the class list too
  csv += "abseiling,good1,0,10,train\n";    // a duplicated id
  video(root / "train" / "good3_000000_000010.mp4", "mpeg4");
  csv += "zumba,good3,0,10,train\n";        // label outside the class list
  write_file(root / "annotations" / "train.csv", csv);
  write_file(root / "classes.txt", "abseiling\nair drumming\n");
  return root;
}

inline fs::path ssv2_root(const std::string& name) {
  auto root = temp_dir(name);
  const fs::path vdir = root / "20bn-something-something-v2";
  auto expect = damaged_set(vdir, ".webm", "libvpx-vp9");
  write_file(root / "labels" / "something-something-v2-labels.json",
                   R"({"Pushing something from left to right": "0", "Pushing something from right to left": "1"})");
  nlohmann::json list = nlohmann::json::array();
  int id = 100;
  for (const auto& [stem, kind] : expect) {
    fs::rename(vdir / (stem + ".webm"), vdir / (std::to_string(id) + ".webm"));
    list.push_back({{"id", std::to_string(id)}, {"label", stem}, {"template", "Pushing [something] from left to right"}});
    ++id;
  }
  list.push_back({{"id", "999"}, {"template", "Pushing [something] from left to right"}});  // missing
  list.push_back({{"id", "100"}, {"template", "Pushing [something] from left to right"}});  // duplicated id
  video(vdir / "200.webm", "libvpx-vp9");
  list.push_back({{"id", "200"}, {"template", "Juggling [something]"}});  // label outside the class list
  write_file(root / "labels" / "something-something-v2-train.json", list.dump(1));
  return root;
}

inline fs::path diving48_root(const std::string& name) {
  auto root = temp_dir(name);
  auto expect = damaged_set(root / "rgb", ".mp4", "mpeg4");
  write_file(root / "Diving48_vocab.json", R"([["Back", "15som", "05Twis", "FREE"], ["Forward", "25som", "NoTwis", "PIKE"]])");
  nlohmann::json list = nlohmann::json::array();
  for (const auto& [stem, kind] : expect)
    list.push_back({{"vid_name", stem}, {"label", 1}, {"start_frame", 2}, {"end_frame", kFrames}});
  video(root / "rgb" / "longrange.mp4", "mpeg4");
  list.push_back({{"vid_name", "longrange"}, {"label", 0}, {"start_frame", 0}, {"end_frame", 60}});  // past the end
  video(root / "rgb" / "latestart.mp4", "mpeg4");
  list.push_back({{"vid_name", "latestart"}, {"label", 0}, {"start_frame", 30}, {"end_frame", 40}});
  list.push_back({{"vid_name", "gone"}, {"label", 0}, {"start_frame", 0}, {"end_frame", 10}});  // missing
  list.push_back({{"vid_name", "good1"}, {"label", 0}, {"start_frame", 0}, {"end_frame", 10}});  // duplicated id
  video(root / "rgb" / "badlabel.mp4", "mpeg4");
  list.push_back({{"vid_name", "badlabel"}, {"label", 7}, {"start_frame", 0}, {"end_frame", 10}});  // outside the vocabulary
  write_file(root / "Diving48_V2_train.json", list.dump(1));
  return root;
}

}  // namespace bevt::test::bad
