// Something-Something V2 as it ships: <root>/labels/something-something-v2-{train,validation,test}.json and
// -labels.json ({"template name": "index"}), videos <root>/20bn-something-something-v2/<id>.webm. Each entry's
// template is normalised ("Putting [something] on [something]" → "Putting something on something") and looked
// up in the labels file. Defaults follow BEVT's SSv2 fine-tune: uniform segments, no flip (labels name directions).
#include <filesystem>
#include <fstream>
#include <map>

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
  d.scale_range = {256};
  d.crop = "random_resized";
  d.flip = 0.0;
  return d;
}

nlohmann::json read_json(const fs::path& p) {
  std::ifstream f(p);
  if (!f) throw bevt::UserError(fmt::format("ssv2: cannot read {}", p.string()));
  try {
    return nlohmann::json::parse(f);
  } catch (const std::exception& e) {
    throw bevt::UserError(fmt::format("ssv2: {} is not valid JSON ({})", p.string(), e.what()));
  }
}

std::string normalise_template(std::string t) {
  t.erase(std::remove(t.begin(), t.end(), '['), t.end());
  t.erase(std::remove(t.begin(), t.end(), ']'), t.end());
  return t;
}

class Ssv2 : public bevt::MediaDataset {
 public:
  static std::vector<bevt::KeySpec> keys() {
    auto k = bevt::media_keys(defaults());
    k.push_back(bevt::required_key("root", bevt::ValueType::String, "the Something-Something V2 folder as it ships"));
    k.push_back(bevt::key("split", "train", "train | validation | test"));
    k.push_back(bevt::key("video_dir", "", "folder of <id>.webm (default: <root>/20bn-something-something-v2)"));
    k.push_back(bevt::key("skip_missing", true, "drop listed videos that are not on disk (each named in the log and the data summary); false: keep them as bad items"));
    return k;
  }

  Ssv2(const bevt::Config& cfg, const bevt::BuildContext&) : MediaDataset(cfg, true) {
    const fs::path root = cfg.get_string("root");
    std::string split = cfg.get_string("split");
    if (split == "val") split = "validation";
    const std::string expected = fmt::format(
        "expected the SSv2 layout: {0}/labels/something-something-v2-{1}.json and -labels.json, videos in "
        "{0}/20bn-something-something-v2/<id>.webm",
        root.string(), split);
    if (!fs::is_directory(root))
      throw bevt::UserError(fmt::format("{}: root '{}' is not a folder; {}", cfg.where("root"), root.string(), expected));
    auto find = [&](const std::string& name) -> fs::path {
      for (const auto& c : {root / "labels" / name, root / name, root / "annotations" / name})
        if (fs::is_regular_file(c)) return c;
      throw bevt::UserError(fmt::format("{}: {} not found; {}", cfg.where("root"), name, expected));
    };
    auto labels = read_json(find("something-something-v2-labels.json"));
    auto list = read_json(find(fmt::format("something-something-v2-{}.json", split)));
    if (!labels.is_object() || !list.is_array())
      throw bevt::UserError(fmt::format("{}: the labels file must be an object and the {} file a list; {}",
                                        cfg.where("root"), split, expected));
    classes_.resize(labels.size());
    std::map<std::string, int64_t> index;
    for (auto& [name, v] : labels.items()) {
      int64_t i = v.is_string() ? std::stoll(v.get<std::string>()) : v.get<int64_t>();
      if (i < 0 || i >= static_cast<int64_t>(classes_.size()))
        throw bevt::UserError(fmt::format("ssv2: label index {} of '{}' out of range", i, name));
      classes_[static_cast<size_t>(i)] = name;
      index[name] = i;
    }
    fs::path vdir = cfg.get_string("video_dir");
    if (!vdir.empty() && vdir.is_relative() && !fs::exists(vdir)) vdir = root / vdir;
    if (vdir.empty()) vdir = fs::is_directory(root / "20bn-something-something-v2") ? root / "20bn-something-something-v2" : root;
    const std::string list_name = fmt::format("something-something-v2-{}.json", split);
    for (size_t k = 0; k < list.size(); ++k) {
      const auto& e = list[k];
      if (!e.is_object() || !e.contains("id"))
        throw bevt::UserError(fmt::format("ssv2: entry {} of {} has no 'id'", k + 1, list_name));
      std::string id = e["id"].is_string() ? e["id"].get<std::string>() : e["id"].dump();
      bevt::MediaEntry m{(vdir / (id + ".webm")).string(), -1, 0, -1};
      m.where = fmt::format("id {}, entry {} of {}", id, k + 1, list_name);
      m.id = id;
      if (e.contains("template")) {
        auto t = normalise_template(e["template"].is_string() ? e["template"].get<std::string>() : e["template"].dump());
        auto it = index.find(t);
        if (it == index.end())
          mark_bad(m, "label_out_of_range", fmt::format("template '{}' is not in the labels file", t));
        else
          m.label = it->second;
      }
      entries_.push_back(std::move(m));
    }
    finish({cfg.where(), "ssv2", cfg.get_bool("skip_missing"),
            fmt::format("{}; the videos were looked for under {}", expected, vdir.string())});
  }
};

}  // namespace

BEVT_REGISTER(bevt::plugin<bevt::Dataset, Ssv2>("ssv2", "Something-Something V2: official JSON labels and <id>.webm"));
