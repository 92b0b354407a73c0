// Bad data as JSON, in one shape for bevt-data's bad_files.json / summary.json and a run's results.json: each
// problem with its path, annotation line or id, kind, reason and (where known) declared vs decodable frames.
#pragma once

#include <nlohmann/json.hpp>

#include "bevt/dataset.h"
#include "host/compose.h"

namespace bevt::host {

nlohmann::json problem_json(const DataProblem& p);

// Per data stream of a composition: {"<stream>": {"annotation": [problems found reading it], "bad_files":
// ["path: reason", ... every bad file a loader met]}}; streams with neither are left out.
nlohmann::json data_problems_json(const Composition& composition);

}  // namespace bevt::host
