#include "host/data/problems.h"

#include "host/data/loader.h"

namespace bevt::host {

nlohmann::json problem_json(const DataProblem& p) {
  nlohmann::json j = {{"path", p.path}, {"where", p.where}, {"kind", p.kind}, {"reason", p.reason}, {"kept", p.kept}};
  if (p.declared >= 0) j["declared_frames"] = p.declared;
  if (p.decodable >= 0) j["decodable_frames"] = p.decodable;
  return j;
}

nlohmann::json data_problems_json(const Composition& composition) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& c : composition.components) {
    if (c.path.rfind("data.", 0) != 0) continue;
    auto ds = component_cast<Dataset>(c.object);
    if (!ds) continue;
    nlohmann::json annotation = nlohmann::json::array();
    for (const auto& p : ds->problems()) annotation.push_back(problem_json(p));
    auto bad = recorded_bad_files(ds.get());
    if (annotation.empty() && bad.empty()) continue;
    out[c.path.substr(5)] = {{"annotation", annotation}, {"bad_files", bad}};
  }
  return out;
}

}  // namespace bevt::host
