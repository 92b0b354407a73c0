#include "bevt/data/video_io.h"

#include <algorithm>
#include <chrono>
#include <cstdarg>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>

#include <fmt/format.h>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
}

namespace bevt {
namespace {

std::string av_err(int code) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(code, buf, sizeof(buf));
  return buf;
}

// Aborts blocking I/O after a deadline so that a stalled file system or a pathological file never hangs a worker.
struct Deadline {
  std::chrono::steady_clock::time_point until;
  static int callback(void* opaque) {
    auto* d = static_cast<Deadline*>(opaque);
    return std::chrono::steady_clock::now() > d->until ? 1 : 0;
  }
};

// FFmpeg's own log lines (per corrupt macroblock, encoder statistics) would drown the run's log; failures reach the
// user as DecodeError messages instead. The last error line of this thread is kept, because it often names the
// cause better than the return code ("moov atom not found" vs "Invalid data found when processing input"). Each
// decoder runs on one thread (threads = 1 by default), so a thread-local line belongs to the file being read.
thread_local std::string t_last_error;

void capture_log(void* avcl, int level, const char* format, va_list vl) {
  if (level > AV_LOG_ERROR) return;
  char line[512];
  int print_prefix = 0;
  av_log_format_line2(avcl, level, format, vl, line, sizeof(line), &print_prefix);
  std::string s = line;
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  if (!s.empty()) t_last_error = s;
  if (level <= AV_LOG_FATAL) av_log_default_callback(avcl, level, format, vl);
}

void quiet_ffmpeg() {
  static std::once_flag once;
  std::call_once(once, [] {
    av_log_set_level(AV_LOG_ERROR);
    av_log_set_callback(&capture_log);
  });
}

// "(<av error>; <FFmpeg's last line>)" for a failed call, the line only when it adds something.
std::string av_reason(int code) {
  std::string r = av_err(code);
  if (!t_last_error.empty() && t_last_error.find(r) == std::string::npos) r += "; " + t_last_error;
  return r;
}

struct PacketInfo {
  int64_t pts = 0, dts = 0;
  bool key = false;
};

}  // namespace

struct VideoReader::Impl {
  std::string path;
  DecodeOptions opts;
  Deadline deadline;
  AVFormatContext* fmt = nullptr;
  AVCodecContext* dec = nullptr;
  SwsContext* sws = nullptr;
  AVPacket* pkt = nullptr;
  AVFrame* frame = nullptr;
  int stream = -1;
  VideoInfo info;
  DecodeStats stats;
  bool have_pts = false;            // every shown frame has a distinct timestamp: seeking is possible
  std::vector<int64_t> frame_pts;   // presentation timestamp of frame i (sorted)
  std::vector<int64_t> key_frame;   // frame index of each keyframe (sorted)
  std::vector<int64_t> key_ts;      // seek target of each keyframe (same order)

  ~Impl() {
    sws_freeContext(sws);
    av_frame_free(&frame);
    av_packet_free(&pkt);
    avcodec_free_context(&dec);
    avformat_close_input(&fmt);
  }

  [[noreturn]] void fail(const std::string& what) const { throw DecodeError(fmt::format("{}: {}", path, what)); }
  void arm() {
    deadline.until = std::chrono::steady_clock::now() +
                     std::chrono::milliseconds(static_cast<int64_t>(opts.timeout_s * 1000));
  }

  bool starts_as_mp4() const {
    std::ifstream f(path, std::ios::binary);
    char head[8] = {0};
    f.read(head, sizeof(head));
    return f.gcount() == 8 && std::string(head + 4, 4) == "ftyp";
  }

