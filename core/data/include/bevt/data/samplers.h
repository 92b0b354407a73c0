// Frame samplers (torch-free), with mmaction2's semantics so that configs port unchanged.
//
//   dense:   SampleFrames(clip_len, frame_interval, num_clips) — K400. Training: one random offset per clip
//            inside its share of the video; test: clips evenly spread, each centred in its share. Indices past
//            the end wrap around (mmaction's 'loop').
//   uniform: Video Swin's frame_uniform (SSv2): clip_len equal segments of [0, frames-1]; a random frame per
//            segment in training, the middle of each at test. With num_clips > 1 at test, clip c takes the
//            point (c + 0.5) / num_clips of each segment, so views differ (TimeSformer#103).
// All randomness comes from the Rng given.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bevt/rng.h"

namespace bevt {

struct SamplerSpec {
  std::string kind = "dense";  // dense | uniform
  int64_t clip_len = 16;
  int64_t frame_interval = 4;  // dense only
  int64_t num_clips = 1;
  bool test_mode = false;
};

// num_clips × clip_len frame indices in [0, num_frames), clip by clip. Throws std::invalid_argument on a bad
// spec or num_frames < 1.
std::vector<int64_t> sample_frames(const SamplerSpec& spec, int64_t num_frames, Rng& rng);

std::vector<int64_t> dense_indices(int64_t num_frames, int64_t clip_len, int64_t frame_interval, int64_t num_clips,
                                   bool test_mode, Rng& rng);
std::vector<int64_t> uniform_indices(int64_t num_frames, int64_t clip_len, int64_t num_clips, bool test_mode, Rng& rng);

}  // namespace bevt
