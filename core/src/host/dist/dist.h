// Distributed data-parallel training through torch's own c10d (DESIGN.md, "Distributed"): a TCPStore
// rendezvous from the variables torchrun or Slurm set, ProcessGroupNCCL on CUDA and ProcessGroupGloo on CPU,
// and a process-wide context that the trainer asks for its rank. One process (world size 1) when no launcher
// variables are set; every call below is then a cheap no-op.
//
// Faults: every rank publishes a heartbeat through the store. A rank that dies, stops (SIGSTOP, a hung machine)
// or fails with an error makes every other rank exit with status 1 and a message naming it, within
// dist.timeout seconds; a collective that fails (a peer's connection closed) names the rank behind it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "bevt/tensor_map.h"
#include "host/config/sections.h"

namespace bevt::host::dist {

// Where this process sits in the world, as its launcher describes it.
struct LaunchEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  std::string source;           // "torchrun" (RANK/WORLD_SIZE/...), "slurm" (SLURM_PROCID/...)
  bool agent_store = false;     // torchrun's agent hosts the store (TORCHELASTIC_USE_AGENT_STORE=True)
  std::string store_prefix;     // key prefix inside the agent's store ("/worker/attempt_<restart>")
};

using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
std::optional<std::string> process_env(const std::string& name);

// The launch described by the environment: torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK,
// LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT) win over Slurm's (SLURM_PROCID, SLURM_LOCALID,
// SLURM_STEP_NUM_TASKS or SLURM_NTASKS, the first host of SLURM_STEP_NODELIST / SLURM_JOB_NODELIST;
// MASTER_ADDR / MASTER_PORT override). nullopt when neither is set. A malformed value is a UserError naming
// the variable.
std::optional<LaunchEnv> launch_env(const EnvLookup& get = process_env);

// The first host of a Slurm node list: "gpu[03-05,09],cpu1" → "gpu03"; "rack[1-2]-n[07-08]" → "rack1-n07".
std::string slurm_first_host(const std::string& nodelist);
// Tasks on node `node_index` of a Slurm tasks-per-node list: "4(x2),3" → 4, 4, 3.
int slurm_tasks_on_node(const std::string& tasks_per_node, int node_index);

using Settings = DistSettings;  // the typed [dist] table (host/config/sections.h)

// Whether this build's torch offers each process group.
bool have_gloo();
bool have_nccl();

// Process-wide context. Before init() (or without a launcher): rank 0 of 1.
bool active();  // a process group of more than one rank exists
int rank();
int world_size();
int local_rank();
bool is_main();  // rank 0: the one rank that writes logs, metrics, checkpoints and results
std::string backend_name();  // "gloo", "nccl" or "" when not active

// Sets up the world: TCPStore rendezvous at MASTER_ADDR:MASTER_PORT (rank 0 hosts it unless torchrun's agent
// does), a check that every rank runs the same experiment (`experiment`: the resolved experiment's text, all
// keys and overrides included), the process group, and the heartbeat monitor. `device` is this rank's device
// ("cpu", "cuda:N"). A port in use or an unreachable master is a UserError; ranks that do not join within the
// timeout are named in a RunError.
void init(const LaunchEnv& env, const Settings& settings, const std::string& device, const std::string& experiment);
// The device of this rank: "auto"/"cuda" on a CUDA machine → cuda:(LOCAL_RANK mod visible devices); anything
// else unchanged. `visible` < 0: torch::cuda::device_count().
std::string rank_device(const std::string& requested, const std::string& resolved, const LaunchEnv& env,
                        int64_t visible = -1);
// Orderly end of a successful run: waits for every rank, so that the rank hosting the store outlives the rest.
void finish();
// This rank failed with `message`: the other ranks exit naming it (best effort; never throws).
void report_failure(const std::string& message);

// Collectives over the world (no-ops in one process). A failure throws RunError naming the rank at fault.
void broadcast(std::vector<torch::Tensor> tensors, int root = 0);  // in place
void all_reduce_sum(torch::Tensor t);                              // in place
std::vector<torch::Tensor> all_gather(const torch::Tensor& t);     // same shape on every rank
void barrier();

// An all-reduce (sum) in flight; wait() throws RunError naming the rank at fault.
class Pending {
 public:
  Pending() = default;
  explicit Pending(std::function<void()> wait_fn) : wait_(std::move(wait_fn)) {}
  void wait();
  bool valid() const { return static_cast<bool>(wait_); }

 private:
  std::function<void()> wait_;
};
Pending all_reduce_sum_async(torch::Tensor t);

// The device small bookkeeping tensors must live on for collectives (CUDA for NCCL, else CPU).
torch::Device comm_device();

// Averages a set of named values across ranks (every rank must pass the same names).
void average(std::map<std::string, double>& values);
double max_across_ranks(double v);

// Checkpoint helpers. add_rng_states stores every rank's CPU generator state ("__torch_rng_state__" for rank
// 0, "__torch_rng_state__.rank<r>" for the others: a collective); restore_rng_state sets this rank's from a
// checkpoint written by any world size (a rank the checkpoint lacks draws a fresh state from (seed, rank)).
void add_rng_states(TensorMap& optim_state);
void restore_rng_state(const TensorMap& optim_state, uint64_t seed);
// Ranks above 0 reseed torch's generator from (seed, rank), so that their dropout and drop-path draws differ
// from rank 0's (rank 0 keeps the single-process stream).
void seed_rank_generator(uint64_t seed);
// A loader position saved by `saved_world` ranks, for this world: the same samples consumed, rounded down.
int64_t rescale_batch(int64_t batch, int64_t saved_world);

}  // namespace bevt::host::dist
