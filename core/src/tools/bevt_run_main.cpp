// bevt-run (and bevt-test, which calls it with --test): composes an experiment from plugins by name and runs
// it (DESIGN.md).
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <sched.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <thread>

#include "../host/command_line.h"
#include "../host/compose.h"
#include "../host/config/experiment.h"
#include "../host/dist/dist.h"
#include "../host/dist/launcher.h"
#include "../host/modes.h"
#include "../host/orchestrate/runner.h"
#include "../host/run_context.h"
#include "../host/train/amp.h"
#include "../host/train/checkpoint.h"
#include "../host/train/inputs.h"
#include "../host/train/run_folder.h"
#include "bevt_run_flags.h"
#include "bevt_run_main.h"
#include "bevt/error.h"
#include "bevt/log.h"
#include "bevt/strings.h"

namespace fs = std::filesystem;
using namespace bevt;
using namespace bevt::host;

namespace {
// The CPUs this process may run on (its affinity mask, which containers and taskset narrow), at least 1.
int usable_cores() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}
}  // namespace

int bevt::tools::run_main(int argc, char** argv) {
  // Errors carry the name the user typed (bevt-test calls this with argv[0] = "bevt-test").
  const std::string prog = argc > 0 ? fs::path(argv[0]).filename().string() : "bevt-run";
  CLI::App app{"bevt-run: BERT-style pre-training of video transformers, composed from plugins"};
  std::string experiment, help_plugin, log_level = "info", suite;
  std::vector<std::string> overrides, plugin_dirs;
  bool list = false, dry_run = false;
  std::string resume_from;
  tools::FamiliarFlags familiar;
  tools::TestFlags test;
  int nproc = 0;
  app.add_option("experiment", experiment, "experiment file, or plan file (a [plan] table: docs/plans.md)");
  app.add_option("--set", overrides, "override a key: --set a.b.c=value (repeatable; applied after base files)");
  app.add_option("--plugin-dir", plugin_dirs, "extra folder of plugin libraries (repeatable)");
  app.add_flag("--list-plugins", list, "list the plugins found and the libraries that failed to load");
  app.add_option("--help-plugin", help_plugin, "print a plugin's keys, types, defaults and docs");
  app.add_flag("--dry-run", dry_run, "print the resolved config and the composed components, then exit");
  app.add_option("--log-level", log_level, "debug | info | warn | error");
  app.add_option("--resume", resume_from,
                 "continue a run (bit-exact on CPU): no value = work_dir's checkpoints/last, else its newest "
                 "complete step_N; a value = that checkpoint folder (or that work_dir's last one)")
      ->expected(0, 1);
  tools::add_familiar_flags(app, familiar);
  tools::add_test_flags(app, test);
  app.add_option("--nproc", nproc,
                 "start N local worker processes (data parallel, as torchrun --nproc-per-node N would); "
                 "see docs/distributed.md");
  app.add_option("--suite", suite,
                 "run a folder of experiments as a plan (its suite.toml, else sorted *.toml), skipping finished ones");
  app.footer("Example:\n  bevt-run experiments/quickstart/finetune.toml --work-dir work_dirs/ft --seed 1 --amp "
             "--cfg-options optim.lr=1e-3\n\n" + modes_help());
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << prog << ": error: " << e.what() << " (see " << prog << " --help)" << std::endl;
    return 2;
  }

  const bool resume = app.count("--resume") > 0;
  // `bevt-run --resume EXP.toml`: the file is the experiment, not the checkpoint.
  if (experiment.empty() && resume_from.size() > 5 && resume_from.compare(resume_from.size() - 5, 5, ".toml") == 0)
    std::swap(experiment, resume_from);
  for (auto& o : tools::familiar_overrides(familiar)) overrides.push_back(std::move(o));

  // Plugin objects live inside this lambda's scope, so they are destroyed before exit handlers run.
  const int status = run_guarded(prog, [&]() -> int {
    auto level = parse_log_level(log_level);
    if (!level) throw UserError(fmt::format("--log-level '{}' is not debug, info, warn or error", log_level));
    set_log_level(*level);
    Registry registry = make_registry(plugin_dirs);
    if (list) {
      std::cout << list_plugins(registry);
      return 0;
    }
    if (!help_plugin.empty()) {
      std::cout << describe_plugin(registry, help_plugin);
      return 0;
    }
    if (!suite.empty() || orchestrate::is_plan_file(experiment)) {  // a plan: its stages are separate runs
      if (test.any())
        throw UserError(fmt::format("--test, --dump and --views test one experiment; {} is a plan (give one of its "
                                    "stages' experiment files)",
                                    suite.empty() ? experiment : suite));
      if ((!suite.empty() && !experiment.empty()) || resume || app.count("--nproc"))
        throw UserError("a plan (--suite DIR or PLAN.toml) resumes its stages itself: give one of them, without "
                        "--resume or --nproc");
      const orchestrate::PlanOptions opts{overrides, plugin_dirs, dry_run};
      return suite.empty() ? orchestrate::run_plan(experiment, opts) : orchestrate::run_suite(suite, opts);
    }
    if (experiment.empty()) throw UserError("no experiment file given (usage: bevt-run EXPERIMENT.toml [--set k=v])");

    Experiment exp = Experiment::load(experiment, overrides);  // every key checked, before any work
    // --amp and the test flags are overrides like any other: config.toml and the hash see them.
    const size_t given = overrides.size();
    if (auto amp = tools::amp_precision(familiar, exp.run.device, exp.run.precision == Precision::Fp32); !amp.empty())
      overrides.push_back("run.precision=" + amp);
    if (test.any()) {
      const bool has_test = std::any_of(exp.components.begin(), exp.components.end(),
                                        [](const ComponentTable& c) { return c.path == "data.test"; });
      for (auto& o : tools::test_overrides(test, has_test ? "data.test" : "data.val")) overrides.push_back(o);
      // A test of a training experiment's checkpoint writes beside its training records, not over them.
      if (!test.checkpoint.empty() && familiar.work_dir.empty())
        overrides.push_back(fmt::format("run.work_dir='{}'", (fs::path(exp.run.work_dir) / "test").string()));
    }
    if (overrides.size() != given) exp = Experiment::load(experiment, overrides);
    if (!test.dump.empty() && exp.run.mode != "test" && exp.run.mode != "probe")
      throw UserError(fmt::format("--dump: run.mode is '{}'; predictions are written by test and probe runs (add "
                                  "--test CHECKPOINT)",
                                  exp.run.mode));
    RunSettings& run = exp.run;
    const ModeSpec& mode = find_mode(run.mode, exp.where("run.mode"));
    if (app.count("--nproc")) {
      // The local launcher: bad input failed above, once, before any worker starts.
      if (dry_run) throw UserError("--nproc with --dry-run: drop one of them");
      std::vector<std::string> args;
      for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--nproc") {
          ++i;
          continue;
        }
        if (a.rfind("--nproc=", 0) == 0) continue;
        args.push_back(a);
      }
      return dist::launch_local(nproc, args);
    }
    // Under torchrun, Slurm or --nproc: join the world.
    auto launch = tools::launcher_allows_world(familiar) ? dist::launch_env() : std::nullopt;
    const bool join_alone = launch && launch->world_size == 1 && exp.dist.init_single;
    if (launch && (launch->world_size > 1 || join_alone) && !dry_run) {
      run.device = dist::rank_device(run.device_requested, run.device, *launch);
      log_info("rank {} (local rank {}) on {}", launch->rank, launch->local_rank, run.device);
      dist::init(*launch, exp.dist, run.device, exp.resolved_toml());
      if (!dist::is_main() && !app.count("--log-level")) set_log_level(LogLevel::Warn);
    }
    // OpenMP may start with one thread when OMP_NUM_THREADS is unset, so "0" means every core this process
    // may run on.
    if (run.threads > 0) {
      torch::set_num_threads(static_cast<int>(run.threads));
    } else if (!std::getenv("OMP_NUM_THREADS")) {
      torch::set_num_threads(usable_cores());
    }
    // Parameter initialisation, dropout and drop path draw from torch's generator: seed it from the
    // experiment before any component is built, so the same config and seed give the same numbers.
    torch::manual_seed(run.seed);
    train::set_float32_math(run.precision);
    // Building a large model or generating a synthetic dataset takes a while: say what is being built first.
    if (!dry_run) {
      std::string parts;
      for (const auto& c : exp.components) parts += fmt::format("{}{} ({})", parts.empty() ? "" : ", ", c.path, c.plugin);
      log_info("{}: building {} components: {}", experiment, exp.components.size(), parts);
    }
    Composition comp = compose(registry, exp, /*build=*/true);
    dist::seed_rank_generator(run.seed);  // ranks > 0: their own dropout / drop-path draws
    if (dry_run) {
      std::cout << "# resolved experiment: " << experiment << "\n" << exp.resolved_toml() << "\n\n" << describe(comp);
      return 0;
    }
    train::RunFolder folder;
    if (dist::is_main()) {  // only rank 0 writes into work_dir
      fs::create_directories(run.work_dir);
      folder = train::open_run_folder(run.work_dir);
      const std::string resolved = exp.resolved_toml() + "\n";
      for (const fs::path& dir : {fs::path(run.work_dir), fs::path(folder.dir)})
        train::write_text_atomic((dir / "config.toml").string(), resolved);
      set_log_file((fs::path(folder.dir) / "log.txt").string());
    }
    // The weight files this run starts from, as they are now: plans rerun it when they change.
    nlohmann::json inputs = nlohmann::json::object();
    if (dist::is_main()) {
      inputs = train::input_digests(exp.weight_candidates);
      train::write_text_atomic((fs::path(run.work_dir) / "inputs.json").string(), inputs.dump(2) + "\n");
    }
    log_info("experiment {} → {} (mode {}, device {}, seed {}, {} CPU threads; records in {})", experiment,
             run.work_dir, run.mode, run.device, run.seed, torch::get_num_threads(),
             folder.dir.empty() ? "rank 0's work_dir" : fs::relative(folder.dir, run.work_dir).string());
    int rc = 0;
    try {
      rc = mode.run(RunContext{exp, exp.run, comp, registry, resume, resume_from, inputs, folder.dir, folder.previous,
                               test.dump});
    } catch (const std::exception& e) {
      dist::report_failure(first_line(e.what()));  // the other ranks exit naming this one
      throw;
    }
    dist::finish();
    return rc;
  });
  // A failed rank leaves without tearing down process groups whose peers may be gone.
  if (status != 0 && dist::active()) {
    std::fflush(nullptr);
    std::_Exit(status);
  }
  return status;
}
