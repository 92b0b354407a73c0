#include "command_line.h"

#include <c10/util/Exception.h>
#include <fmt/format.h>

#include <filesystem>
#include <iostream>

#include "bevt/error.h"
#include "bevt/strings.h"

namespace bevt::host {

int run_guarded(const std::string& program, const std::function<int()>& body) {
  try {
    return body();
  } catch (const UserError& e) {
    std::cerr << program << ": error: " << first_line(e.what()) << std::endl;
    return 2;
  } catch (const RunError& e) {
    std::cerr << program << ": error: " << first_line(e.what()) << std::endl;
    return 1;
  } catch (const c10::Error& e) {
    std::cerr << program << ": error: " << first_line(e.what_without_backtrace()) << std::endl;
    return 1;
  } catch (const std::exception& e) {
    std::cerr << program << ": error: " << first_line(e.what()) << std::endl;
    return 1;
  }
}

Registry make_registry(const std::vector<std::string>& plugin_dirs) {
  std::vector<std::string> dirs = Registry::default_dirs();
  for (const auto& d : plugin_dirs) {
    std::error_code ec;
    if (!std::filesystem::is_directory(d, ec))
      throw UserError(fmt::format("--plugin-dir {}: no such folder", d));
    dirs.push_back(d);
  }
  return Registry::discover(dirs);
}

std::string list_plugins(const Registry& r) {
  std::string out;
  for (Kind k : {Kind::Backbone, Kind::Tokenizer, Kind::Masker, Kind::Dataset, Kind::Head}) {
    for (const auto& p : r.plugins()) {
      if (p.info.kind != k) continue;
      out += fmt::format("{:<10} {:<22} {:<34} {}\n", kind_name(k), p.info.name,
                         std::filesystem::path(p.library).filename().string(), p.info.summary);
    }
  }
  if (r.plugins().empty()) out += "no plugins found (searched the host's plugin folder and BEVT_PLUGIN_PATH)\n";
  for (const auto& prob : r.problems()) out += fmt::format("not loaded: {}: {}\n", prob.library, prob.reason);
  return out;
}

std::string describe_plugin(const Registry& r, const std::string& name) {
  const auto& p = r.find(name, std::nullopt, "--help-plugin");
  std::string out = fmt::format("{} ({}) — {}\nlibrary: {}\n", p.info.name, kind_name(p.info.kind), p.info.summary,
                                p.library);
  if (!p.info.official_names.empty())
    out += fmt::format("reproduces: {}\n", join(p.info.official_names));
  out += "keys:\n";
  for (const auto& k : p.info.keys) {
    std::string def = k.required() ? "(required)" : *k.default_toml;
    out += fmt::format("  {:<24} {:<18} {:<22} {}\n", k.name, type_name(k.type), def, k.doc);
  }
  if (p.info.keys.empty()) out += "  (none)\n";
  return out;
}

}  // namespace bevt::host
