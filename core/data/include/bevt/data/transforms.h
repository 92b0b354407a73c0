// Clip transforms as BEVT/mmaction2 configure them, applied with one set of random parameters to every frame of
// a clip (colour jitter may be drawn per frame). Fixed order (a config switches steps on or off):
//   rescale short side (decode_size: swscale does it while converting) → crop (random | random_resized | center |
//   three | none) → flip (with a label map) → colour jitter → RandAugment (imgaug 0.4's, randaugment.h) →
//   tokenizer view (copy of the crop, Lanczos to tokenizer_size, [0, 1]) → normalise (mean, std on 0..255) →
//   random erasing (timm's, on the normalised clip, as mmaction's RandomErasing after Normalize).
// In test mode every random step is off and the crop is center or three.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "bevt/rng.h"
#include "bevt/torch.h"
#include "bevt/data/video_io.h"

namespace bevt {

struct TransformSpec {
  std::vector<int64_t> scale_range;  // short side: {} keep, {s} or {s, s} fixed, {lo, hi} uniform integer (RandomRescale)
  std::string crop = "random";       // none | random | random_resized | center | three
  int64_t crop_size = 224;
  std::vector<double> crop_area = {0.08, 1.0};       // random_resized: area fraction range
  std::vector<double> crop_ratio = {0.75, 4.0 / 3};  // random_resized: aspect ratio range (log-uniform)
  double flip = 0.0;                                 // horizontal flip probability
  std::map<int64_t, int64_t> flip_label_map;         // label after a flip (classes that name a direction)
  std::vector<double> color_jitter;                  // {brightness, contrast, saturation[, hue]}; {} = off
  bool jitter_per_frame = false;                     // draw colour jitter per frame (BEVT's image stream)
  int64_t rand_augment_n = 0, rand_augment_m = 0;    // imgaug RandAugment(n, m), m of 30; n = 0: off
  bool rand_augment_flip = true;                     // imgaug RandAugment's own Fliplr(0.5) (the official keeps it)
  double random_erasing = 0.0;                       // probability (timm: area 0.02-1/3, ratio 0.3-1/0.3, one region)
  std::string random_erasing_mode = "const";         // timm: const (zeros) | rand (one N(0,1) colour) | pixel
  std::vector<double> mean = {123.675, 116.28, 103.53};
  std::vector<double> std = {58.395, 57.12, 57.375};
  int64_t tokenizer_size = 0;                        // 0: no tokenizer view
  bool test_mode = false;
};

struct TransformedViews {
  std::vector<torch::Tensor> inputs;           // per view: [3, T, H, W] float, normalised
  std::vector<torch::Tensor> tokenizer_views;  // per view: [T, 3, s, s] in [0, 1] (empty when tokenizer_size = 0)
  int64_t label = -1;                          // after the flip label map
};

class ClipTransform {
 public:
  explicit ClipTransform(TransformSpec spec);  // throws std::invalid_argument on a bad spec
  const TransformSpec& spec() const { return spec_; }

  // Size (height, width) the decoder should deliver for a source of height × width: the rescale step.
  std::pair<int64_t, int64_t> decode_size(int64_t height, int64_t width, Rng& rng) const;
  // The remaining steps on a clip already at decode_size. num_clips > 1 splits the clip's frames into that many
  // temporal views before cropping; views = clips × crops (three crop: 3).
  TransformedViews apply(const Clip& clip, int64_t label, Rng& rng, int64_t num_clips = 1) const;

  // Steps exposed for tests and tools.
  struct CropBox {
    int64_t x = 0, y = 0, w = 0, h = 0;
  };
  std::vector<CropBox> crop_boxes(int64_t height, int64_t width, Rng& rng) const;

 private:
  TransformSpec spec_;
};

// timm RandomErasing's region on an h x w frame (x, y, w, h; w = h = 0 when all ten tries failed).
ClipTransform::CropBox draw_erasing_region(int64_t h, int64_t w, Rng& rng);
// Erases the region of every [3, T, H, W] input on every frame: zeros (const) or N(0, 1) values drawn once.
void erase_region(std::vector<torch::Tensor>& inputs, const ClipTransform::CropBox& region, const std::string& mode,
                  Rng& rng);

// Normalised [3, T, H, W] (or [3, H, W]) tensor back to an RGB clip, for contact sheets.
Clip denormalize(const torch::Tensor& input, const std::vector<double>& mean, const std::vector<double>& std);
// [T, 3, h, w] (or [3, h, w]) tensor in [0, 1] to an RGB clip.
Clip unit_to_clip(const torch::Tensor& view);

}  // namespace bevt
