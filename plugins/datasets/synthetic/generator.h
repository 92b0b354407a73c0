// The synthetic dataset's generator (no download needed): real video files through the encoder, or PNG images,
// cached in a folder named by a hash of every parameter and written atomically (temporary folder + rename).
//
// Two families of classes (docs/data.md):
//   motion/*      an arrow of random colour, size and orientation on a torus (wrap-around) whose frames are one
//                 base sequence P_k = p0 + k·speed·(pointing direction), shown in a class-specific order:
//                   forward (k = t), backward (k = T-1-t), forward_then_back (even k up, then odd k down),
//                   back_then_forward (even k down, then odd k up).
//                 left/right/up/down: the same arrow, pointing anywhere, drifting that way across the screen.
//                 p0 is uniform on the torus, so every single frame has the same distribution in every class,
//                 and every class shows the same set of frames: single or shuffled frames tell nothing.
//   appearance/*  a shape (disc, square, triangle, cross) of random colour, orientation and size moving in a random
//                 direction at a random speed: one frame tells the class.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bevt/rng.h"
#include "bevt/data/video_io.h"

namespace bevt {

const std::vector<std::string>& synthetic_motion_classes();
const std::vector<std::string>& synthetic_appearance_classes();
// All classes, motion first. A selection entry may be a class name, "motion" or "appearance".
std::vector<std::string> synthetic_select_classes(const std::vector<std::string>& selection);

struct SyntheticRender {
  int64_t frames = 16;
  int64_t size = 64;
  double speed = 2.0;  // pixels per frame of the base sequence (motion) / mean speed (appearance)
  double noise = 0.0;  // std of per-pixel Gaussian noise (0..255)
  // Scale nuisance: each sample's shape size is drawn uniformly from [scale_min, scale_max].
  double scale_min = 0.85, scale_max = 1.15;
  // Every appearance shape drawn with the disc's area, so that the foreground's pixel count (and with it a
  // frame's mean colour) carries no label: only the outline tells the class.
  bool equal_area = false;
};

// Renders one sample of class `cls` (frames × size × size RGB) from rng. Throws std::invalid_argument.
Clip render_synthetic(const std::string& cls, const SyntheticRender& r, Rng& rng);

struct SyntheticSpec {
  SyntheticRender render;
  int64_t num_samples = 320;
  std::vector<std::string> classes;  // resolved names
  uint64_t seed = 0;
  std::string split = "train";       // train | val | test: disjoint seeds
  bool video = true;                 // false: one PNG per sample (appearance classes only)
  std::string codec = "mpeg4";
  int gop = 8;
};

struct SyntheticCache {
  std::string folder;                // the cache folder
  std::vector<std::string> files;    // absolute paths, sample order
  std::vector<int64_t> labels;
  bool generated = false;            // false: found complete in the cache
};

// Returns the cache for spec under cache_root, generating it first when absent. Throws RunError/UserError.
SyntheticCache ensure_synthetic(const SyntheticSpec& spec, const std::string& cache_root);

// The same samples rendered in memory, never encoded (storage = "memory": no FFmpeg, no disk; the frames are
// the renderer's own, not the decoded ones of a lossy file). Sample i is the one ensure_synthetic writes as
// file i, before encoding; labels[i] = i mod classes.
struct SyntheticFrames {
  std::vector<std::shared_ptr<const Clip>> clips;
  std::vector<int64_t> labels;
};
SyntheticFrames render_synthetic_set(const SyntheticSpec& spec);
std::string synthetic_hash(const SyntheticSpec& spec);

}  // namespace bevt