  void open() {
    arm();
    t_last_error.clear();
    std::error_code ec;
    if (std::filesystem::is_regular_file(path, ec)) {
      auto bytes = std::filesystem::file_size(path, ec);
      if (!ec) info.file_bytes = static_cast<int64_t>(bytes);
      if (info.file_bytes == 0) fail("empty file (0 bytes)");
    } else if (!std::filesystem::exists(path, ec)) {
      fail("no such file");
    }
    fmt = avformat_alloc_context();
    if (!fmt) fail("out of memory");
    fmt->interrupt_callback.callback = &Deadline::callback;
    fmt->interrupt_callback.opaque = &deadline;
    int r = avformat_open_input(&fmt, path.c_str(), nullptr, nullptr);
    if (r < 0) {
      fmt = nullptr;  // freed by avformat_open_input on failure
      const std::string why = av_reason(r);
      // An mp4 written in one pass keeps its index (moov) at the end: a cut one starts right ('ftyp') but has none.
      if (why.find("moov atom not found") != std::string::npos)
        fail(starts_as_mp4() ? fmt::format("truncated: cannot open ({}): the mp4's index, at its end, is missing; "
                                           "nothing decodes", why)
                             : fmt::format("cannot open ({}): not an mp4 (no ftyp box at its start)", why));
      // The file stops before its header does (a download cut in its first bytes).
      if (r == AVERROR_EOF) fail(fmt::format("truncated: cannot open ({}): the file ends inside its header", why));
      fail(fmt::format("cannot open ({})", why));
    }
    info.container = fmt->iformat && fmt->iformat->name ? fmt->iformat->name : "";
    r = avformat_find_stream_info(fmt, nullptr);
    if (r == AVERROR_EOF) fail(fmt::format("truncated: cannot read stream info ({}): the file ends early", av_reason(r)));
    if (r < 0) fail(fmt::format("cannot read stream info ({})", av_reason(r)));
    const AVCodec* codec = nullptr;
    stream = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (stream < 0 || !codec) fail("no decodable video stream");
    AVStream* st = fmt->streams[stream];
    dec = avcodec_alloc_context3(codec);
    if (!dec) fail("out of memory");
    if (avcodec_parameters_to_context(dec, st->codecpar) < 0) fail("bad codec parameters");
    dec->thread_count = std::max(0, opts.threads);
    if (opts.strict) dec->err_recognition |= AV_EF_EXPLODE | AV_EF_CRCCHECK | AV_EF_BITSTREAM;
    if (opts.threads != 1) dec->thread_type = FF_THREAD_FRAME | FF_THREAD_SLICE;
    r = avcodec_open2(dec, codec, nullptr);
    if (r < 0) fail(fmt::format("cannot open the {} decoder ({})", codec->name, av_reason(r)));
    if (dec->width <= 0 || dec->height <= 0) fail("video stream without a frame size");
    pkt = av_packet_alloc();
    frame = av_frame_alloc();
    if (!pkt || !frame) fail("out of memory");
    info.width = dec->width;
    info.height = dec->height;
    info.codec = codec->name;
    AVRational fr = av_guess_frame_rate(fmt, st, nullptr);
    info.fps = fr.num > 0 && fr.den > 0 ? av_q2d(fr) : 0.0;
    declare_frames(st);
    index_packets();
  }

  // The frame count the header declares, from the most exact figure it has. Matroska/WebM keeps only the Segment
  // Duration (container duration); mp4 keeps every sample's entry in its moov atom (nb_frames).
  void declare_frames(const AVStream* st) {
    if (st->nb_frames > 0) {
      info.declared_frames = st->nb_frames;
      info.declared_from = "nb_frames";
    } else if (st->duration > 0 && st->duration != AV_NOPTS_VALUE && info.fps > 0) {
      info.declared_frames = std::llround(static_cast<double>(st->duration) * av_q2d(st->time_base) * info.fps);
      info.declared_from = "stream duration";
    } else if (fmt->duration > 0 && fmt->duration != AV_NOPTS_VALUE && info.fps > 0) {
      info.declared_frames = std::llround(static_cast<double>(fmt->duration) / AV_TIME_BASE * info.fps);
      info.declared_from = "container duration";
    }
  }

