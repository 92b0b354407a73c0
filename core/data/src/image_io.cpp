// Image files through OpenCV's imgcodecs (any format it reads, as RGB). Not in a BEVT_WITH_MEDIA=OFF build.
#include <cstring>
#include <filesystem>

#include <fmt/format.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "bevt/data/video_io.h"

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

}  // namespace bevt
