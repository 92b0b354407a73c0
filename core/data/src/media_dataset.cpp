#include "bevt/data/media_dataset.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bevt/data/video_io.h"
#include "bevt/error.h"
#include "bevt/log.h"

namespace bevt {

std::vector<KeySpec> media_keys(const MediaDefaults& d) {
  return {
      key("sampler", d.sampler, "frame sampler: dense (clip_len x frame_interval, K400) or uniform (segments, SSv2)"),
      key("clip_len", d.clip_len, "frames per clip"),
      key("frame_interval", d.frame_interval, "dense sampler: step between frames"),
      key("num_clips", d.num_clips, "clips per video (test: temporal views)"),
      key("test_mode", false, "deterministic sampling and crops (evaluation); training draws at random"),
      key("scale_range", d.scale_range, "short side before cropping: [] keep, [s] fixed, [lo, hi] random (RandomRescale)"),
      key("crop", d.crop, "none | random | random_resized | center | three"),
      key("crop_size", d.crop_size, "side of the square crop"),
      key("crop_area", std::vector<double>{0.08, 1.0}, "random_resized: area fraction range"),
      key("crop_ratio", std::vector<double>{0.75, 4.0 / 3.0}, "random_resized: aspect ratio range"),
      key("flip", d.flip, "horizontal flip probability (training)"),
      key("flip_label_map", std::vector<std::string>{}, "labels after a flip: [\"from:to\", ...] (class names or indices)"),
      key("color_jitter", d.color_jitter, "[brightness, contrast, saturation, hue]; [] = off"),
      key("jitter_per_frame", false, "draw colour jitter per frame instead of per clip"),
      key("rand_augment", std::vector<int64_t>{},
          "imgaug 0.4 RandAugment [n, m] (m of 30; BEVT SSv2: [4, 7]), one draw per clip; [] = off"),
      key("rand_augment_flip", true,
          "RandAugment's own horizontal flip (p 0.5; the official SSv2 run has it): false for direction-safe training"),
      key("random_erasing", 0.0, "random erasing probability (timm RandomErasing after normalisation)"),
      key("random_erasing_mode", "const", "random erasing fill: const (zeros, timm's default) | rand | pixel"),
      key("mean", std::vector<double>{123.675, 116.28, 103.53}, "normalisation mean (0..255 scale)"),
      key("std", std::vector<double>{58.395, 57.12, 57.375}, "normalisation std (0..255 scale)"),
      key("tokenizer_size", d.tokenizer_size, "side of the tokenizer view (Lanczos copy of the crop, [0,1]); 0 = none"),
      key("decode_threads", int64_t{1}, "codec threads per decoder (1 when many workers decode at once; 0 = auto)"),
      key("limit", int64_t{0}, "use only the first N samples (0 = all)"),
      key("on_truncated", "skip",
          "a file whose header declares more frames than decode, or a frame range past the end: skip (a bad file, "
          "counted against loader.max_bad_fraction) | use (decode what is there) | error (stop the run)"),
      key("exclude", "", "bad_files.json or .txt (bevt-data --check -1): items listed there are dropped"),
      key("decode_timeout_s", 60.0, "a file that takes longer to open or decode is a bad file, never a hang"),
  };
}

SamplerSpec sampler_spec_from(const Config& cfg) {
  SamplerSpec s;
  s.kind = cfg.get_string("sampler");
  s.clip_len = cfg.get_int("clip_len");
  s.frame_interval = cfg.get_int("frame_interval");
  s.num_clips = cfg.get_int("num_clips");
  s.test_mode = cfg.get_bool("test_mode");
  if (s.kind != "dense" && s.kind != "uniform")
    throw UserError(fmt::format("{}: sampler = '{}' (expected dense or uniform)", cfg.where("sampler"), s.kind));
  if (s.clip_len < 1 || s.frame_interval < 1 || s.num_clips < 1)
    throw UserError(fmt::format("{}: clip_len, frame_interval and num_clips must be >= 1", cfg.where()));
  return s;
}

TransformSpec transform_spec_from(const Config& cfg) {
  TransformSpec t;
  t.scale_range = cfg.get_int_list("scale_range");
  t.crop = cfg.get_string("crop");
  t.crop_size = cfg.get_int("crop_size");
  t.crop_area = cfg.get_float_list("crop_area");
  t.crop_ratio = cfg.get_float_list("crop_ratio");
  t.flip = cfg.get_float("flip");
  t.color_jitter = cfg.get_float_list("color_jitter");
  t.jitter_per_frame = cfg.get_bool("jitter_per_frame");
  auto ra = cfg.get_int_list("rand_augment");
  if (!ra.empty() && ra.size() != 2)
    throw UserError(fmt::format("{}: rand_augment is [n, m] or []", cfg.where("rand_augment")));
  if (ra.size() == 2) {
    t.rand_augment_n = ra[0];
    t.rand_augment_m = ra[1];
    if (ra[0] < 0 || ra[1] < 0 || ra[1] > 30)
      throw UserError(fmt::format("{}: rand_augment = [{}, {}]: n >= 0 and m in 0..30 (imgaug's magnitude scale; "
                                  "BEVT's SSv2 uses [4, 7])",
                                  cfg.where("rand_augment"), ra[0], ra[1]));
  }
  t.rand_augment_flip = cfg.get_bool("rand_augment_flip");
  t.random_erasing = cfg.get_float("random_erasing");
  t.random_erasing_mode = cfg.get_string("random_erasing_mode");
  if (t.random_erasing_mode != "const" && t.random_erasing_mode != "rand" && t.random_erasing_mode != "pixel")
    throw UserError(fmt::format("{}: random_erasing_mode = '{}' (expected const, rand or pixel: timm's modes)",
                                cfg.where("random_erasing_mode"), t.random_erasing_mode));
  t.mean = cfg.get_float_list("mean");
  t.std = cfg.get_float_list("std");
  t.tokenizer_size = cfg.get_int("tokenizer_size");
  t.test_mode = cfg.get_bool("test_mode");
  return t;
}

MediaDataset::MediaDataset(const Config& cfg, bool video) : cfg_(cfg), video_(video) {
  sampler_ = sampler_spec_from(cfg);
  tspec_ = transform_spec_from(cfg);
  decode_threads_ = static_cast<int>(cfg.get_int("decode_threads"));
  timeout_s_ = cfg.get_float("decode_timeout_s");
  if (timeout_s_ <= 0) throw UserError(fmt::format("{}: decode_timeout_s must be > 0", cfg.where("decode_timeout_s")));
  try {
    on_truncated_ = parse_on_truncated(cfg.get_string("on_truncated"));
  } catch (const std::invalid_argument& e) {
    throw UserError(fmt::format("{}: {}", cfg.where("on_truncated"), e.what()));
  }
  try {
    transform_ = std::make_unique<ClipTransform>(tspec_);
  } catch (const std::invalid_argument& e) {
    throw UserError(fmt::format("{}: {}", cfg.where(), e.what()));
  }
}

void MediaDataset::mark_bad(MediaEntry& e, const std::string& kind, const std::string& reason) {
  DataProblem p;
  p.path = e.path;
  p.where = e.where;
  p.kind = kind;
  p.reason = reason;
  e.problem = std::make_shared<const DataProblem>(std::move(p));
}

void MediaDataset::exclude_listed(const std::string& name) {
  const std::string file = cfg_.get_string("exclude");
  if (file.empty()) return;
  const auto listed = read_exclude_list(file, cfg_.where("exclude"));
  const std::set<std::string> drop(listed.begin(), listed.end());
  const size_t before = entries_.size();
  entries_.erase(std::remove_if(entries_.begin(), entries_.end(),
                                [&](const MediaEntry& e) {
                                  if (e.frames) return false;
                                  const std::string p = normal_path(e.path);
                                  return drop.count(p) > 0 || drop.count(p + "\t" + e.where) > 0;
                                }),
                 entries_.end());
  log_info("{}: excluded {} of {} listed items, named in {} ({} entries there)", name.empty() ? "data" : name,
           before - entries_.size(), before, file, drop.size());
}

void MediaDataset::name_bad_labels() {
  const auto classes = static_cast<int64_t>(classes_.size());
  for (auto& e : entries_)
    if (!e.problem && !e.frames && !classes_.empty() && (e.label < -1 || e.label >= classes))
      mark_bad(e, "label_out_of_range",
               fmt::format("label {} is outside the class list (classes 0..{})", e.label, classes - 1));
}

void MediaDataset::drop_duplicates(const std::string& name) {
  std::map<std::string, std::string> first_seen;  // id → where it was first listed
  std::vector<MediaEntry> kept;
  kept.reserve(entries_.size());
  for (auto& e : entries_) {
    if (e.frames) {
      kept.push_back(std::move(e));
      continue;
    }
    const std::string id = e.id.empty() ? e.path : e.id;
    auto [it, fresh] = first_seen.emplace(id, e.where);
    if (fresh) {
      kept.push_back(std::move(e));
      continue;
    }
    // The first listing stays; the repeat is dropped here (so an exclude list naming the path does not drop both).
    mark_bad(e, "duplicate_id", fmt::format("duplicated id '{}' (first listed {}); the repeat is dropped", id,
                                            it->second.empty() ? "earlier" : "at " + it->second));
    problems_.push_back(*e.problem);
    log_warn("{}: {}", name.empty() ? "data" : name, problem_line(*e.problem));
  }
  entries_ = std::move(kept);
}

void MediaDataset::name_missing(const FinishOptions& o) {
  const std::string name = o.name.empty() ? "data" : o.name;
  std::vector<MediaEntry> kept;
  kept.reserve(entries_.size());
  int64_t missing = 0;
  std::string first_missing;
  std::error_code ec;
  for (auto& e : entries_) {
    if (e.frames || e.problem || std::filesystem::exists(e.path, ec)) {
      kept.push_back(std::move(e));
      continue;
    }
    if (missing++ == 0) first_missing = e.path;
    mark_bad(e, "missing", o.skip_missing ? "missing: listed but not on disk (skipped)" : "missing: listed but not on disk");
    if (o.skip_missing) {
      problems_.push_back(*e.problem);
      log_warn("{}: {}", name, problem_line(*e.problem));
    } else {
      kept.push_back(std::move(e));  // a bad item: finish() names it, get() fails on it
    }
  }
  if (missing > 0 && missing == static_cast<int64_t>(entries_.size()))
    throw UserError(fmt::format("{}: none of the {} listed files exists (first: {}){}{}", o.where, missing,
                                first_missing, o.layout_hint.empty() ? "" : "; ", o.layout_hint));
  if (missing > 0)
    log_warn("{}: {} of {} listed files are missing{}; each is named in this log and in the data summary", name,
             missing, entries_.size(), o.skip_missing ? " (skipped)" : " (bad items)");
  entries_ = std::move(kept);
}

void MediaDataset::finish(const FinishOptions& o) {
  const std::string& where = o.where;
  auto class_index = [&](const std::string& s) -> int64_t {
    auto it = std::find(classes_.begin(), classes_.end(), s);
    if (it != classes_.end()) return it - classes_.begin();
    try {
      size_t used = 0;
      int64_t v = std::stoll(s, &used);
      if (used == s.size() && v >= 0 && v < static_cast<int64_t>(classes_.size())) return v;
    } catch (...) {
    }
    throw UserError(fmt::format("{}: flip_label_map names '{}', which is neither a class name nor a class index",
                                cfg_.where("flip_label_map"), s));
  };
  for (const auto& pair : cfg_.get_string_list("flip_label_map")) {
    auto colon = pair.rfind(':');
    if (colon == std::string::npos)
      throw UserError(fmt::format("{}: flip_label_map entries are \"from:to\", got '{}'", cfg_.where("flip_label_map"), pair));
    tspec_.flip_label_map[class_index(pair.substr(0, colon))] = class_index(pair.substr(colon + 1));
  }
  transform_ = std::make_unique<ClipTransform>(tspec_);
  exclude_listed(o.name);  // first: what the user excluded is not named again
  drop_duplicates(o.name);
  name_missing(o);
  name_bad_labels();
  int64_t limit = cfg_.get_int("limit");
  if (limit > 0 && static_cast<int64_t>(entries_.size()) > limit) entries_.resize(static_cast<size_t>(limit));
  if (entries_.empty()) throw UserError(fmt::format("{}: the annotation lists no samples", where));
  for (const auto& e : entries_)
    if (e.problem) {  // kept as bad items (the skipped missing files are named already)
      problems_.push_back(*e.problem);
      log_warn("{}: {}", o.name.empty() ? "data" : o.name, problem_line(*e.problem));
    }
}

namespace {
// The frames the sampler picks from an entry's usable range of a clip of `total` frames (absolute indices).
std::vector<int64_t> pick_frames(const MediaEntry& e, int64_t total, const SamplerSpec& sampler, Rng& rng) {
  const int64_t first = std::max<int64_t>(0, e.start_frame);
  const int64_t last = e.end_frame < 0 ? total - 1 : std::min(e.end_frame, total - 1);
  if (last < first)
    throw DecodeError(fmt::format("{}: frame range {}..{} is empty (the video has {} frames)", e.path, e.start_frame,
                                  e.end_frame, total));
  auto idx = sample_frames(sampler, last - first + 1, rng);
  for (auto& k : idx) k += first;
  return idx;
}
}  // namespace

void MediaDataset::on_truncated(const MediaEntry& e, const DataProblem& found) const {
  DataProblem p = found;
  p.where = e.where;
  if (on_truncated_ == OnTruncated::Use) return;
  if (on_truncated_ == OnTruncated::Error)
    throw RunError(fmt::format("{}; on_truncated = \"error\" stops the run (\"skip\" drops such files, \"use\" decodes "
                               "what is there; bevt-data --check -1 lists them all)",
                               problem_line(p)));
  throw DecodeError(problem_line(p));
}

Sample MediaDataset::get(size_t index, Rng& rng) const {
  if (index >= entries_.size()) throw std::out_of_range(fmt::format("sample {} of {}", index, entries_.size()));
  const auto& e = entries_[index];
  if (e.problem) throw DecodeError(problem_line(*e.problem));
  Clip clip;
  int64_t clips = 1;
  try {
    if (video_ && e.frames) {
      const Clip& all = *e.frames;
      auto idx = pick_frames(e, all.frames, sampler_, rng);
      auto [h, w] = transform_->decode_size(all.height, all.width, rng);
      Clip picked(static_cast<int64_t>(idx.size()), all.height, all.width);
      for (size_t k = 0; k < idx.size(); ++k)
        std::memcpy(picked.frame(static_cast<int64_t>(k)), all.frame(idx[k]), all.frame_bytes());
      clip = (h == all.height && w == all.width) ? std::move(picked) : resize_clip(picked, h, w, "bilinear");
      clips = sampler_.num_clips;
    } else if (video_) {
      DecodeOptions o;
      o.threads = decode_threads_;
      o.timeout_s = timeout_s_;
      VideoReader reader(e.path, o);
      const auto& info = reader.info();
      // The cheap check: the header against the packet index (no extra decoding), and the annotated range.
      if (auto p = header_truncation(e.path, info, info.frames)) on_truncated(e, *p);
      if (auto p = range_past_end(e.path, e.start_frame, e.end_frame, info.frames)) on_truncated(e, *p);
      auto idx = pick_frames(e, info.frames, sampler_, rng);
      auto [h, w] = transform_->decode_size(info.height, info.width, rng);
      clip = reader.read(idx, w, h);
      clips = sampler_.num_clips;
    } else {
      Clip img = e.frames ? *e.frames : read_image(e.path);
      auto [h, w] = transform_->decode_size(img.height, img.width, rng);
      clip = (h == img.height && w == img.width) ? std::move(img) : resize_clip(img, h, w, "bicubic");
    }
  } catch (const RunError&) {
    throw;
  } catch (const DecodeError& ex) {
    // The annotation line names the item in the loader's list; messages of on_truncated() carry it already.
    const std::string m = ex.what();
    if (e.where.empty() || m.find(e.where) != std::string::npos) throw;
    throw DecodeError(fmt::format("{} ({})", m, e.where));
  } catch (const std::exception& ex) {
    throw DecodeError(fmt::format("{}: {}{}", e.path, ex.what(), e.where.empty() ? "" : " (" + e.where + ")"));
  }
  auto views = transform_->apply(clip, e.label, rng, clips);
  Sample s;
  s.label = views.label;
  s.id = e.path;
  if (video_) {
    s.input = views.inputs.size() == 1 ? views.inputs[0] : torch::stack(views.inputs);
    if (!views.tokenizer_views.empty())
      s.tokenizer_view = views.tokenizer_views.size() == 1 ? views.tokenizer_views[0] : torch::stack(views.tokenizer_views);
  } else {
    std::vector<torch::Tensor> ins, toks;
    for (auto& v : views.inputs) ins.push_back(v.select(1, 0));
    for (auto& v : views.tokenizer_views) toks.push_back(v.select(0, 0));
    s.input = ins.size() == 1 ? ins[0] : torch::stack(ins);
    if (!toks.empty()) s.tokenizer_view = toks.size() == 1 ? toks[0] : torch::stack(toks);
  }
  return s;
}

namespace {
// The reason of a DecodeError message "<path>: <reason>" without the path.
std::string reason_of(const std::string& message, const std::string& path) {
  const std::string prefix = path + ": ";
  return message.rfind(prefix, 0) == 0 ? message.substr(prefix.size()) : message;
}
}  // namespace

std::vector<DataProblem> MediaDataset::check(size_t index) const {
  const auto& e = entries_.at(index);
  if (e.problem) return {*e.problem};
  if (e.frames) return {};
  auto named = [&](DataProblem p) {
    p.path = e.path;
    p.where = e.where;
    if (p.kind == "truncated" || p.kind == "range_past_end") p.kept = on_truncated_ == OnTruncated::Use;
    return p;
  };
  auto failed = [&](const std::string& kind, const std::string& reason) {
    DataProblem p;
    p.kind = kind;
    p.reason = reason;
    if (kind == "truncated") p.decodable = 0;
    return std::vector<DataProblem>{named(p)};
  };
  std::error_code ec;
  if (std::filesystem::is_regular_file(e.path, ec) && std::filesystem::file_size(e.path, ec) == 0 && !ec)
    return failed("empty", "empty file (0 bytes)");
  if (!video_) {
    try {
      read_image(e.path);
      return {};
    } catch (const std::exception& ex) {
      return failed("unreadable", reason_of(ex.what(), e.path));
    }
  }
  try {
    DecodeOptions o;
    o.threads = decode_threads_;
    o.timeout_s = timeout_s_;
    o.strict = true;  // damaged data is an error here, not concealed
    VideoReader reader(e.path, o);
    const VideoInfo& info = reader.info();
    std::vector<DataProblem> out;
    if (auto p = container_mismatch(e.path, info.container)) out.push_back(named(*p));
    const DecodeScan scan = reader.scan();
    // Truncated: the packet index itself is short of the header (frames that are there but fail to decode are
    // corruption, below). Decodable is what actually decodes: a cut file's last packet is often partial.
    if (auto p = header_truncation(e.path, info, info.frames)) {
      p->decodable = std::min(info.frames, scan.decoded);
      p->reason = header_truncation(e.path, info, p->decodable)->reason;
      out.push_back(named(*p));
      return out;  // a frame range past the end follows from the cut; one line says it
    }
    if (scan.failed > 0 || scan.decoded == 0) {
      DataProblem p;
      p.kind = "corrupt";
      p.declared = info.frames;
      p.decodable = scan.decoded;
      p.reason = scan.decoded == 0 && scan.failed == 0
                     ? fmt::format("corrupt: none of {} frames decodes", info.frames)
                     : fmt::format("corrupt: {} of {} frames do not decode (first at frame {}: {})", scan.failed,
                                   scan.failed + scan.decoded, scan.first_failed, scan.error);
      out.push_back(named(p));
    }
    if (auto p = range_past_end(e.path, e.start_frame, e.end_frame, scan.decoded)) out.push_back(named(*p));
    return out;
  } catch (const std::exception& ex) {
    const std::string reason = reason_of(ex.what(), e.path);
    return failed(decode_error_kind(reason), reason);
  }
}

std::string normal_path(const std::string& path) {
  std::error_code ec;
  auto abs = std::filesystem::absolute(path, ec);
  return (ec ? std::filesystem::path(path) : abs).lexically_normal().string();
}

std::vector<std::string> read_exclude_list(const std::string& path, const std::string& what) {
  std::ifstream f(path);
  if (!f) throw UserError(fmt::format("{}: cannot read the exclude list {}", what, path));
  std::vector<std::string> out;
  if (std::filesystem::path(path).extension() == ".json") {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(f);
    } catch (const std::exception& e) {
      throw UserError(fmt::format("{}: {} is not valid JSON ({})", what, path, e.what()));
    }
    const nlohmann::json& list = j.is_object() && j.contains("bad_files") ? j["bad_files"] : j;
    if (!list.is_array())
      throw UserError(fmt::format("{}: {} holds neither a list nor an object with \"bad_files\" (write it with "
                                  "bevt-data --check -1)",
                                  what, path));
    for (const auto& item : list) {
      if (item.is_string()) {
        out.push_back(normal_path(item.get<std::string>()));
      } else if (item.is_object() && item.contains("path") && item["path"].is_string()) {
        if (item.value("kept", false)) continue;
        std::string key = normal_path(item["path"].get<std::string>());
        // A duplicated id shares its path with the first listing, which is fine: only the repeat's line goes.
        if (item.value("kind", "") == "duplicate_id") key += "\t" + item.value("where", "");
        out.push_back(key);
      } else {
        throw UserError(fmt::format("{}: {}: an entry is neither a path nor an object with \"path\": {}", what, path,
                                    item.dump()));
      }
    }
    return out;
  }
  for (const auto& line : read_lines(path, what)) {
    std::vector<std::string> fields;  // path, where, kind, reason
    for (size_t a = 0;;) {
      size_t b = line.find('\t', a);
      fields.push_back(line.substr(a, b == std::string::npos ? std::string::npos : b - a));
      if (b == std::string::npos) break;
      a = b + 1;
    }
    const std::string& first = fields[0];
    auto b = first.find_first_not_of(" "), e = first.find_last_not_of(" ");
    if (b == std::string::npos || first[b] == '#') continue;
    std::string key = normal_path(first.substr(b, e - b + 1));
    if (fields.size() > 2 && fields[2] == "duplicate_id") key += "\t" + fields[1];  // as above
    out.push_back(key);
  }
  return out;
}

std::vector<std::string> read_lines(const std::string& path, const std::string& what) {
  std::ifstream f(path);
  if (!f) throw UserError(fmt::format("{}: cannot read {}", what, path));
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(f, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  return lines;
}

}  // namespace bevt
