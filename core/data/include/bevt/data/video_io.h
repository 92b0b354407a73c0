// Video and image input/output for the data layer (torch-free).
//
// VideoReader opens a file once (libavformat), indexes its packets without decoding (so the frame count and
// every frame's timestamp are known exactly), and decodes only what a sampler asks for: it seeks to the keyframe
// before the first needed frame, flushes the decoder, decodes forward, drops the frames nobody asked for
// without converting them, seeks again only when a later needed frame lies behind another keyframe, and
// converts the needed frames with swscale straight to RGB at the requested size.
//
// Frame index i is the i-th frame the decoder shows when it decodes the stream from its start (what a
// sequential PyAV decode numbers i), whatever the container's timestamps look like.
//
// A missing, empty, truncated or corrupt file raises DecodeError ("<path>: <reason>"), never a crash or a hang. The
// reason carries FFmpeg's own last error line where there is one ("moov atom not found").
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace bevt {

// A per-file failure (missing, corrupt, unsupported, frame out of range). Loaders count and replace these.
class DecodeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// T frames of H×W RGB, uint8, contiguous (T, H, W, 3). An image is a clip of one frame.
struct Clip {
  int64_t frames = 0, height = 0, width = 0;
  std::vector<uint8_t> data;

  Clip() = default;
  Clip(int64_t t, int64_t h, int64_t w) : frames(t), height(h), width(w), data(static_cast<size_t>(t * h * w * 3)) {}
  size_t frame_bytes() const { return static_cast<size_t>(height * width * 3); }
  uint8_t* frame(int64_t t) { return data.data() + static_cast<size_t>(t) * frame_bytes(); }
  const uint8_t* frame(int64_t t) const { return data.data() + static_cast<size_t>(t) * frame_bytes(); }
};

struct VideoInfo {
  int64_t frames = 0;  // exact: counted from the packet index (up to the first packet cut by the end of the file)
  double fps = 0;
  int64_t width = 0, height = 0;
  std::string codec;
  // What the file says about itself, to find truncation (bevt/data/integrity.h): a cut file keeps its header, so
  // the header still declares the full length while the index counts fewer frames.
  int64_t declared_frames = -1;  // from the header: nb_frames, else stream duration × fps, else container duration × fps
  std::string declared_from;     // "nb_frames" | "stream duration" | "container duration" | "" (unknown)
  std::string container;         // the demuxer FFmpeg chose from the bytes ("matroska,webm", "mov,mp4,m4a,3gp,3g2,mj2")
  int64_t file_bytes = -1;       // -1: not a plain file
  std::string index_stop;        // why the packet index stopped before the end of the file ("" = it reached the end)
};

// Every frame decoded once from the start, none converted: what an integrity check needs.
struct DecodeScan {
  int64_t decoded = 0;       // frames that decoded cleanly
  int64_t failed = 0;        // packets or frames the decoder rejected or flagged as damaged
  int64_t first_failed = -1; // frame position of the first failure
  std::string error;         // the first failure's message
};

struct DecodeStats {
  int64_t frames_decoded = 0;  // frames the decoder produced (needed or dropped)
  int64_t frames_converted = 0;
  int64_t seeks = 0;
};

struct DecodeOptions {
  int threads = 1;            // codec threads; 1 when many decoders run at once, 0 = FFmpeg's automatic choice
  double timeout_s = 60;      // an I/O stall (or, in scan(), a whole decode) longer than this is an error, never a hang
  bool strict = false;        // decoders report damaged data as errors instead of concealing it (integrity checks)
};

class VideoReader {
 public:
  explicit VideoReader(const std::string& path, DecodeOptions options = {});  // throws DecodeError
  ~VideoReader();
  VideoReader(const VideoReader&) = delete;
  VideoReader& operator=(const VideoReader&) = delete;

  const VideoInfo& info() const;
  // Frames `indices` (any order, repeats allowed, each in [0, frames)) in the order asked, converted to RGB at
  // out_width × out_height (0 = the native size). Throws DecodeError.
  Clip read(const std::vector<int64_t>& indices, int64_t out_width = 0, int64_t out_height = 0);
  const DecodeStats& stats() const;
  // Decodes every frame from the start without converting; counts what decodes cleanly. Never throws for damaged
  // data (it is counted); throws DecodeError on a time-out.
  DecodeScan scan();
  // The fewest frames any decoder must decode to produce `indices`: for each needed frame, the frames from the
  // keyframe before it through it (shared runs counted once). For benchmarks.
  int64_t minimal_decode_count(const std::vector<int64_t>& indices) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct EncodeOptions {
  std::string codec = "mpeg4";  // any libavcodec encoder: mpeg4, libx264, libvpx-vp9, ...
  double fps = 25;
  int gop = 12;                 // keyframe interval in frames
  int bframes = 0;
  int quality = 4;              // mpeg4: qscale (2 best..31); libx264: crf = 6 * quality; libvpx: crf = 8 * quality
  int threads = 1;
  bool faststart = false;       // mp4: the index (moov atom) before the frames, as web downloads have it
};

// Encodes RGB frames into a file whose container follows the extension (.mp4, .webm, .mkv, .avi).
class VideoWriter {
 public:
  VideoWriter(const std::string& path, int64_t width, int64_t height, EncodeOptions options = {});  // throws DecodeError
  ~VideoWriter();  // closes (finishing the file) if close() was not called
  VideoWriter(const VideoWriter&) = delete;
  VideoWriter& operator=(const VideoWriter&) = delete;
  void write(const uint8_t* rgb);  // one H×W×3 frame
  void write(const Clip& clip);    // every frame of clip (same size)
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Images through OpenCV: any format it reads, returned as RGB. Throws DecodeError.
Clip read_image(const std::string& path);
// Writes frame t of clip (RGB) as an image whose format follows the extension (.png, .jpg). Throws DecodeError.
void write_image(const std::string& path, const Clip& clip, int64_t t = 0);
// Resizes every frame; interpolation: "nearest", "bilinear", "bicubic", "area", "lanczos".
Clip resize_clip(const Clip& clip, int64_t height, int64_t width, const std::string& interpolation = "bilinear");

}  // namespace bevt
