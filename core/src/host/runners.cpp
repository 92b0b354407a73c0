#include "runners.h"

#include <fmt/format.h>

#include <map>

#include "bevt/error.h"
#include "bevt/strings.h"

namespace bevt::host {

namespace {
std::map<std::string, Runner>& runners() {
  static std::map<std::string, Runner> r;
  return r;
}
}  // namespace

void register_runner(const std::string& mode, Runner runner) { runners()[mode] = std::move(runner); }

const Runner* find_runner(const std::string& mode, const std::string& where) {
  auto it = runners().find(mode);
  if (it != runners().end()) return &it->second;
  std::vector<std::string> modes;
  for (const auto& kv : runners()) modes.push_back(kv.first);
  throw UserError(fmt::format("{}: run.mode '{}' has no runner in this build (runnable modes: {}); --dry-run checks "
                              "the composition",
                              where, mode, modes.empty() ? "none" : join(modes)));
}

}  // namespace bevt::host
