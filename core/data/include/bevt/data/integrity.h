// Finding bad videos and naming them (issue 20). A cut file keeps its header, and its packet index simply counts
// fewer frames, so truncation shows only against a *declared* figure: the container header (mp4's sample table,
// a stream or Segment Duration) or the annotation's frame range. These functions make that comparison, so every
// dataset judges files the same way; MediaDataset::get (cheap: header vs packet index) and MediaDataset::check
// (thorough: header vs what actually decodes) call them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "bevt/data/video_io.h"
#include "bevt/dataset.h"

namespace bevt {

// What a dataset does with a truncated file or a frame range past the end (key on_truncated).
enum class OnTruncated { Skip, Use, Error };
OnTruncated parse_on_truncated(const std::string& value);  // "skip" | "use" | "error"; throws std::invalid_argument

// Frames a declared figure may exceed the decodable count by before the file counts as truncated. nb_frames is
// exact (mp4's sample table; edit lists may hide a frame or two): max(2, 1%). A duration is rounded and may cover
// the last frame's display time or another stream: max(2, 5%). A file cut anywhere useful is far outside both.
int64_t truncation_tolerance(const std::string& declared_from, int64_t declared);

// Kind "truncated" when the header declares more frames than `decodable` (beyond the tolerance), or when the
// packet index stopped at a read error (info.index_stop) and fewer frames than declared are there.
std::optional<DataProblem> header_truncation(const std::string& path, const VideoInfo& info, int64_t decodable);

// Kind "range_past_end" when an annotated frame range (first, last inclusive; last = -1: to the end) reaches past
// the last of `decodable` frames.
std::optional<DataProblem> range_past_end(const std::string& path, int64_t first, int64_t last, int64_t decodable);

// Kind "wrong_container" when the demuxer FFmpeg chose from the bytes is not what the extension promises (an mp4
// named .webm). Kept: it decodes; named so the dataset can be fixed.
std::optional<DataProblem> container_mismatch(const std::string& path, const std::string& container);

// The kind of a VideoReader DecodeError message: "empty", "missing", "truncated" ("truncated: ...", an mp4 that
// starts right but lost its index; ended prematurely, partial file), "timeout", else "corrupt".
std::string decode_error_kind(const std::string& message);

// "path: reason (where)": the one line a loader, a log or bad_files.txt shows for a problem.
std::string problem_line(const DataProblem& p);

}  // namespace bevt
