#include "plan.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <sstream>

#include <toml++/toml.h>

#include "bevt/error.h"
#include "bevt/strings.h"

namespace fs = std::filesystem;

namespace bevt::host::orchestrate {

namespace {

const std::vector<std::string> kPlanKeys = {"title", "work_dir", "reference", "variant", "stages", "variants"};
const std::vector<std::string> kStageKeys = {"file", "row", "column"};

const char* kPlanHint = "see docs/plans.md";

// Where a node was written: "file:line", or "--set plan.x=y" for an override; `fallback` for nodes the reader
// made itself (a suite folder's stage list).
std::string at(const toml::node& n, const std::string& fallback) {
  const auto& src = n.source();
  if (!src.path) return fallback;
  if (src.path->rfind("--set", 0) == 0) return *src.path;
  return fmt::format("{}:{}", *src.path, src.begin.line);
}

toml::table parse(const fs::path& file) {
  try {
    return toml::parse_file(file.string());
  } catch (const toml::parse_error& e) {
    throw UserError(fmt::format("{}:{}: invalid TOML: {}", file.string(), e.source().begin.line, e.description()));
  }
}

// The old formats, refused with how to write them now.
void refuse_old_formats(const toml::table& root, const std::string& file) {
  const toml::node* mode = root.at_path("run.mode").node();
  if (mode && mode->value<std::string>() == "pipeline")
    throw UserError(fmt::format(
        "{}: run.mode = \"pipeline\" is the old pipeline format: write [plan] stages = [...] (and "
        "[plan.variants.<name>] stages = [...], picked with --set plan.variant=<name>) instead of [run] and "
        "[pipeline]; {}",
        at(*mode, file), kPlanHint));
  if (const toml::node* p = root.get("pipeline"))
    throw UserError(fmt::format("{}: [pipeline] is the old pipeline format: rename it [plan] (and "
                                "[pipeline.variants.<name>] to [plan.variants.<name>]); {}",
                                at(*p, file), kPlanHint));
  if (const toml::node* e = root.get("experiment"))
    throw UserError(fmt::format("{}: [[experiment]] tables are the old suite format: list them in [plan] as "
                                "stages = [{{ file = \"x.toml\", row = \"...\", column = \"...\" }}, ...]; {}",
                                at(*e, file), kPlanHint));
  if (const toml::node* s = root.get("suite"))
    throw UserError(fmt::format("{}: [suite] is the old suite format: put its work_dir, reference and title in "
                                "[plan]; {}",
                                at(*s, file), kPlanHint));
}

void unknown_key(const std::string& where, const std::string& key, const std::string& table,
                 const std::vector<std::string>& known) {
  std::string hint = did_you_mean(key, known);
  if (hint.empty()) hint = fmt::format(" (known: {})", join(known));
  throw UserError(fmt::format("{}: unknown key '{}' in {}{}", where, key, table, hint));
}

void only_keys(const toml::table& t, const std::vector<std::string>& known, const std::string& table,
               const std::string& file) {
  for (const auto& [k, v] : t) {
    std::string name(k.str());
    if (std::find(known.begin(), known.end(), name) == known.end()) unknown_key(at(v, file), name, table, known);
  }
}

std::string string_of(const toml::table& t, const std::string& key, const std::string& table,
                      const std::string& file) {
  const toml::node* n = t.get(key);
  if (!n) return "";
  if (!n->is_string()) throw UserError(fmt::format("{}: {}.{} must be a string", at(*n, file), table, key));
  return n->as_string()->get();
}

// plan.<dotted key>=VALUE into the plan table; VALUE is a TOML literal, or else a bare word taken as a string.
void apply_override(toml::table& plan, const std::string& o) {
  const auto eq = o.find('=');
  const std::string key = o.substr(0, eq), literal = o.substr(eq + 1), where = "--set " + o;
  toml::table parsed;
  try {
    parsed = toml::parse("v = " + literal, where);
  } catch (const toml::parse_error&) {
    toml::table word;
    word.insert("v", literal);
    std::ostringstream quoted;
    quoted << word;
    parsed = toml::parse(quoted.str(), where);
  }
  std::vector<std::string> path;
  std::stringstream ss(key.substr(5));  // after "plan."
  for (std::string part; std::getline(ss, part, '.');) {
    if (part.empty()) throw UserError(fmt::format("{}: expected --set plan.KEY=VALUE", where));
    path.push_back(part);
  }
  toml::table* t = &plan;
  for (size_t i = 0; i + 1 < path.size(); ++i) {
    toml::node* next = t->get(path[i]);
    if (!next) next = &t->insert_or_assign(path[i], toml::table{}).first->second;
    if (!next->is_table())
      throw UserError(fmt::format("{}: plan.{} is not a table", where, path[i]));
    t = next->as_table();
  }
  t->insert_or_assign(path.back(), std::move(*parsed.get("v")));
}

// A stage list: each entry a file name or a table {file, row, column}. Files resolve against `base`; with
// `check_files` a missing one is an error.
std::vector<PlanStageSpec> read_stages(const toml::node& node, const std::string& table, const fs::path& base,
                                       const std::string& file, bool check_files) {
  const toml::array* arr = node.as_array();
  if (!arr)
    throw UserError(fmt::format("{}: {}.stages must be a list of experiment files or {{ file = ..., row = ..., "
                                "column = ... }} tables",
                                at(node, file), table));
  std::vector<PlanStageSpec> out;
  for (const auto& e : *arr) {
    PlanStageSpec s;
    if (const auto* str = e.as_string()) {
      s.name = str->get();
    } else if (const auto* t = e.as_table()) {
      only_keys(*t, kStageKeys, table + ".stages entry", file);
      s.name = string_of(*t, "file", table + ".stages", file);
      if (s.name.empty())
        throw UserError(fmt::format("{}: a {}.stages table needs file = \"x.toml\"", at(e, file), table));
      s.row = string_of(*t, "row", table + ".stages", file);
      s.column = string_of(*t, "column", table + ".stages", file);
    } else {
      throw UserError(fmt::format("{}: each entry of {}.stages is a file name or a {{ file = ... }} table",
                                  at(e, file), table));
    }
    const fs::path f = base / s.name;
    if (check_files && !fs::is_regular_file(f))
      throw UserError(fmt::format("{}: stage file '{}' not found ({})", at(e, file), s.name, f.string()));
    s.file = f.lexically_normal().string();
    out.push_back(std::move(s));
  }
  return out;
}

// The plan in `root` (a parsed plan file, or a suite folder's made-up one), overrides applied.
PlanSpec read_root(toml::table root, const std::string& file, const fs::path& base, const std::string& default_wd,
                   const std::vector<std::string>& overrides) {
  refuse_old_formats(root, file);
  for (const auto& [k, v] : root)
    if (k.str() != "plan")
      throw UserError(fmt::format("{}: unknown key '{}' in a plan file (it holds one [plan] table){}", at(v, file),
                                  std::string(k.str()), did_you_mean(k.str(), {"plan"})));
  toml::node* pn = root.get("plan");
  if (!pn) throw UserError(fmt::format("{}: no [plan] table ({})", file, kPlanHint));
  if (!pn->is_table()) throw UserError(fmt::format("{}: 'plan' must be a table", at(*pn, file)));
  toml::table& plan = *pn->as_table();
  for (const auto& o : overrides) apply_override(plan, o);
  only_keys(plan, kPlanKeys, "[plan]", file);

  PlanSpec spec;
  spec.source = file;
  spec.title = string_of(plan, "title", "plan", file);
  spec.work_dir = string_of(plan, "work_dir", "plan", file);
  if (spec.work_dir.empty()) spec.work_dir = default_wd;
  spec.variant = string_of(plan, "variant", "plan", file);
  if (auto r = string_of(plan, "reference", "plan", file); !r.empty()) {
    const fs::path rp = base / r;
    if (!fs::is_regular_file(rp))
      throw UserError(fmt::format("{}: reference file '{}' not found ({})", at(*plan.get("reference"), file), r,
                                  rp.string()));
    spec.reference = rp.lexically_normal().string();
  }

  // Every variant is read (a typo in one fails whichever runs); only the selected one's files must exist.
  std::vector<std::pair<std::string, std::vector<PlanStageSpec>>> variants;
  if (const toml::node* vn = plan.get("variants")) {
    if (!vn->is_table())
      throw UserError(fmt::format("{}: plan.variants must be a table: [plan.variants.<name>] stages = [...]",
                                  at(*vn, file)));
    for (const auto& [k, v] : *vn->as_table()) {
      const std::string name(k.str()), table = "plan.variants." + name;
      if (!v.is_table())
        throw UserError(fmt::format("{}: {} must be a table {{ stages = [...] }}", at(v, file), table));
      only_keys(*v.as_table(), {"stages"}, "[" + table + "]", file);
      const toml::node* st = v.as_table()->get("stages");
      if (!st) throw UserError(fmt::format("{}: [{}] needs stages = [...]", at(v, file), table));
      variants.emplace_back(name, read_stages(*st, table, base, file, name == spec.variant));
      spec.variants.push_back(name);
    }
  }
  if (spec.variant.empty()) {
    const toml::node* st = plan.get("stages");
    if (!st) throw UserError(fmt::format("{}: [plan] needs stages = [...] (experiment files run in order)", at(plan, file)));
    spec.stages = read_stages(*st, "plan", base, file, true);
    if (spec.stages.empty()) throw UserError(fmt::format("{}: plan.stages is empty", at(*st, file)));
  } else {
    if (const toml::node* st = plan.get("stages")) read_stages(*st, "plan", base, file, false);
    auto it = std::find_if(variants.begin(), variants.end(), [&](const auto& v) { return v.first == spec.variant; });
    if (it == variants.end())
      throw UserError(fmt::format("{}: plan.variant '{}' is not defined in [plan.variants] (defined: {}){}",
                                  at(*plan.get("variant"), file), spec.variant,
                                  spec.variants.empty() ? "none" : join(spec.variants),
                                  did_you_mean(spec.variant, spec.variants)));
    spec.stages = it->second;
    if (spec.stages.empty())
      throw UserError(fmt::format("{}: plan.variants.{}.stages is empty", file, spec.variant));
  }
  return spec;
}

}  // namespace

bool is_plan_file(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return false;
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error&) {
    return false;
  }
  if (root.contains("plan") || root.contains("pipeline") || root.contains("experiment") || root.contains("suite"))
    return true;
  return root.at_path("run.mode").value<std::string>() == "pipeline";
}

