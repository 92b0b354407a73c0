#include "bevt/data/integrity.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <stdexcept>

#include <fmt/format.h>

namespace bevt {

OnTruncated parse_on_truncated(const std::string& value) {
  if (value == "skip") return OnTruncated::Skip;
  if (value == "use") return OnTruncated::Use;
  if (value == "error") return OnTruncated::Error;
  throw std::invalid_argument(fmt::format("on_truncated = '{}' (expected skip, use or error)", value));
}

int64_t truncation_tolerance(const std::string& declared_from, int64_t declared) {
  if (declared_from == "nb_frames") return std::max<int64_t>(2, declared / 100);
  return std::max<int64_t>(2, declared / 20);
}

std::optional<DataProblem> header_truncation(const std::string& path, const VideoInfo& info, int64_t decodable) {
  const bool short_of_header =
      info.declared_frames > 0 && decodable < info.declared_frames - truncation_tolerance(info.declared_from, info.declared_frames);
  // A read error before the end is a cut too, when the header has no length to compare with (or agrees within the
  // tolerance but the last frames are gone).
  const bool stopped_early = !info.index_stop.empty() && (info.declared_frames <= 0 || decodable < info.declared_frames);
  if (!short_of_header && !stopped_early) return std::nullopt;
  DataProblem p;
  p.path = path;
  p.kind = "truncated";
  p.declared = info.declared_frames;
  p.decodable = decodable;
  if (info.declared_frames > 0)
    p.reason = fmt::format("truncated: the header declares {} frames ({}), {} decodable", info.declared_frames,
                           info.declared_from, decodable);
  else
    p.reason = fmt::format("truncated: the file ends early ({}), {} frames decodable", info.index_stop, decodable);
  return p;
}

std::optional<DataProblem> range_past_end(const std::string& path, int64_t first, int64_t last, int64_t decodable) {
  if (last < 0 ? first < decodable : last < decodable) return std::nullopt;
  DataProblem p;
  p.path = path;
  p.kind = "range_past_end";
  p.declared = (last < 0 ? first : last) + 1;
  p.decodable = decodable;
  p.reason = last < 0 ? fmt::format("frame range starts at frame {} but {} frames are decodable", first, decodable)
                      : fmt::format("frame range {}..{} ends past the end: the annotation needs {} frames, {} decodable",
                                    first, last, last + 1, decodable);
  return p;
}

std::optional<DataProblem> container_mismatch(const std::string& path, const std::string& container) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  std::string expect;  // a word of the demuxer's name
  if (ext == ".webm" || ext == ".mkv") expect = "matroska";
  else if (ext == ".mp4" || ext == ".m4v" || ext == ".mov") expect = "mp4";
  else if (ext == ".avi") expect = "avi";
  if (expect.empty() || container.empty() || container.find(expect) != std::string::npos) return std::nullopt;
  DataProblem p;
  p.path = path;
  p.kind = "wrong_container";
  p.kept = true;
  p.reason = fmt::format("wrong container: the bytes are {} but the name says {} (it decodes; rename or re-mux it)",
                         container, ext);
  return p;
}

std::string decode_error_kind(const std::string& m) {
  auto has = [&](const char* s) { return m.find(s) != std::string::npos; };
  if (has("empty file (0 bytes)")) return "empty";
  if (has("no such file")) return "missing";
  if (has("timed out")) return "timeout";
  if (has("truncated:") || has("ended prematurely") || has("partial file"))
    return "truncated";
  return "corrupt";
}

std::string problem_line(const DataProblem& p) {
  std::string line = p.path + ": " + p.reason;
  if (!p.where.empty()) line += " (" + p.where + ")";
  return line;
}

}  // namespace bevt