  // Reads every packet of the stream once (no decoding) to learn the frame count, the timestamps and the keyframes.
  void index_packets() {
    std::vector<PacketInfo> packets;
    bool all_pts = true;
    for (;;) {
      t_last_error.clear();
      int r = av_read_frame(fmt, pkt);
      if (r == AVERROR_EOF) {
        // A demuxer that met the end of a cut file may still call it EOF; its log line tells ("File ended
        // prematurely", "partial file").
        if (!t_last_error.empty()) info.index_stop = t_last_error;
        break;
      }
      if (r < 0) {
        if (packets.empty()) fail(fmt::format("cannot read packets ({})", av_reason(r)));
        info.index_stop = av_reason(r);
        break;  // truncated: index what is there
      }
      // A packet the end of the file cut short (mov flags it corrupt; its bytes run past the end): the cut point.
      const bool cut = (pkt->flags & AV_PKT_FLAG_CORRUPT) ||
                       (info.file_bytes > 0 && pkt->pos >= 0 && pkt->pos + pkt->size > info.file_bytes);
      if (cut && pkt->stream_index == stream) {
        info.index_stop = t_last_error.empty() ? "a packet runs past the end of the file" : t_last_error;
        av_packet_unref(pkt);
        if (packets.empty()) fail(fmt::format("no complete video packet ({})", info.index_stop));
        break;
      }
      if (pkt->stream_index == stream && !(pkt->flags & AV_PKT_FLAG_DISCARD)) {
        PacketInfo p;
        p.pts = pkt->pts;
        p.dts = pkt->dts != AV_NOPTS_VALUE ? pkt->dts : pkt->pts;
        p.key = pkt->flags & AV_PKT_FLAG_KEY;
        if (p.pts == AV_NOPTS_VALUE) all_pts = false;
        packets.push_back(p);
      }
      av_packet_unref(pkt);
    }
    if (packets.empty())
      fail(info.declared_frames > 0 ? fmt::format("truncated: the header declares {} frames ({}), none decodable",
                                                  info.declared_frames, info.declared_from)
                                    : std::string("no video frames"));
    info.frames = static_cast<int64_t>(packets.size());
    have_pts = all_pts;
    if (have_pts) {
      for (const auto& p : packets) frame_pts.push_back(p.pts);
      std::sort(frame_pts.begin(), frame_pts.end());
      if (std::adjacent_find(frame_pts.begin(), frame_pts.end()) != frame_pts.end()) have_pts = false;
    }
    if (have_pts) {
      std::vector<std::pair<int64_t, int64_t>> keys;  // (frame index, seek timestamp)
      for (const auto& p : packets) {
        if (!p.key) continue;
        int64_t idx = std::lower_bound(frame_pts.begin(), frame_pts.end(), p.pts) - frame_pts.begin();
        keys.emplace_back(idx, p.pts);  // demuxers index keyframes by pts (mov shifts its dts)
      }
      std::sort(keys.begin(), keys.end());
      for (auto& [i, d] : keys) {
        key_frame.push_back(i);
        key_ts.push_back(d);
      }
      if (key_frame.empty()) have_pts = false;
    }
    if (!have_pts) frame_pts.clear();
    rewind();
  }

  void rewind() {
    AVStream* st = fmt->streams[stream];
    int64_t start = st->start_time != AV_NOPTS_VALUE ? st->start_time : 0;
    if (av_seek_frame(fmt, stream, std::min<int64_t>(start, 0) - 1, AVSEEK_FLAG_BACKWARD) < 0)
      if (avformat_seek_file(fmt, stream, INT64_MIN, start, start, 0) < 0)
        if (avformat_seek_file(fmt, -1, INT64_MIN, 0, 0, AVSEEK_FLAG_BYTE) < 0) fail("cannot rewind");
    avcodec_flush_buffers(dec);
  }

  // Index of the keyframe run that contains frame f (the last keyframe at or before f), or -1.
  int64_t key_before(int64_t f) const {
    auto it = std::upper_bound(key_frame.begin(), key_frame.end(), f);
    if (it == key_frame.begin()) return -1;
    return *(it - 1);
  }
  int64_t key_position(int64_t key_index) const {
    return std::lower_bound(key_frame.begin(), key_frame.end(), key_index) - key_frame.begin();
  }

  // Decoding state of one read().
  bool eof_sent = false;
  bool input_done = false;

