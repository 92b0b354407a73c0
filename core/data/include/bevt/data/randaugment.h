// imgaug 0.4's RandAugment (imgaug/augmenters/collections.py), as BEVT's SSv2 fine-tune runs it through
// mmaction2's Imgaug wrapper: `Imgaug(transforms=[dict(type='RandAugment', n=4, m=7)])` calls
// `to_deterministic()` once per clip and applies that one draw to every frame.
//
// imgaug's RandAugment is not timm's. It is Sequential([initial, SomeOf(n, main, random_order=True)]):
//   initial: Fliplr(0.5), then Crop(percent = U(0, m)/224 on each side, drawn independently) resized back
//            to the input size (bilinear);
//   main:    n distinct operations out of 18, applied in random order, with imgaug's magnitude mapping
//            (M_MAX = 30, not 10) and fill value 128 for the affine ops and Cutout.
// So the official SSv2 training mirrors half the clips although its pipeline sets Flip(flip_ratio=0);
// rand_augment_flip = false turns that hidden flip off.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "bevt/rng.h"
#include "bevt/data/video_io.h"

namespace bevt {

// imgaug's main list, in its order (collections.py _create_main_augmenters_list).
enum class IaOp : int {
  Identity,
  Autocontrast,       // pillike.Autocontrast(cutoff=0), per channel
  Equalize,           // pillike.Equalize, per channel
  Invert,             // arithmetic.Invert(p=1)
  Rotate,             // pillike.Affine(rotate=±m degrees, center=(0.5, 0.5), fillcolor=128)
  Posterize,          // pillike.Posterize(8 - clip(int(m*6/30), 0, 6) bits)
  Solarize,           // pillike.Solarize(threshold = clip(256 - int(m*256/30), 0, 256)): v >= t → 255 - v
  EnhanceColor,       // PIL ImageEnhance factors clip(1 ± m*0.9/30, 0.1, 1.9)
  EnhanceContrast,
  EnhanceBrightness,
  EnhanceSharpness,
  ShearX,             // pillike.Affine(shear ±m*rad2deg(0.3)/30 degrees, about the top-left, fillcolor=128)
  ShearY,
  TranslateX,         // pillike.Affine(translate_percent ±m*0.33/30, fillcolor=128)
  TranslateY,
  Cutout,             // arithmetic.Cutout(1 square, side clip(m*(20/32)/30, 0, 20/32) of the height, cval 128)
  FilterBlur,         // PIL ImageFilter.BLUR
  FilterSmooth,       // PIL ImageFilter.SMOOTH
};
constexpr int kIaOpCount = 18;
const char* ia_op_name(IaOp op);

// The unsigned magnitudes of imgaug's mapping at an integer m (the sign of the signed ones is drawn per clip).
struct IaMagnitudes {
  double rotate_deg = 0;     // m * 30/30
  double shear_deg = 0;      // m * rad2deg(0.3)/30
  double translate = 0;      // m * 0.33/30 of the width (x) or height (y)
  double enhance = 0;        // m * 0.9/30: factor 1 ± this, clipped to [0.1, 1.9]
  int posterize_bits = 8;    // bits kept
  int solarize_threshold = 256;
  double cutout = 0;         // side as a fraction of the height
  double crop_max = 0;       // largest crop per side, fraction of that side (m/224)
};
IaMagnitudes ia_magnitudes(int64_t m);

struct IaStep {
  IaOp op = IaOp::Identity;
  // Rotate/Shear*: degrees (signed); Translate*: fraction of the side (signed); Enhance*: factor;
  // Posterize: bits kept; Solarize: threshold; Cutout: side as a fraction of the height.
  double value = 0;
  double x = 0.5, y = 0.5;  // Cutout: centre, relative to width and height (U(0, 1) each)
};

struct RandAugmentDraw {
  bool flip = false;                          // Fliplr(0.5)
  std::array<double, 4> crop = {0, 0, 0, 0};  // top, right, bottom, left: fraction of that side
  std::vector<IaStep> steps;                  // n distinct operations, in the order they are applied
};

// One draw for a clip: every random choice from rng. flip = false: no hidden flip (nothing drawn for it).
RandAugmentDraw draw_rand_augment(int64_t n, int64_t m, bool flip, Rng& rng);
// The draw on every frame of clip, in place (frames alike in, frames alike out).
void apply_rand_augment(Clip& clip, const RandAugmentDraw& d);
// One main-list operation on every frame (tests compare each against imgaug's definition).
void apply_ia_step(Clip& clip, const IaStep& step);
// The initial augmenters only: the flip and the crop resized back.
void apply_ia_initial(Clip& clip, const RandAugmentDraw& d);

}  // namespace bevt