SplitOverrides split_overrides(const std::vector<std::string>& overrides) {
  SplitOverrides out;
  for (const auto& o : overrides) {
    const std::string key = o.substr(0, o.find('='));
    if (o.find('=') == std::string::npos || key.empty())
      throw UserError(fmt::format("--set '{}': expected KEY=VALUE, e.g. --set run.seed=1", o));
    if (key == "pipeline" || key.rfind("pipeline.", 0) == 0)
      throw UserError(fmt::format("--set {}: [pipeline] is now [plan] (e.g. --set plan.variant=timesformer); {}", o,
                                  kPlanHint));
    if (key == "plan") throw UserError(fmt::format("--set {}: expected --set plan.KEY=VALUE", o));
    (key.rfind("plan.", 0) == 0 ? out.plan : out.stages).push_back(o);
  }
  return out;
}

std::string default_work_dir(const std::string& dir) {
  const fs::path canon = fs::weakly_canonical(dir);
  const std::vector<fs::path> parts(canon.begin(), canon.end());
  for (size_t i = parts.size(); i-- > 0;) {
    if (parts[i] != "experiments" || i + 1 >= parts.size()) continue;
    fs::path rel = "work_dirs";
    for (size_t j = i + 1; j < parts.size(); ++j) rel /= parts[j];
    return rel.string();
  }
  return (fs::path("work_dirs") / "suites" / canon.filename()).string();
}

