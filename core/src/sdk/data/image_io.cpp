#include <cstring>
#include <filesystem>

#include <fmt/format.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "bevt/video_io.h"
#include "cv_util.h"

namespace bevt {

Clip read_image(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw DecodeError(fmt::format("{}: no such file", path));
  if (std::filesystem::file_size(path, ec) == 0) throw DecodeError(fmt::format("{}: empty file", path));
  cv::Mat bgr;
  try {
    bgr = cv::imread(path, cv::IMREAD_COLOR);
  } catch (const cv::Exception& e) {
    throw DecodeError(fmt::format("{}: cannot decode the image ({})", path, e.what()));
  }
  if (bgr.empty()) throw DecodeError(fmt::format("{}: cannot decode the image (corrupt or unsupported)", path));
  Clip out(1, bgr.rows, bgr.cols);
  cv::Mat dst(bgr.rows, bgr.cols, CV_8UC3, out.data.data());
  cv::cvtColor(bgr, dst, cv::COLOR_BGR2RGB);
  return out;
}

void write_image(const std::string& path, const Clip& clip, int64_t t) {
  if (t < 0 || t >= clip.frames) throw DecodeError(fmt::format("{}: frame {} out of range", path, t));
  cv::Mat rgb(static_cast<int>(clip.height), static_cast<int>(clip.width), CV_8UC3,
              const_cast<uint8_t*>(clip.frame(t)));
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  bool ok = false;
  try {
    ok = cv::imwrite(path, bgr);
  } catch (const cv::Exception& e) {
    throw DecodeError(fmt::format("{}: cannot write the image ({})", path, e.what()));
  }
  if (!ok) throw DecodeError(fmt::format("{}: cannot write the image", path));
}

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