  // Produces the next decoded frame into `frame`; false at the end of the stream.
  bool next_frame() {
    for (;;) {
      check_deadline();
      int r = avcodec_receive_frame(dec, frame);
      if (r == 0) {
        ++stats.frames_decoded;
        return true;
      }
      if (r == AVERROR_EOF) return false;
      if (r != AVERROR(EAGAIN)) {
        if (r == AVERROR_INVALIDDATA) continue;  // a corrupt frame: skip it, the index check notices
        fail(fmt::format("decoding failed ({})", av_err(r)));
      }
      if (input_done) {
        if (eof_sent) return false;
        avcodec_send_packet(dec, nullptr);
        eof_sent = true;
        continue;
      }
      // Feed one packet of our stream.
      if (!read_stream_packet()) {
        input_done = true;
        continue;
      }
      int s = avcodec_send_packet(dec, pkt);
      av_packet_unref(pkt);
      if (s < 0 && s != AVERROR(EAGAIN) && s != AVERROR_INVALIDDATA && s != AVERROR_EOF)
        fail(fmt::format("decoding failed ({})", av_err(s)));
    }
  }

  void check_deadline() {
    if (Deadline::callback(&deadline)) fail(fmt::format("timed out after {} s (decode_timeout_s)", opts.timeout_s));
  }

  // The next packet of our stream into `pkt` (other streams' packets dropped); false at the end of the input.
  bool read_stream_packet() {
    for (;;) {
      if (av_read_frame(fmt, pkt) < 0) return false;
      if (pkt->stream_index == stream) return true;
      av_packet_unref(pkt);
    }
  }

  // Every frame from the start, counted but not converted. Damaged data is counted, not thrown: a check wants the
  // whole picture of a file, and one bad packet in the middle must not hide a truncated end.
  DecodeScan scan() {
    DecodeScan out;
    rewind();
    arm();
    auto note = [&](const std::string& what) {
      if (out.first_failed < 0) {
        out.first_failed = out.decoded + out.failed;
        out.error = what;
      }
      ++out.failed;
    };
    bool input_end = false, flushed = false;
    int64_t errors_in_a_row = 0;  // a decoder that keeps failing without taking input would otherwise spin
    for (;;) {
      check_deadline();
      t_last_error.clear();
      int r = avcodec_receive_frame(dec, frame);
      if (r == 0) {
        errors_in_a_row = 0;
        ++stats.frames_decoded;
        if (frame->decode_error_flags || (frame->flags & AV_FRAME_FLAG_CORRUPT))
          note(t_last_error.empty() ? "a damaged frame" : t_last_error);
        else
          ++out.decoded;
        av_frame_unref(frame);
        continue;
      }
      if (r == AVERROR_EOF) break;
      if (r != AVERROR(EAGAIN)) {
        note(av_reason(r));
        if (++errors_in_a_row > 64) break;
        continue;
      }
      if (input_end) {
        if (flushed) break;
        avcodec_send_packet(dec, nullptr);
        flushed = true;
        continue;
      }
      t_last_error.clear();
      if (!read_stream_packet()) {
        input_end = true;
        continue;
      }
      const bool cut = (pkt->flags & AV_PKT_FLAG_CORRUPT) ||
                       (info.file_bytes > 0 && pkt->pos >= 0 && pkt->pos + pkt->size > info.file_bytes);
      if (cut) {  // not decoded; the next turn reads the next packet
        note(t_last_error.empty() ? "a packet runs past the end of the file" : t_last_error);
        av_packet_unref(pkt);
        continue;
      }
      int sent = avcodec_send_packet(dec, pkt);
      av_packet_unref(pkt);
      if (sent < 0 && sent != AVERROR(EAGAIN) && sent != AVERROR_EOF) note(av_reason(sent));
    }
    avcodec_flush_buffers(dec);
    eof_sent = input_done = false;
    return out;
  }

  void seek_to_key(int64_t key_index) {
    int64_t ts = key_ts[key_position(key_index)];
    int r = av_seek_frame(fmt, stream, ts, AVSEEK_FLAG_BACKWARD);
    if (r < 0) r = avformat_seek_file(fmt, stream, INT64_MIN, ts, ts, 0);
    if (r < 0) fail(fmt::format("cannot seek ({})", av_err(r)));
    avcodec_flush_buffers(dec);
    eof_sent = input_done = false;
    ++stats.seeks;
  }

  // swscale's SIMD paths may write past the end of a line, so it converts into a padded buffer; rows are then
  // copied into the clip.
  std::vector<uint8_t> rgb_buf;

