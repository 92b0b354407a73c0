// bevt-data --check -1: every item of a dataset checked in parallel (Dataset::check: every frame the sampler could
// ask for), with a progress line, and the bad ones written as bad_files.txt and bad_files.json, which a dataset's
// `exclude` key reads back.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bevt/dataset.h"

namespace bevt::tools {

struct ScanResult {
  std::vector<DataProblem> problems;  // in item order, each path named once per kind
  int64_t items = 0;
  double seconds = 0;
  int jobs = 1;
};

// Checks items [0, dataset.size()) on `jobs` threads; a progress line on stdout (rewritten on a terminal, a plain
// line every 30 s otherwise).
ScanResult scan_dataset(const Dataset& dataset, int jobs);

// Adds `more` to `list`, leaving out any (path, kind) already there.
void merge_problems(std::vector<DataProblem>& list, const std::vector<DataProblem>& more);

// DIR/bad_files.txt (path<TAB>where<TAB>kind<TAB>reason, absolute paths; kept items as # comments) and
// DIR/bad_files.json ({"bad_files": [...], "kept": [...], ...}); `header` names the experiment and stream.
void write_bad_files(const std::string& dir, const std::vector<DataProblem>& problems, const std::string& header,
                     int64_t items);

// Problems whose item is dropped or fails (not kept).
int64_t count_bad(const std::vector<DataProblem>& problems);

}  // namespace bevt::tools
