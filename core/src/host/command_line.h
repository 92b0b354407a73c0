// What every bevt executable does at its edges: map exceptions to one-line messages and exit statuses
// (DESIGN.md: 0 success, 1 run failure, 2 bad input), and build the plugin registry from the command line.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "registry.h"

namespace bevt::host {

// Runs body, printing "<program>: error: <one line>" for exceptions: UserError → 2, RunError and anything
// else → 1. torch's multi-line errors are cut to their first line.
int run_guarded(const std::string& program, const std::function<int()>& body);

// The host's own plugin folder and BEVT_PLUGIN_PATH, then each --plugin-dir (which must exist).
Registry make_registry(const std::vector<std::string>& plugin_dirs);

std::string list_plugins(const Registry& r);
std::string describe_plugin(const Registry& r, const std::string& name);

}  // namespace bevt::host
