// What a backbone tells the trainer and heads about its outputs, without torch: the stages it returns (name,
// channels, stride), its token size, and whether it has an image path. A hierarchical backbone (Video Swin)
// and a plain one (TimeSformer) are both described by this, so the trainer never tests which one it has.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace bevt {

struct StageSpec {
  std::string name;                 // key in Features ("stage3", "out", ...)
  int64_t channels = 0;
  std::array<int64_t, 3> stride{};  // (t, h, w) input pixels/frames per feature cell; (0, 0, 0): a global
                                    // feature [B, C] without a grid (TimeSformer's cls token)
  bool normalised = false;          // the backbone's final norm is already applied (heads must not apply it again)
};

struct BackboneSpec {
  std::vector<StageSpec> stages;      // every feature forward_video returns, in order
  std::array<int64_t, 3> patch{};     // (t, h, w) size of one token of the first stage
  int64_t embed_dim = 0;
  bool has_image_path = false;
  std::string output;                 // the feature classification heads read (e.g. "out")

  const StageSpec& stage(const std::string& name) const;  // throws UserError naming the known stages
  bool has_stage(const std::string& name) const;
  // Token grid (t, h, w) of the first stage for an input of T frames of H×W (end-padded like the patch embed).
  std::array<int64_t, 3> token_grid(int64_t T, int64_t H, int64_t W) const;
};

}  // namespace bevt
