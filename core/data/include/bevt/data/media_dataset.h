// The common body of every file-based dataset plugin: a list of entries (file, label, frame range) and the
// experiment's sampler, transform and decode keys. A plugin parses its annotation layout into entries and class
// names in its constructor, then calls finish(); get() decodes and transforms exactly as training does.
//
// Keys (media_keys; a plugin passes its own defaults):
//   sampler (dense | uniform), clip_len, frame_interval, num_clips, test_mode,
//   scale_range, crop (none | random | random_resized | center | three), crop_size, crop_area, crop_ratio,
//   flip, flip_label_map (["from:to", ...] class names or indices), color_jitter, jitter_per_frame,
//   rand_augment ([n, m] or []), random_erasing, mean, std, tokenizer_size, decode_threads, limit.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bevt/config.h"
#include "bevt/dataset.h"
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

  const std::vector<MediaEntry>& entries() const { return entries_; }
  const SamplerSpec& sampler() const { return sampler_; }
  const ClipTransform& transform() const { return *transform_; }

 protected:
  // Call at the end of the plugin's constructor: resolves flip_label_map against the class names, applies
  // `limit`, and checks that there is at least one entry (UserError naming `where` otherwise).
  void finish(const std::string& where);

  std::vector<MediaEntry> entries_;
  std::vector<std::string> classes_;

 private:
  Config cfg_;
  bool video_;
  int decode_threads_ = 1;
  SamplerSpec sampler_;
  TransformSpec tspec_;
  std::unique_ptr<ClipTransform> transform_;
};

// Reads a text file's lines (without trailing \r), throwing UserError "<what>: cannot read <path>".
std::vector<std::string> read_lines(const std::string& path, const std::string& what);

}  // namespace bevt
