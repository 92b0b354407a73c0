// Diving48 as it ships: <root>/Diving48_V2_{train,test}.json (entries vid_name, label, start_frame, end_frame),
// <root>/Diving48_vocab.json (48 lists [takeoff, somersault, twist, flight] → class names) and the trimmed clips
// <root>/rgb/<vid_name>.mp4. Frames [start_frame, end_frame) of each clip are sampled (clamped to the video).
#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bevt/data/media_dataset.h"
#include "bevt/error.h"
#include "bevt/plugin.h"

namespace fs = std::filesystem;

namespace {

bevt::MediaDefaults defaults() {
  bevt::MediaDefaults d;
  d.sampler = "uniform";
  return d;
}

nlohmann::json read_json(const fs::path& p) {
  std::ifstream f(p);
  if (!f) throw bevt::UserError(fmt::format("diving48: cannot read {}", p.string()));
  try {
    return nlohmann::json::parse(f);
  } catch (const std::exception& e) {
    throw bevt::UserError(fmt::format("diving48: {} is not valid JSON ({})", p.string(), e.what()));
  }
}

class Diving48 : public bevt::MediaDataset {
 public:
  static std::vector<bevt::KeySpec> keys() {
    auto k = bevt::media_keys(defaults());
    k.push_back(bevt::required_key("root", bevt::ValueType::String, "the Diving48 folder as it ships"));
    k.push_back(bevt::key("split", "train", "train | test"));
    k.push_back(bevt::key("video_dir", "", "folder of <vid_name>.mp4 (default: <root>/rgb)"));
    k.push_back(bevt::key("skip_missing", true, "drop listed videos that are not on disk (each named in the log and the data summary); false: keep them as bad items"));
    return k;
  }

  Diving48(const bevt::Config& cfg, const bevt::BuildContext&) : MediaDataset(cfg, true) {
    const fs::path root = cfg.get_string("root");
    const std::string split = cfg.get_string("split");
    const std::string expected = fmt::format(
        "expected the Diving48 layout: {0}/Diving48_V2_{1}.json, {0}/Diving48_vocab.json and {0}/rgb/<vid_name>.mp4",
        root.string(), split);
    if (!fs::is_directory(root))
      throw bevt::UserError(fmt::format("{}: root '{}' is not a folder; {}", cfg.where("root"), root.string(), expected));
    fs::path ann = root / fmt::format("Diving48_V2_{}.json", split);
    if (!fs::is_regular_file(ann)) ann = root / fmt::format("Diving48_{}.json", split);  // V1
    if (!fs::is_regular_file(ann))
      throw bevt::UserError(fmt::format("{}: Diving48_V2_{}.json not found; {}", cfg.where("root"), split, expected));
    auto list = read_json(ann);
    if (!list.is_array()) throw bevt::UserError(fmt::format("{}: expected a JSON list; {}", ann.string(), expected));
    fs::path vocab = root / "Diving48_vocab.json";
    if (fs::is_regular_file(vocab)) {
      for (const auto& v : read_json(vocab)) {
        std::string name;
        if (v.is_array())
          for (const auto& part : v) name += (name.empty() ? "" : " ") + (part.is_string() ? part.get<std::string>() : part.dump());
        else
          name = v.is_string() ? v.get<std::string>() : v.dump();
        classes_.push_back(name);
      }
    }
    fs::path vdir = cfg.get_string("video_dir");
    if (!vdir.empty() && vdir.is_relative() && !fs::exists(vdir)) vdir = root / vdir;
    if (vdir.empty()) vdir = root / "rgb";
    int64_t max_label = -1;
    for (size_t k = 0; k < list.size(); ++k) {
      const auto& e = list[k];
      if (!e.is_object() || !e.contains("vid_name") || !e.contains("label") || !e["vid_name"].is_string() ||
          !e["label"].is_number_integer())
        throw bevt::UserError(fmt::format("{}: entry {} needs vid_name (a string) and label (an integer); {}",
                                          ann.string(), k + 1, expected));
      bevt::MediaEntry m;
      m.id = e["vid_name"].get<std::string>();
      m.path = (vdir / (m.id + ".mp4")).string();
      m.where = fmt::format("vid_name {}, entry {} of {}", m.id, k + 1, ann.filename().string());
      m.label = e["label"].get<int64_t>();
      m.start_frame = e.value("start_frame", int64_t{0});
      int64_t end = e.value("end_frame", int64_t{-1});
      m.end_frame = end > 0 ? end - 1 : -1;  // [start_frame, end_frame) → inclusive last frame
      max_label = std::max(max_label, m.label);
      entries_.push_back(m);
    }
    // Without a vocabulary the labels are the classes; with one, a label outside it is a bad item (finish()).
    if (classes_.empty())
      for (int64_t i = 0; i <= max_label; ++i) classes_.push_back(std::to_string(i));
    finish({cfg.where(), "diving48", cfg.get_bool("skip_missing"),
            fmt::format("{}; the videos were looked for under {}", expected, vdir.string())});
  }
};

}  // namespace

BEVT_REGISTER(bevt::plugin<bevt::Dataset, Diving48>("diving48", "Diving48 V2: JSON annotations, vocabulary, rgb/<vid_name>.mp4"));
