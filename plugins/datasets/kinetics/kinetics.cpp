// Kinetics as it ships: the official CSV (label,youtube_id,time_start,time_end,split) with videos named
// <youtube_id>_<start:06d>_<end:06d>.mp4 under <root>/<split>/ (flat or one folder per class), or an mmaction2
// list ("path label" per line, paths relative to <root>/videos_<split>/ or <root>). docs/data.md.
#include <algorithm>
#include <cmath>
#include <tuple>
#include <filesystem>
#include <map>
#include <set>

#include <fmt/format.h>

#include "bevt/data/media_dataset.h"
#include "bevt/error.h"
#include "bevt/plugin.h"

namespace fs = std::filesystem;

namespace {

std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> out(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (c == '"') {
      if (quoted && i + 1 < line.size() && line[i + 1] == '"') {
        out.back() += '"';
        ++i;
      } else {
        quoted = !quoted;
      }
    } else if (c == ',' && !quoted) {
      out.emplace_back();
    } else {
      out.back() += c;
    }
  }
  return out;
}

std::string trim(std::string s) {
  auto b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

bevt::MediaDefaults defaults() {
  bevt::MediaDefaults d;  // BEVT's K400 stream: dense clips, RandomRescale 256-320, RandomCrop 224, Flip 0.5
  return d;
}

class Kinetics : public bevt::MediaDataset {
 public:
  static std::vector<bevt::KeySpec> keys() {
    auto k = bevt::media_keys(defaults());
    k.push_back(bevt::required_key("root", bevt::ValueType::String, "the Kinetics folder as it ships"));
    k.push_back(bevt::key("split", "train", "train | val | test"));
    k.push_back(bevt::key("annotation", "", "CSV or list file (default: found under root)"));
    k.push_back(bevt::key("video_dir", "", "folder of the videos (default: <root>/<split> or <root>/videos_<split>)"));
    k.push_back(bevt::key("label_map", "",
                          "class names, one per line: the class list of a list file (default: <root>/label_map*.txt) "
                          "or, given here, of the CSV (a CSV label not in it is a bad item)"));
    k.push_back(bevt::key("skip_missing", true, "drop listed videos that are not on disk (each named in the log and the data summary); false: keep them as bad items"));
    return k;
  }

  Kinetics(const bevt::Config& cfg, const bevt::BuildContext&) : MediaDataset(cfg, true) {
    const fs::path root = cfg.get_string("root");
    const std::string split = cfg.get_string("split");
    const std::string expected = fmt::format(
        "expected the Kinetics layout: {0}/annotations/{1}.csv (or {0}/{1}.csv) with videos in {0}/{1}/, or an "
        "mmaction list {0}/kinetics400_{1}_list_videos.txt",
        root.string(), split);
    if (!fs::is_directory(root))
      throw bevt::UserError(fmt::format("{}: root '{}' is not a folder; {}", cfg.where("root"), root.string(), expected));
    std::vector<std::string> names = {split};
    if (split == "val") names.push_back("validate");
    fs::path ann = cfg.get_string("annotation");
    if (!ann.empty() && ann.is_relative() && !fs::exists(ann)) ann = root / ann;
    if (ann.empty()) {
      std::vector<fs::path> cands;
      for (const auto& n : names)
        for (const auto& c : {root / "annotations" / (n + ".csv"), root / (n + ".csv"),
                              root / ("kinetics400_" + n + "_list_videos.txt"), root / ("kinetics_" + n + ".csv"),
                              root / (n + "_list.txt"), root / (n + ".txt")})
          cands.push_back(c);
      for (const auto& c : cands)
        if (fs::is_regular_file(c)) {
          ann = c;
          break;
        }
      if (ann.empty()) throw bevt::UserError(fmt::format("{}: no annotation file for split '{}'; {}", cfg.where("root"), split, expected));
    }
    auto lines = bevt::read_lines(ann.string(), cfg.where("annotation"));
    const bool csv = !lines.empty() && lines[0].rfind("label,youtube_id", 0) == 0;
    fs::path vdir = cfg.get_string("video_dir");
    if (!vdir.empty() && vdir.is_relative() && !fs::exists(vdir)) vdir = root / vdir;
    if (vdir.empty()) {
      for (const auto& n : names)
        for (const auto& c : {root / n, root / ("videos_" + n)})
          if (vdir.empty() && fs::is_directory(c)) vdir = c;
      if (vdir.empty()) vdir = root;
    }
    if (csv)
      parse_csv(lines, vdir, ann, root, cfg);
    else
      parse_list(lines, vdir, ann, root, cfg);
    finish({cfg.where(), "kinetics", cfg.get_bool("skip_missing"),
            fmt::format("{}; the videos were looked for under {}", expected, vdir.string())});
  }

 private:
  void parse_csv(const std::vector<std::string>& lines, const fs::path& vdir, const fs::path& ann, const fs::path& root,
                 const bevt::Config& cfg) {
    auto header = split_csv(lines[0]);
    auto col = [&](const std::string& name) -> size_t {
      auto it = std::find(header.begin(), header.end(), name);
      if (it == header.end())
        throw bevt::UserError(fmt::format("{}: the CSV header lacks '{}' (expected label,youtube_id,time_start,time_end,split)",
                                          ann.string(), name));
      return static_cast<size_t>(it - header.begin());
    };
    const size_t cl = col("label"), cy = col("youtube_id"), cs = col("time_start"), ce = col("time_end");
    std::vector<std::tuple<std::string, std::string, size_t>> rows;  // (label, file name, line)
    std::set<std::string> labels;
    for (size_t i = 1; i < lines.size(); ++i) {
      if (trim(lines[i]).empty()) continue;
      auto f = split_csv(lines[i]);
      if (f.size() < header.size() - 1 || f.size() <= std::max({cl, cy, cs, ce}))
        throw bevt::UserError(fmt::format("{}:{}: expected {} comma-separated fields", ann.string(), i + 1, header.size()));
      std::string label = trim(f[cl]);
      long start = 0, end = 0;
      try {
        start = std::lround(std::stod(f[cs]));
        end = std::lround(std::stod(f[ce]));
      } catch (...) {
        throw bevt::UserError(fmt::format("{}:{}: time_start/time_end are not numbers", ann.string(), i + 1));
      }
      rows.emplace_back(label, fmt::format("{}_{:06d}_{:06d}.mp4", trim(f[cy]), start, end), i + 1);
      if (!label.empty()) labels.insert(label);
    }
    const std::string lm = cfg.get_string("label_map");
    if (!lm.empty()) {  // a fixed class list: a label the CSV adds is a bad item, not a new class
      for (auto& n : bevt::read_lines(resolve(lm, root), cfg.where("label_map")))
        if (!trim(n).empty()) classes_.push_back(trim(n));
    } else {
      classes_.assign(labels.begin(), labels.end());  // alphabetical, as mmaction's K400 label map
    }
    for (const auto& [label, file, line] : rows) {
      fs::path p = vdir / file;
      if (!fs::exists(p) && !label.empty()) {
        std::string under = label;
        std::replace(under.begin(), under.end(), ' ', '_');
        for (const auto& c : {vdir / label / file, vdir / under / file})
          if (fs::exists(c)) {
            p = c;
            break;
          }
      }
      bevt::MediaEntry e{p.string(), -1, 0, -1};
      e.where = fmt::format("{}:{}", ann.string(), line);
      e.id = file;
      if (!label.empty()) {
        auto it = std::find(classes_.begin(), classes_.end(), label);
        e.label = it - classes_.begin();
        if (it == classes_.end())
          mark_bad(e, "label_out_of_range", fmt::format("label '{}' is not in the class list ({} classes in {})", label,
                                                        classes_.size(), lm));
      }
      entries_.push_back(std::move(e));
    }
  }

  // A path given by a key: as written when it exists, else relative to `base` (the root).
  static std::string resolve(const std::string& p, const fs::path& base) {
    return fs::exists(p) || fs::path(p).is_absolute() ? p : (base / p).string();
  }

  void parse_list(const std::vector<std::string>& lines, const fs::path& vdir, const fs::path& ann, const fs::path& root,
                  const bevt::Config& cfg) {
    int64_t max_label = -1;
    for (size_t i = 0; i < lines.size(); ++i) {
      std::string l = trim(lines[i]);
      if (l.empty()) continue;
      auto sp = l.find_last_of(" \t");
      int64_t label = -1;
      std::string path = l;
      if (sp != std::string::npos) {
        try {
          size_t used = 0;
          label = std::stoll(l.substr(sp + 1), &used);
          if (used != l.size() - sp - 1) throw std::invalid_argument("");
          path = trim(l.substr(0, sp));
        } catch (...) {
          throw bevt::UserError(fmt::format("{}:{}: expected 'path label' (mmaction list), got '{}'", ann.string(), i + 1, l));
        }
      }
      fs::path p = fs::path(path).is_absolute() ? fs::path(path) : vdir / path;
      bevt::MediaEntry e{p.string(), label, 0, -1};
      e.where = fmt::format("{}:{}", ann.string(), i + 1);
      e.id = path;
      entries_.push_back(std::move(e));
      max_label = std::max(max_label, label);
    }
    fs::path lm = cfg.get_string("label_map");
    if (lm.empty())
      for (const auto& c : {root / "label_map_k400.txt", root / "label_map_k600.txt", root / "label_map_k700.txt",
                            root / "label_map.txt", root / "classes.txt"})
        if (fs::is_regular_file(c)) {
          lm = c;
          break;
        }
    if (!lm.empty()) {  // labels outside it are bad items, named by finish()
      for (auto& n : bevt::read_lines(resolve(lm.string(), root), cfg.where("label_map")))
        if (!trim(n).empty()) classes_.push_back(trim(n));
    } else {
      for (int64_t i = 0; i <= max_label; ++i) classes_.push_back(std::to_string(i));
    }
  }
};

}  // namespace

BEVT_REGISTER(bevt::plugin<bevt::Dataset, Kinetics>("kinetics", "Kinetics videos: official CSV layout or mmaction list"));
