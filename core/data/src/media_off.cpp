// A BEVT_WITH_MEDIA=OFF build (the GPU check's bundle): no FFmpeg and no image codecs. Every file-decoding and
// file-encoding entry point of bevt/video_io.h fails with a DecodeError that says so; in-memory data
// (synthetic storage = "memory") and everything else works as in a full build.
#include <fmt/format.h>

#include "bevt/data/video_io.h"

namespace bevt {

namespace {
[[noreturn]] void no_media(const std::string& path) {
  throw DecodeError(fmt::format("{}: this bevt was built without media decoding (BEVT_WITH_MEDIA=OFF); use a full "
                                "build, or generated data with storage = \"memory\"",
                                path));
}
}  // namespace

struct VideoReader::Impl {};
VideoReader::VideoReader(const std::string& path, DecodeOptions) { no_media(path); }
VideoReader::~VideoReader() = default;
const VideoInfo& VideoReader::info() const { no_media("VideoReader"); }
Clip VideoReader::read(const std::vector<int64_t>&, int64_t, int64_t) { no_media("VideoReader"); }
const DecodeStats& VideoReader::stats() const { no_media("VideoReader"); }
DecodeScan VideoReader::scan() { no_media("VideoReader"); }
int64_t VideoReader::minimal_decode_count(const std::vector<int64_t>&) const { no_media("VideoReader"); }

struct VideoWriter::Impl {};
VideoWriter::VideoWriter(const std::string& path, int64_t, int64_t, EncodeOptions) { no_media(path); }
VideoWriter::~VideoWriter() = default;
void VideoWriter::write(const uint8_t*) { no_media("VideoWriter"); }
void VideoWriter::write(const Clip&) { no_media("VideoWriter"); }
void VideoWriter::close() {}

Clip read_image(const std::string& path) { no_media(path); }
void write_image(const std::string& path, const Clip&, int64_t) { no_media(path); }

}  // namespace bevt
