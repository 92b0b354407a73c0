// The launch environment (torchrun, Slurm) and the [dist] table.
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>

#include "bevt/error.h"
#include "bevt/strings.h"
#include "host/dist/dist.h"

namespace bevt::host::dist {

std::optional<std::string> process_env(const std::string& name) {
  const char* v = std::getenv(name.c_str());
  if (!v) return std::nullopt;
  return std::string(v);
}

namespace {

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\n");
  if (b == std::string::npos) return {};
  return s.substr(b, s.find_last_not_of(" \t\n") - b + 1);
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out(1);
  for (char c : s) {
    if (c == sep)
      out.emplace_back();
    else
      out.back() += c;
  }
  return out;
}

int parse_int(const std::string& name, const std::string& value, int lo, int hi) {
  size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != value.size() || v < lo || v > hi)
    throw UserError(fmt::format("environment variable {}='{}' is not an integer in [{}, {}] (fix the launcher's "
                                "environment)",
                                name, value, lo, hi));
  return static_cast<int>(v);
}

int env_int(const EnvLookup& get, const std::string& name, int def, int lo, int hi) {
  auto v = get(name);
  if (!v || v->empty()) return def;
  return parse_int(name, *v, lo, hi);
}

void check_world(const LaunchEnv& e, const std::string& rank_var, const std::string& world_var) {
  if (e.rank >= e.world_size)
    throw UserError(fmt::format("environment: {}={} is not below {}={} (fix the launcher's environment)", rank_var,
                                e.rank, world_var, e.world_size));
  if (e.local_rank >= e.local_world_size)
    throw UserError(fmt::format("environment: the local rank {} is not below the local world size {} (fix the "
                                "launcher's environment)",
                                e.local_rank, e.local_world_size));
}

}  // namespace

std::string slurm_first_host(const std::string& nodelist) {
  // The first top-level entry (commas inside brackets do not split), with each bracket range replaced by
  // its first value.
  std::string out;
  int depth = 0;
  bool skipping = false;  // inside a bracket, after its first value
  for (char c : nodelist) {
    if (c == '[') {
      ++depth;
      skipping = false;
      continue;
    }
    if (c == ']') {
      depth = std::max(0, depth - 1);
      skipping = false;
      continue;
    }
    if (depth == 0 && c == ',') break;
    if (depth > 0) {
      if (c == ',' || c == '-') skipping = true;
      if (!skipping) out += c;
      continue;
    }
    out += c;
  }
  return trim(out);
}

int slurm_tasks_on_node(const std::string& list, int node_index) {
  // "4(x2),3": 4 tasks on each of 2 nodes, then 3.
  int node = 0;
  for (const auto& part : split(list, ',')) {
    std::string p = trim(part);
    if (p.empty()) continue;
    int count = 0, repeat = 1;
    auto paren = p.find("(x");
    try {
      count = std::stoi(p.substr(0, paren));
      if (paren != std::string::npos) repeat = std::stoi(p.substr(paren + 2));
    } catch (const std::exception&) {
      throw UserError(fmt::format("environment: cannot read the Slurm tasks-per-node list '{}'", list));
    }
    if (node_index < node + repeat) return count;
    node += repeat;
  }
  return 1;
}