PlanSpec read_plan(const std::string& file, const std::vector<std::string>& plan_overrides) {
  const fs::path f(file);
  if (!fs::is_regular_file(f)) throw UserError(fmt::format("{}: plan file not found", file));
  // A folder's suite.toml stands for the folder (its default work_dir is the folder's); another plan file
  // writes work_dirs/<its name>, as an experiment does.
  const std::string default_wd = f.filename() == "suite.toml"
                                     ? default_work_dir(f.parent_path().empty() ? "." : f.parent_path().string())
                                     : (fs::path("work_dirs") / f.stem()).string();
  return read_root(parse(f), file, f.parent_path(), default_wd, plan_overrides);
}

PlanSpec read_suite(const std::string& dir_arg, const std::vector<std::string>& plan_overrides) {
  const fs::path dir(dir_arg);
  if (!fs::is_directory(dir))
    throw UserError(fmt::format("--suite {}: no such folder (give a folder of experiment files, e.g. "
                                "experiments/ablations/mini/strategy)",
                                dir_arg));
  if (fs::exists(dir / "suite.toml")) return read_plan((dir / "suite.toml").string(), plan_overrides);
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string n = e.path().filename().string();
    if (e.is_regular_file() && e.path().extension() == ".toml" && n[0] != '_') names.push_back(n);
  }
  std::sort(names.begin(), names.end());
  if (names.empty())
    throw UserError(fmt::format("--suite {}: the folder has no suite.toml and no experiment files (*.toml)", dir_arg));
  toml::array stages;
  for (const auto& n : names) stages.push_back(n);
  toml::table plan;
  plan.insert("stages", std::move(stages));
  toml::table root;
  root.insert("plan", std::move(plan));
  return read_root(std::move(root), dir_arg, dir, default_work_dir(dir_arg), plan_overrides);
}

}  // namespace bevt::host::orchestrate
