// The common body of every file-based dataset plugin: a list of entries (file, label, frame range) and the
// experiment's sampler, transform and decode keys. A plugin parses its annotation layout into entries and class
// names in its constructor, then calls finish(); get() decodes and transforms exactly as training does.
//
// Keys (media_keys; a plugin passes its own defaults):
//   sampler (dense | uniform), clip_len, frame_interval, num_clips, test_mode,
//   scale_range, crop (none | random | random_resized | center | three), crop_size, crop_area, crop_ratio,
//   flip, flip_label_map (["from:to", ...] class names or indices), color_jitter, jitter_per_frame,
//   rand_augment ([n, m] or []), rand_augment_flip, random_erasing, random_erasing_mode, mean, std,
//   tokenizer_size, decode_threads, limit,
//   on_truncated (skip | use | error), exclude (a bad_files.json/.txt of bevt-data), decode_timeout_s.
//
// Bad items are named, never only counted (issue 20): finish() names every listed file that is missing, every label
// outside the class list and every duplicated id (problems(); repeats are dropped); get() refuses a file whose header declares more
// frames than its index holds, or whose annotated range runs past its end, as on_truncated says; check() decodes
// every frame of an item for bevt-data --check.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bevt/config.h"
#include "bevt/dataset.h"
#include "bevt/data/integrity.h"
#include "bevt/data/samplers.h"
#include "bevt/data/transforms.h"
#include "bevt/data/video_io.h"

namespace bevt {

struct MediaEntry {
  std::string path;
  int64_t label = -1;
  int64_t start_frame = 0;  // video: first frame of the usable range
  int64_t end_frame = -1;   // video: last frame (inclusive); -1 = the video's last
  // Frames already in memory (a generated set): read from here instead of decoding `path`.
  std::shared_ptr<const Clip> frames{};
  std::string where{};  // the annotation line or id, for messages ("annotations/train.csv:12", "id 99 in x.json")
  std::string id{};     // the annotation's id of the item (duplicates are found by it; "" = the path)
  // A problem found while reading the annotation (a label outside the class list, a missing file that is not
  // skipped). The entry stays, and get() fails on it, so the loader counts it against max_bad_fraction.
  std::shared_ptr<const DataProblem> problem{};
};

// Per-dataset defaults of the shared keys.
struct MediaDefaults {
  std::string sampler = "dense";
  int64_t clip_len = 16, frame_interval = 4, num_clips = 1;
  std::vector<int64_t> scale_range = {256, 320};
  std::string crop = "random";
  int64_t crop_size = 224;
  double flip = 0.5;
  std::vector<double> color_jitter = {};
  int64_t tokenizer_size = 0;
};

std::vector<KeySpec> media_keys(const MediaDefaults& defaults = {});
// Reads the keys of media_keys from cfg (already validated).
SamplerSpec sampler_spec_from(const Config& cfg);
TransformSpec transform_spec_from(const Config& cfg);  // flip_label_map is resolved by MediaDataset::finish

class MediaDataset : public Dataset {
 public:
  MediaDataset(const Config& cfg, bool video);

  size_t size() const override { return entries_.size(); }
  Sample get(size_t index, Rng& rng) const override;
  std::vector<std::string> class_names() const override { return classes_; }
  bool is_video() const override { return video_; }

  std::vector<DataProblem> problems() const override { return problems_; }
  std::vector<DataProblem> check(size_t index) const override;

  const std::vector<MediaEntry>& entries() const { return entries_; }
  const SamplerSpec& sampler() const { return sampler_; }
  const ClipTransform& transform() const { return *transform_; }

 protected:
  struct FinishOptions {
    std::string where;          // the table, for errors (cfg.where())
    std::string name;           // the plugin, for log lines ("kinetics")
    bool skip_missing = false;  // drop listed files that are not on disk (each named); false: keep them as bad items
    std::string layout_hint;    // said when no listed file exists ("expected the Kinetics layout: ...")
  };
  // Call at the end of the plugin's constructor: resolves flip_label_map against the class names; drops the items
  // of the `exclude` list, then repeated ids (named); names missing files and labels outside the class list (problems(), the
  // log); applies `limit`; checks that there is at least one entry (UserError naming `where` otherwise).
  void finish(const FinishOptions& options);
  void finish(const std::string& where) { finish(FinishOptions{where, "", false, ""}); }
  // Marks an entry bad at annotation time (kind and reason as in DataProblem); finish() lists it.
  static void mark_bad(MediaEntry& e, const std::string& kind, const std::string& reason);

  std::vector<MediaEntry> entries_;
  std::vector<std::string> classes_;

 private:
  void exclude_listed(const std::string& name);
  void name_missing(const FinishOptions& o);
  void name_bad_labels();
  void drop_duplicates(const std::string& name);
  // The on_truncated decision for a file whose problem get() found: throws unless the policy is "use".
  void on_truncated(const MediaEntry& e, const DataProblem& p) const;

  Config cfg_;
  bool video_;
  int decode_threads_ = 1;
  double timeout_s_ = 60;
  OnTruncated on_truncated_ = OnTruncated::Skip;
  std::vector<DataProblem> problems_;
  SamplerSpec sampler_;
  TransformSpec tspec_;
  std::unique_ptr<ClipTransform> transform_;
};

// Reads a text file's lines (without trailing \r), throwing UserError "<what>: cannot read <path>".
std::vector<std::string> read_lines(const std::string& path, const std::string& what);

// The items an exclude list names: bevt-data's bad_files.json (its "bad_files" entries; or any JSON list of paths
// or of objects with "path") or bad_files.txt (path<TAB>where<TAB>kind<TAB>reason lines, or bare paths; # starts a
// comment). Each is a key: the path made absolute and normal (so it compares with normal_path(entry.path)), or for
// a duplicated id "path<TAB>where", since a repeat shares its path with the first listing, which stays.
// Throws UserError "<what>: ..." when the file cannot be read or parsed.
std::vector<std::string> read_exclude_list(const std::string& path, const std::string& what);
// The form read_exclude_list returns a path in.
std::string normal_path(const std::string& path);

}  // namespace bevt
