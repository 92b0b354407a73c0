#include "bevt/data/samplers.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace bevt {

std::vector<int64_t> dense_indices(int64_t num_frames, int64_t clip_len, int64_t frame_interval, int64_t num_clips,
                                   bool test_mode, Rng& rng) {
  if (num_frames < 1) throw std::invalid_argument("sampler: the video has no frames");
  if (clip_len < 1 || frame_interval < 1 || num_clips < 1)
    throw std::invalid_argument("sampler: clip_len, frame_interval and num_clips must be >= 1");
  const int64_t span = clip_len * frame_interval;  // mmaction's ori_clip_len
  std::vector<int64_t> offsets(static_cast<size_t>(num_clips), 0);
  if (test_mode) {
    double avg = static_cast<double>(num_frames - span + 1) / static_cast<double>(num_clips);
    if (num_frames > span - 1)
      for (int64_t c = 0; c < num_clips; ++c) offsets[c] = static_cast<int64_t>(c * avg + avg / 2.0);
  } else {
    int64_t avg = (num_frames - span + 1) / num_clips;
    if (avg > 0) {
      for (int64_t c = 0; c < num_clips; ++c) offsets[c] = c * avg + rng.randint(0, avg - 1);
    } else if (num_frames > std::max(num_clips, span)) {
      for (auto& o : offsets) o = rng.randint(0, num_frames - span);
      std::sort(offsets.begin(), offsets.end());
    } else if (avg == 0) {
      double ratio = static_cast<double>(num_frames - span + 1) / static_cast<double>(num_clips);
      for (int64_t c = 0; c < num_clips; ++c) offsets[c] = static_cast<int64_t>(std::nearbyint(c * ratio));
    }
  }
  std::vector<int64_t> out;
  out.reserve(static_cast<size_t>(num_clips * clip_len));
  for (int64_t c = 0; c < num_clips; ++c)
    for (int64_t i = 0; i < clip_len; ++i) {
      int64_t f = (offsets[c] + i * frame_interval) % num_frames;
      out.push_back(f < 0 ? f + num_frames : f);
    }
  return out;
}

std::vector<int64_t> uniform_indices(int64_t num_frames, int64_t clip_len, int64_t num_clips, bool test_mode,
                                     Rng& rng) {
  if (num_frames < 1) throw std::invalid_argument("sampler: the video has no frames");
  if (clip_len < 1 || num_clips < 1) throw std::invalid_argument("sampler: clip_len and num_clips must be >= 1");
  const double seg = static_cast<double>(num_frames - 1) / static_cast<double>(clip_len);
  std::vector<int64_t> out;
  out.reserve(static_cast<size_t>(num_clips * clip_len));
  for (int64_t c = 0; c < num_clips; ++c)
    for (int64_t i = 0; i < clip_len; ++i) {
      int64_t start = static_cast<int64_t>(std::nearbyint(seg * i));
      int64_t end = static_cast<int64_t>(std::nearbyint(seg * (i + 1)));
      int64_t f;
      if (!test_mode)
        f = rng.randint(start, end);
      else if (num_clips == 1)
        f = (start + end) / 2;
      else
        f = start + static_cast<int64_t>((end - start) * (c + 0.5) / static_cast<double>(num_clips));
      out.push_back(std::min(std::max<int64_t>(f, 0), num_frames - 1));
    }
  return out;
}

std::vector<int64_t> sample_frames(const SamplerSpec& s, int64_t num_frames, Rng& rng) {
  if (s.kind == "dense") return dense_indices(num_frames, s.clip_len, s.frame_interval, s.num_clips, s.test_mode, rng);
  if (s.kind == "uniform") return uniform_indices(num_frames, s.clip_len, s.num_clips, s.test_mode, rng);
  throw std::invalid_argument("sampler: unknown kind '" + s.kind + "' (expected dense or uniform)");
}

}  // namespace bevt