std::optional<LaunchEnv> launch_env(const EnvLookup& get) {
  constexpr int kMaxWorld = 1 << 20;
  LaunchEnv e;
  auto master = [&](const std::string& default_addr, int default_port) {
    auto addr = get("MASTER_ADDR");
    e.master_addr = addr && !addr->empty() ? *addr : default_addr;
    e.master_port = env_int(get, "MASTER_PORT", default_port, 1, 65535);
  };
  if (get("RANK") || get("WORLD_SIZE")) {
    if (!get("RANK") || !get("WORLD_SIZE"))
      throw UserError(fmt::format("environment: {} is set but {} is not (torchrun sets both; set both or neither)",
                                  get("RANK") ? "RANK" : "WORLD_SIZE", get("RANK") ? "WORLD_SIZE" : "RANK"));
    e.source = "torchrun";
    e.world_size = env_int(get, "WORLD_SIZE", 1, 1, kMaxWorld);
    e.rank = env_int(get, "RANK", 0, 0, kMaxWorld);
    e.local_rank = env_int(get, "LOCAL_RANK", e.rank, 0, kMaxWorld);
    e.local_world_size = env_int(get, "LOCAL_WORLD_SIZE", std::max(e.world_size, e.local_rank + 1), 1, kMaxWorld);
    if (e.world_size > 1 && !get("MASTER_ADDR"))
      throw UserError("environment: WORLD_SIZE > 1 but MASTER_ADDR is not set (the host of rank 0; torchrun sets it)");
    if (e.world_size > 1 && !get("MASTER_PORT"))
      throw UserError("environment: WORLD_SIZE > 1 but MASTER_PORT is not set (a free port on rank 0's host)");
    master("127.0.0.1", 29500);
    check_world(e, "RANK", "WORLD_SIZE");
    auto agent = get("TORCHELASTIC_USE_AGENT_STORE");
    if (agent && *agent == "True") {
      e.agent_store = true;
      auto restart = get("TORCHELASTIC_RESTART_COUNT");
      e.store_prefix = "/worker/attempt_" + (restart && !restart->empty() ? *restart : std::string("0"));
    }
    return e;
  }
  if (get("SLURM_PROCID") && (get("SLURM_STEP_NUM_TASKS") || get("SLURM_NTASKS"))) {
    e.source = "slurm";
    e.world_size = get("SLURM_STEP_NUM_TASKS") ? env_int(get, "SLURM_STEP_NUM_TASKS", 1, 1, kMaxWorld)
                                                : env_int(get, "SLURM_NTASKS", 1, 1, kMaxWorld);
    e.rank = env_int(get, "SLURM_PROCID", 0, 0, kMaxWorld);
    e.local_rank = env_int(get, "SLURM_LOCALID", 0, 0, kMaxWorld);
    int node = env_int(get, "SLURM_NODEID", 0, 0, kMaxWorld);
    auto tpn = get("SLURM_STEP_TASKS_PER_NODE");
    if (!tpn) tpn = get("SLURM_TASKS_PER_NODE");
    e.local_world_size = tpn ? slurm_tasks_on_node(*tpn, node) : 1;
    e.local_world_size = std::max(e.local_world_size, e.local_rank + 1);
    std::optional<std::string> nodes;
    for (const char* k : {"SLURM_STEP_NODELIST", "SLURM_JOB_NODELIST", "SLURM_NODELIST"})
      if (!nodes) nodes = get(k);
    std::string first = nodes ? slurm_first_host(*nodes) : std::string();
    if (first.empty() && !get("MASTER_ADDR") && e.world_size > 1)
      throw UserError("environment: Slurm gives no node list (SLURM_STEP_NODELIST / SLURM_JOB_NODELIST); set "
                      "MASTER_ADDR to the host of task 0");
    // A port per job, so that two jobs sharing a node do not collide; MASTER_PORT overrides.
    int job = env_int(get, "SLURM_JOB_ID", 0, 0, 2147483647);
    master(first.empty() ? "127.0.0.1" : first, 20000 + job % 20000);
    check_world(e, "SLURM_PROCID", "SLURM_NTASKS");
    return e;
  }
  return std::nullopt;
}

std::string rank_device(const std::string& requested, const std::string& resolved, const LaunchEnv& env,
                        int64_t visible) {
  if (resolved.rfind("cuda", 0) != 0) return resolved;
  if (visible < 0) visible = static_cast<int64_t>(torch::cuda::device_count());
  // One GPU per local rank unless the experiment names one explicitly. Modulo the visible devices: Slurm and
  // some torchrun set-ups give each task its own CUDA_VISIBLE_DEVICES (one device, whatever LOCAL_RANK is), and
  // more ranks than GPUs on a node share them round-robin rather than asking for a device that is not there.
  if ((requested == "auto" || requested == "cuda") && visible > 0)
    return fmt::format("cuda:{}", env.local_rank % visible);
  return resolved;
}

int64_t rescale_batch(int64_t batch, int64_t saved_world) {
  const int64_t w = world_size();
  if (saved_world <= 0 || saved_world == w) return batch;
  return batch * saved_world / w;
}

}  // namespace bevt::host::dist
