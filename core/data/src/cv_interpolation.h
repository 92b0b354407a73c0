// The interpolation names of the data toolkit's resizes as OpenCV flags (defined in clip_resize.cpp, used by
// transforms.cpp too); private to the data library.
#pragma once

#include <string>

namespace bevt {
// "nearest", "bilinear", "bicubic", "area", "lanczos" → cv::INTER_*; throws std::invalid_argument.
int cv_interpolation(const std::string& name);
}  // namespace bevt
