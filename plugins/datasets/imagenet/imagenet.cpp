// ImageNet as it ships (after the usual val reorganisation): <root>/<split>/<class>/<image>, classes in sorted
// folder order (n01440764 = 0, ...), or a list file ("path label" per line, paths relative to <root>/<split> or
// <root>). Defaults follow BEVT's image stream: RandomRescale 256-320, ColorJitter 0.4, RandomCrop 224, Flip 0.5.
#include <algorithm>
#include <filesystem>

#include <fmt/format.h>

#include "bevt/data/media_dataset.h"
#include "bevt/error.h"
#include "bevt/plugin.h"

namespace fs = std::filesystem;

namespace {

bevt::MediaDefaults defaults() {
  bevt::MediaDefaults d;
  d.color_jitter = {0.4, 0.4, 0.4};
  d.clip_len = 1;
  return d;
}

bool is_image(const fs::path& p) {
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (const char* x : {".jpeg", ".jpg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
    if (e == x) return true;
  return false;
}

std::string trim(std::string s) {
  auto b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

class ImageNet : public bevt::MediaDataset {
 public:
  static std::vector<bevt::KeySpec> keys() {
    auto k = bevt::media_keys(defaults());
    k.push_back(bevt::required_key("root", bevt::ValueType::String, "the ImageNet folder as it ships"));
    k.push_back(bevt::key("split", "train", "train | val"));
    k.push_back(bevt::key("list", "", "list file 'path label' (default: class folders under <root>/<split>)"));
    k.push_back(bevt::key("classes_file", "", "class names, one per line, for list files (default: indices)"));
    return k;
  }

  ImageNet(const bevt::Config& cfg, const bevt::BuildContext&) : MediaDataset(cfg, false) {
    const fs::path root = cfg.get_string("root");
    const std::string split = cfg.get_string("split");
    const std::string expected = fmt::format(
        "expected class folders {0}/{1}/<class>/<image> (ImageNet as it ships, e.g. {0}/{1}/n01440764/x.JPEG) or a "
        "list file given by the key 'list'",
        root.string(), split);
    if (!fs::is_directory(root))
      throw bevt::UserError(fmt::format("{}: root '{}' is not a folder; {}", cfg.where("root"), root.string(), expected));
    fs::path list = cfg.get_string("list");
    const fs::path base = fs::is_directory(root / split) ? root / split : root;
    if (!list.empty()) {
      if (list.is_relative() && !fs::exists(list)) list = root / list;
      int64_t max_label = -1;
      auto lines = bevt::read_lines(list.string(), cfg.where("list"));
      for (size_t i = 0; i < lines.size(); ++i) {
        std::string l = trim(lines[i]);
        if (l.empty()) continue;
        auto sp = l.find_last_of(" \t");
        int64_t label = -1;
        try {
          if (sp == std::string::npos) throw std::invalid_argument("");
          label = std::stoll(l.substr(sp + 1));
        } catch (...) {
          throw bevt::UserError(fmt::format("{}:{}: expected 'path label', got '{}'", list.string(), i + 1, l));
        }
        fs::path p = trim(l.substr(0, sp));
        bevt::MediaEntry e{(p.is_absolute() ? p : base / p).string(), label, 0, -1};
        e.where = fmt::format("{}:{}", list.string(), i + 1);
        entries_.push_back(std::move(e));
        max_label = std::max(max_label, label);
      }
      fs::path cf = cfg.get_string("classes_file");
      if (!cf.empty()) {
        for (auto& n : bevt::read_lines((cf.is_relative() && !fs::exists(cf) ? root / cf : cf).string(), cfg.where("classes_file")))
          if (!trim(n).empty()) classes_.push_back(trim(n));
      } else {
        for (int64_t i = 0; i <= max_label; ++i) classes_.push_back(std::to_string(i));
      }
    } else {
      if (!fs::is_directory(root / split))
        throw bevt::UserError(fmt::format("{}: no folder {}; {}", cfg.where("root"), (root / split).string(), expected));
      for (const auto& d : fs::directory_iterator(root / split))
        if (d.is_directory()) classes_.push_back(d.path().filename().string());
      std::sort(classes_.begin(), classes_.end());
      if (classes_.empty())
        throw bevt::UserError(fmt::format("{}: {} has no class folders; {}", cfg.where("root"), (root / split).string(), expected));
      for (size_t c = 0; c < classes_.size(); ++c) {
        std::vector<std::string> files;
        for (const auto& f : fs::directory_iterator(root / split / classes_[c]))
          if (f.is_regular_file() && is_image(f.path())) files.push_back(f.path().string());
        std::sort(files.begin(), files.end());
        for (auto& f : files) entries_.push_back({f, static_cast<int64_t>(c), 0, -1});
      }
    }
    finish({cfg.where(), "imagenet", false, expected});  // a listed image not on disk is a bad item, named
  }
};

}  // namespace

BEVT_REGISTER(bevt::plugin<bevt::Dataset, ImageNet>("imagenet", "ImageNet-style images: class folders or a list file"));
