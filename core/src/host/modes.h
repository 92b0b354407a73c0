// Run modes as data: one table maps each run.mode to the function that runs it, the host tables it reads and
// the component slots it needs. Validation (Experiment::load), dispatch (bevt-run) and `bevt-run --help` all
// read this table, so a new mode is one row here and one runner function.
#pragma once

#include <string>
#include <vector>

namespace bevt::host {

struct RunContext;
using Runner = int (*)(const RunContext&);

struct ModeSpec {
  std::string name;
  std::string summary;
  std::vector<std::string> tables;  // host tables it reads besides [run] and [dist]
  // Component slots that must be present. "a|b": one of them; "{stream}": once per pretrain.streams entry.
  std::vector<std::string> needs;
  Runner run = nullptr;
};

const std::vector<ModeSpec>& modes();
std::vector<std::string> mode_names();
// The row of `name`; UserError naming `where`, the modes and the nearest when there is none.
const ModeSpec& find_mode(const std::string& name, const std::string& where);
struct Experiment;
// The component slots exp.run.mode needs are present ("a|b": one of them; "{stream}" per pretrain stream);
// UserError naming the file, the mode and the missing table otherwise. compose() calls it once the plugins
// are resolved, so an unknown plugin name is reported first.
void check_mode_needs(const Experiment& exp);

// The table as text for --help.
std::string modes_help();

}  // namespace bevt::host
