// OpenCV helpers private to the SDK's data code.
#pragma once

#include <string>

namespace bevt {
// "nearest", "bilinear", "bicubic", "area", "lanczos" → cv::INTER_*; throws std::invalid_argument.
int cv_interpolation(const std::string& name);
}  // namespace bevt