  void convert(uint8_t* dst, int64_t w, int64_t h) {
    auto src_fmt = static_cast<AVPixelFormat>(frame->format);
    sws = sws_getCachedContext(sws, frame->width, frame->height, src_fmt, static_cast<int>(w), static_cast<int>(h),
                               AV_PIX_FMT_RGB24, SWS_BICUBIC, nullptr, nullptr, nullptr);
    if (!sws) fail("cannot convert the frame format");
    const int64_t line = (w * 3 + 63) / 64 * 64 + 64;
    rgb_buf.resize(static_cast<size_t>(line * (h + 2) + 64));
    uint8_t* base = rgb_buf.data() + (64 - reinterpret_cast<uintptr_t>(rgb_buf.data()) % 64) % 64;
    uint8_t* planes[4] = {base, nullptr, nullptr, nullptr};
    int lines[4] = {static_cast<int>(line), 0, 0, 0};
    sws_scale(sws, frame->data, frame->linesize, 0, frame->height, planes, lines);
    for (int64_t y = 0; y < h; ++y) std::memcpy(dst + y * w * 3, base + y * line, static_cast<size_t>(w * 3));
    ++stats.frames_converted;
  }

  int64_t frame_index_of_pts(int64_t pts) const {
    auto it = std::lower_bound(frame_pts.begin(), frame_pts.end(), pts);
    if (it == frame_pts.end() || *it != pts) return -1;
    return it - frame_pts.begin();
  }

  // Decodes `needed` (sorted, unique); calls emit(index) with `frame` holding that frame.
  template <class Emit>
  void decode(const std::vector<int64_t>& needed, Emit&& emit) {
    if (have_pts && try_seeking_decode(needed, emit)) return;
    sequential_decode(needed, emit);
  }

  template <class Emit>
  void sequential_decode(const std::vector<int64_t>& needed, Emit&& emit) {
    rewind();
    eof_sent = input_done = false;
    size_t k = 0;
    int64_t i = 0;
    while (k < needed.size() && next_frame()) {
      if (i == needed[k]) {
        emit(i);
        ++k;
      }
      ++i;
    }
    if (k < needed.size()) fail(fmt::format("frame {} could not be decoded (truncated or corrupt)", needed[k]));
  }

  // Seeks to the keyframe before each run of needed frames; false when the timestamps do not line up (then the
  // caller decodes sequentially from the start, which is always exact).
  template <class Emit>
  bool try_seeking_decode(const std::vector<int64_t>& needed, Emit&& emit) {
    int64_t pos = -2;  // index of the last frame the decoder showed; -2: no valid position
    size_t k = 0;
    while (k < needed.size()) {
      int64_t f = needed[k];
      int64_t key = key_before(f);
      if (key < 0) return false;
      if (pos == -2 || key > pos + 1 || f <= pos) {
        seek_to_key(key);
        pos = -2;
      }
      bool found = false;
      while (next_frame()) {
        int64_t idx = frame_index_of_pts(frame->best_effort_timestamp != AV_NOPTS_VALUE ? frame->best_effort_timestamp
                                                                                         : frame->pts);
        if (idx < 0) return false;
        if (pos == -2 && idx > f) return false;  // the seek landed after the frame
        pos = idx;
        if (idx == f) {
          emit(idx);
          found = true;
          break;
        }
        if (idx > f) return false;
      }
      if (!found) fail(fmt::format("frame {} could not be decoded (truncated or corrupt)", f));
      ++k;
    }
    return true;
  }
};

VideoReader::VideoReader(const std::string& path, DecodeOptions options) : impl_(std::make_unique<Impl>()) {
  quiet_ffmpeg();
  impl_->path = path;
  impl_->opts = options;
  impl_->open();
}

VideoReader::~VideoReader() = default;

const VideoInfo& VideoReader::info() const { return impl_->info; }
const DecodeStats& VideoReader::stats() const { return impl_->stats; }
DecodeScan VideoReader::scan() { return impl_->scan(); }

