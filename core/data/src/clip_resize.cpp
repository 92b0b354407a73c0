// Resizing clips (OpenCV's imgproc): part of every build, with or without media decoding.
#include <opencv2/imgproc.hpp>

#include "bevt/data/video_io.h"
#include "cv_interpolation.h"

namespace bevt {

int cv_interpolation(const std::string& name) {
  if (name == "nearest") return cv::INTER_NEAREST;
  if (name == "bilinear") return cv::INTER_LINEAR;
  if (name == "bicubic") return cv::INTER_CUBIC;
  if (name == "area") return cv::INTER_AREA;
  if (name == "lanczos") return cv::INTER_LANCZOS4;
  throw std::invalid_argument("unknown interpolation '" + name +
                              "' (expected nearest, bilinear, bicubic, area or lanczos)");
}

Clip resize_clip(const Clip& clip, int64_t height, int64_t width, const std::string& interpolation) {
  int interp = cv_interpolation(interpolation);
  Clip out(clip.frames, height, width);
  for (int64_t t = 0; t < clip.frames; ++t) {
    cv::Mat src(static_cast<int>(clip.height), static_cast<int>(clip.width), CV_8UC3,
                const_cast<uint8_t*>(clip.frame(t)));
    cv::Mat dst(static_cast<int>(height), static_cast<int>(width), CV_8UC3, out.frame(t));
    if (height == clip.height && width == clip.width)
      src.copyTo(dst);
    else
      cv::resize(src, dst, dst.size(), 0, 0, interp);
  }
  return out;
}

}  // namespace bevt