Clip VideoReader::read(const std::vector<int64_t>& indices, int64_t out_width, int64_t out_height) {
  auto& m = *impl_;
  int64_t w = out_width > 0 ? out_width : m.info.width;
  int64_t h = out_height > 0 ? out_height : m.info.height;
  for (int64_t i : indices)
    if (i < 0 || i >= m.info.frames)
      m.fail(fmt::format("frame {} requested but the video has {} frames", i, m.info.frames));
  std::vector<int64_t> needed(indices.begin(), indices.end());
  std::sort(needed.begin(), needed.end());
  needed.erase(std::unique(needed.begin(), needed.end()), needed.end());
  Clip out(static_cast<int64_t>(indices.size()), h, w);
  if (indices.empty()) return out;
  std::map<int64_t, std::vector<int64_t>> slots;  // frame index → output positions
  for (size_t p = 0; p < indices.size(); ++p) slots[indices[p]].push_back(static_cast<int64_t>(p));
  m.arm();
  // A frame is converted into its first slot, then copied into any repeats.
  m.decode(needed, [&](int64_t idx) {
    const auto& s = slots[idx];
    m.convert(out.frame(s[0]), w, h);
    for (size_t j = 1; j < s.size(); ++j) std::memcpy(out.frame(s[j]), out.frame(s[0]), out.frame_bytes());
  });
  return out;
}

int64_t VideoReader::minimal_decode_count(const std::vector<int64_t>& indices) const {
  const auto& m = *impl_;
  std::set<int64_t> frames;
  for (int64_t f : indices) {
    int64_t key = m.have_pts ? std::max<int64_t>(0, m.key_before(f)) : 0;
    for (int64_t i = key; i <= f; ++i) frames.insert(i);
  }
  return static_cast<int64_t>(frames.size());
}

// ---------------------------------------------------------------------------------------------------------------

struct VideoWriter::Impl {
  std::string path;
  AVFormatContext* oc = nullptr;
  AVCodecContext* enc = nullptr;
  AVStream* st = nullptr;
  SwsContext* sws = nullptr;
  AVFrame* frame = nullptr;
  AVPacket* pkt = nullptr;
  int64_t width = 0, height = 0, next_pts = 0;
  bool header = false, closed = false;

  [[noreturn]] void fail(const std::string& what) const { throw DecodeError(fmt::format("{}: {}", path, what)); }

  ~Impl() {
    sws_freeContext(sws);
    av_frame_free(&frame);
    av_packet_free(&pkt);
    avcodec_free_context(&enc);
    if (oc) {
      if (oc->pb) avio_closep(&oc->pb);
      avformat_free_context(oc);
    }
  }

  void drain(bool flush) {
    if (flush) avcodec_send_frame(enc, nullptr);
    for (;;) {
      int r = avcodec_receive_packet(enc, pkt);
      if (r == AVERROR(EAGAIN) || r == AVERROR_EOF) return;
      if (r < 0) fail(fmt::format("encoding failed ({})", av_err(r)));
      av_packet_rescale_ts(pkt, enc->time_base, st->time_base);
      pkt->stream_index = st->index;
      r = av_interleaved_write_frame(oc, pkt);
      if (r < 0) fail(fmt::format("cannot write ({})", av_err(r)));
    }
  }
};

VideoWriter::VideoWriter(const std::string& path, int64_t width, int64_t height, EncodeOptions o)
    : impl_(std::make_unique<Impl>()) {
  quiet_ffmpeg();
  auto& m = *impl_;
  m.path = path;
  m.width = width;
  m.height = height;
  if (width <= 0 || height <= 0 || width % 2 || height % 2) m.fail("frame size must be positive and even");
  if (avformat_alloc_output_context2(&m.oc, nullptr, nullptr, path.c_str()) < 0 || !m.oc)
    m.fail("no container format for this file extension");
  const AVCodec* codec = avcodec_find_encoder_by_name(o.codec.c_str());
  if (!codec) m.fail(fmt::format("encoder '{}' is not in this FFmpeg build", o.codec));
  m.enc = avcodec_alloc_context3(codec);
  m.enc->width = static_cast<int>(width);
  m.enc->height = static_cast<int>(height);
  AVRational fps = av_d2q(o.fps, 100000);
  m.enc->time_base = av_inv_q(fps);
  m.enc->framerate = fps;
  m.enc->pix_fmt = AV_PIX_FMT_YUV420P;
  m.enc->gop_size = o.gop;
  m.enc->max_b_frames = o.bframes;
  m.enc->thread_count = o.threads;
  std::string name = codec->name;
  if (name == "libx264") {
    av_opt_set(m.enc->priv_data, "preset", "veryfast", 0);
    av_opt_set_double(m.enc->priv_data, "crf", 6.0 * o.quality, 0);
    av_opt_set(m.enc->priv_data, "x264-params", fmt::format("keyint={}:min-keyint={}:scenecut=0{}", o.gop, o.gop, o.bframes > 0 ? ":b-adapt=0" : "").c_str(), 0);
  } else if (name == "libvpx-vp9" || name == "libvpx") {
    av_opt_set_double(m.enc->priv_data, "crf", std::min(63, 8 * o.quality), 0);
    av_opt_set(m.enc->priv_data, "deadline", "realtime", 0);
    av_opt_set_int(m.enc->priv_data, "cpu-used", 8, 0);
    m.enc->bit_rate = 0;
  } else {
    m.enc->flags |= AV_CODEC_FLAG_QSCALE;
    m.enc->global_quality = FF_QP2LAMBDA * o.quality;
  }
  if (m.oc->oformat->flags & AVFMT_GLOBALHEADER) m.enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  int r = avcodec_open2(m.enc, codec, nullptr);
  if (r < 0) m.fail(fmt::format("cannot open encoder {} ({})", name, av_err(r)));
  m.st = avformat_new_stream(m.oc, nullptr);
  if (!m.st) m.fail("out of memory");
  m.st->time_base = m.enc->time_base;
  m.st->avg_frame_rate = fps;
  avcodec_parameters_from_context(m.st->codecpar, m.enc);
  if (!(m.oc->oformat->flags & AVFMT_NOFILE)) {
    r = avio_open(&m.oc->pb, path.c_str(), AVIO_FLAG_WRITE);
    if (r < 0) m.fail(fmt::format("cannot create ({})", av_err(r)));
  }
  AVDictionary* muxer_opts = nullptr;
  if (o.faststart) av_dict_set(&muxer_opts, "movflags", "+faststart", 0);
  r = avformat_write_header(m.oc, &muxer_opts);
  av_dict_free(&muxer_opts);
  if (r < 0) m.fail(fmt::format("cannot write the header ({})", av_err(r)));
  m.header = true;
  m.frame = av_frame_alloc();
  m.pkt = av_packet_alloc();
  m.frame->format = AV_PIX_FMT_YUV420P;
  m.frame->width = static_cast<int>(width);
  m.frame->height = static_cast<int>(height);
  if (av_frame_get_buffer(m.frame, 0) < 0) m.fail("out of memory");
  m.sws = sws_getContext(static_cast<int>(width), static_cast<int>(height), AV_PIX_FMT_RGB24, static_cast<int>(width),
                         static_cast<int>(height), AV_PIX_FMT_YUV420P, SWS_BICUBIC, nullptr, nullptr, nullptr);
  if (!m.sws) m.fail("cannot set up colour conversion");
}

VideoWriter::~VideoWriter() {
  try {
    close();
  } catch (...) {
  }
}

void VideoWriter::write(const uint8_t* rgb) {
  auto& m = *impl_;
  if (m.closed) m.fail("write after close");
  if (av_frame_make_writable(m.frame) < 0) m.fail("out of memory");
  const uint8_t* src[4] = {rgb, nullptr, nullptr, nullptr};
  int lines[4] = {static_cast<int>(m.width * 3), 0, 0, 0};
  sws_scale(m.sws, src, lines, 0, static_cast<int>(m.height), m.frame->data, m.frame->linesize);
  m.frame->pts = m.next_pts++;
  int r = avcodec_send_frame(m.enc, m.frame);
  if (r < 0) m.fail(fmt::format("encoding failed ({})", av_err(r)));
  m.drain(false);
}

void VideoWriter::write(const Clip& clip) {
  if (clip.width != impl_->width || clip.height != impl_->height) impl_->fail("clip size differs from the writer's");
  for (int64_t t = 0; t < clip.frames; ++t) write(clip.frame(t));
}

void VideoWriter::close() {
  auto& m = *impl_;
  if (m.closed || !m.header) return;
  m.closed = true;
  m.drain(true);
  int r = av_write_trailer(m.oc);
  if (r < 0) m.fail(fmt::format("cannot finish the file ({})", av_err(r)));
  if (m.oc->pb) avio_closep(&m.oc->pb);
}

}  // namespace bevt
