// bevt-forward: runs one golden fixture (tests/fixtures; DESIGN.md, fixed conventions). It builds the
// plugin that reproduces the fixture's official module (PluginInfo::official_names) from the official
// constructor arguments, loads the official weights and input, and writes every output key the fixture
// lists. With --check it also compares against the fixture's output.safetensors (relative L2 error per key,
// token ids exactly) and exits 1 when a key is off. The fixture of one pre-training step
// (module BEVTMultiSource.train_step) runs the trainer's own step instead (bevt_forward_pretrain.cpp); its
// gradients (grad.*) are held to --grad-rtol. --device runs it on another device (cuda), --precision bf16
// under autocast there (then ids may differ in a stated fraction, --id-tolerance); --json writes the errors.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "../host/command_line.h"
#include "host/train/amp.h"
#include "bevt/atomic_file.h"
#include "bevt/backbone.h"
#include "bevt/config.h"
#include "bevt/error.h"
#include "bevt/head.h"
#include "bevt/safetensors.h"
#include "bevt/strings.h"
#include "bevt/tokenizer.h"
#include "bevt_forward.h"

namespace fs = std::filesystem;
using namespace bevt;
using namespace bevt::host;

namespace bevt::forward {

const LoadedPlugin& plugin_for_module(const Registry& reg, const std::string& module, const std::string& where) {
  std::vector<std::string> known;
  for (const auto& p : reg.plugins()) {
    for (const auto& n : p.info.official_names) {
      if (n == module) return p;
      known.push_back(n);
    }
  }
  throw UserError(fmt::format("{}: no plugin reproduces official module '{}' (known: {}){}", where, module,
                              known.empty() ? "none" : join(known), did_you_mean(module, known)));
}

}  // namespace bevt::forward

namespace {

using bevt::forward::plugin_for_module;

// The module of the one pre-training step fixture; its outputs are a step's, not a module's forward.
constexpr const char* kPretrainStep = "BEVTMultiSource.train_step";

struct RunOptions {
  torch::Device device = torch::kCPU;
  Precision precision = Precision::Fp32;
};

TensorMap run_fixture(const Registry& reg, const std::string& dir, std::vector<std::string>& missing,
                      const RunOptions& ro) {
  std::string cfg_path = (fs::path(dir) / "config.toml").string();
  Config fixture = Config::from_file(cfg_path);
  std::string module = fixture.get_string("module");
  Config output_spec = fixture.get_table("output");
  if (module == kPretrainStep) {
    int64_t gradients = 0;
    TensorMap out = bevt::forward::run_pretrain_step_fixture(reg, dir, ro.device, ro.precision, gradients);
    for (const auto& key : output_spec.keys()) {
      if (key == "gradients") continue;  // a count, checked below
      if (!out.count(key)) missing.push_back(key);
    }
    if (output_spec.has("gradients") && gradients != output_spec.get_int("gradients"))
      throw RunError(fmt::format("{}: {} parameters received a gradient, the official step gives {}",
                                 output_spec.where("gradients"), gradients, output_spec.get_int("gradients")));
    return out;
  }
  const LoadedPlugin& plugin = plugin_for_module(reg, module, fixture.where("module"));
  Config args = fixture.has("model_args") ? fixture.get_table("model_args").deep_copy() : Config();
  Config input_spec = fixture.get_table("input");

  args.validate(plugin.info.keys, {});
  BuildContext ctx;
  auto object = plugin.info.factory(args, ctx);

  TensorMap weights = load_safetensors((fs::path(dir) / "weights.safetensors").string()).tensors;
  TensorMap inputs = load_safetensors((fs::path(dir) / "input.safetensors").string()).tensors;
  auto input_it = inputs.find("input");
  if (input_it == inputs.end()) throw UserError(fmt::format("{}/input.safetensors: no tensor 'input'", dir));
  torch::Tensor input = input_it->second.to(torch::kFloat32).to(ro.device);
  torch::Tensor mask;
  if (input_spec.has("mask_key")) {
    auto m = inputs.find(input_spec.get_string("mask_key"));
    if (m == inputs.end())
      throw UserError(fmt::format("{}/input.safetensors: no mask tensor '{}'", dir, input_spec.get_string("mask_key")));
    mask = m->second.to(torch::kBool).to(ro.device);
  }

  LoadOptions lo;
  lo.source = (fs::path(dir) / "weights.safetensors").string();
  TensorMap produced;
  torch::NoGradGuard no_grad;
  train::AutocastGuard autocast(ro.precision, ro.device);
  switch (plugin.info.kind) {
    case Kind::Backbone: {
      auto bb = component_cast<Backbone>(object);
      bb->load_weights(weights, lo);
      bb->to(ro.device);
      bb->eval();
      bool is_img = input_spec.get_bool("is_img", false);
      Features f = is_img ? bb->forward_image(input, mask) : bb->forward_video(input, mask);
      for (const auto& [name, t] : f.items()) produced[name] = t;
      // Outputs the official module computes with its decoders (BEVT keeps them inside the backbone class;
      // bevt keeps them in head plugins): a head declaring "<module>.image" / "<module>.video" produces "final".
      std::string companion = module + (is_img ? ".image" : ".video");
      for (const auto& p : reg.plugins()) {
        if (p.info.kind != Kind::Head) continue;
        if (std::find(p.info.official_names.begin(), p.info.official_names.end(), companion) ==
            p.info.official_names.end())
          continue;
        Config head_cfg;
        head_cfg.validate(p.info.keys, {});
        BuildContext hctx;
        hctx.backbone = bb->spec();
        auto head = component_cast<Head>(p.info.factory(head_cfg, hctx));
        LoadOptions hl = lo;
        hl.strict = false;  // the fixture's weights hold the backbone's tensors too
        LoadReport rep = head->load_weights(weights, hl);
        if (!rep.missing.empty() || !rep.mismatched.empty())
          throw UserError(fmt::format("{}: head '{}' does not fit: {}", lo.source, p.info.name, rep.summary()));
        head->to(ro.device);
        head->eval();
        produced["final"] = head->forward(f, *bb);
        break;
      }
      break;
    }
    case Kind::Tokenizer: {
      auto tok = component_cast<Tokenizer>(object);
      tok->load_weights(weights, lo);
      tok->to(ro.device);
      tok->eval();
      torch::Tensor mapped = tok->prepare(input);
      torch::Tensor logits = tok->logits(mapped);
      produced["mapped_input"] = mapped;
      produced["logits"] = logits;
      produced["tokens"] = logits.argmax(1).to(torch::kInt64);
      break;
    }
    default:
      throw UserError(fmt::format("{}: fixtures of {} plugins are not supported", cfg_path, kind_name(plugin.info.kind)));
  }
  TensorMap out;
  for (const auto& key : output_spec.keys()) {
    auto it = produced.find(key);
    if (it == produced.end()) {
      missing.push_back(key);
      continue;
    }
    // Compared on the host in float32 (a bf16 run's outputs are widened, not the reference narrowed).
    torch::Tensor t = it->second.to(torch::kCPU);
    out[key] = (t.is_floating_point() ? t.to(torch::kFloat32) : t).contiguous();
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bevt-forward: run a golden fixture through the plugin that reproduces its official module"};
  std::string fixture, output;
  std::vector<std::string> plugin_dirs, allow_missing;
  bool check = false;
  double rtol = 1e-4, grad_rtol = 1e-3, id_tolerance = 0;
  std::string device = "cpu", precision = "fp32", json_path;
  app.add_option("--fixture", fixture, "fixture folder (config.toml, weights/input/output.safetensors)")->required();
  app.add_option("--output", output, "where to write the outputs (safetensors)")->required();
  app.add_option("--plugin-dir", plugin_dirs, "extra folder of plugin libraries (repeatable)");
  app.add_flag("--check", check, "compare with the fixture's output.safetensors; exit 1 when a key is off");
  app.add_option("--rtol", rtol, "relative L2 error allowed per key with --check (default 1e-4)");
  app.add_option("--grad-rtol", grad_rtol,
                 "relative L2 error allowed per gradient (grad.* keys) with --check (default 1e-3)");
  app.add_option("--id-tolerance", id_tolerance,
                 "fraction of token ids allowed to differ with --check (default 0: identical; bf16 flips a few)");
  app.add_option("--device", device, "cpu (default), cuda, cuda:N, meta");
  app.add_option("--precision", precision, "fp32 (default; IEEE float32 on CUDA too), tf32, or bf16/fp16: autocast on --device");
  app.add_option("--json", json_path, "write each key's error (and pass/fail) to this JSON file");
  app.add_option("--allow-missing", allow_missing,
                 "output keys this build may not produce (named, never silent), e.g. decoder outputs");
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "bevt-forward: error: " << e.what() << " (see bevt-forward --help)" << std::endl;
    return 2;
  }
  return run_guarded("bevt-forward", [&]() -> int {
    Registry reg = make_registry(plugin_dirs);
    RunOptions ro;
    try {
      ro.device = torch::Device(device);
    } catch (const std::exception&) {
      throw UserError(fmt::format("--device '{}' is not a device (cpu, cuda, cuda:N)", device));
    }
    if (ro.device.is_cuda() && !torch::cuda::is_available())
      throw UserError(fmt::format("--device {}: this machine has no CUDA device", device));
    ro.precision = parse_precision(precision, ro.device.str(), "--precision");
    train::set_float32_math(ro.precision);
    std::vector<std::string> missing;
    TensorMap out = run_fixture(reg, fixture, missing, ro);
    nlohmann::json report{{"fixture", fixture}, {"device", device}, {"precision", precision}, {"rtol", rtol}};
    for (const auto& m : missing) {
      if (std::find(allow_missing.begin(), allow_missing.end(), m) == allow_missing.end())
        throw RunError(fmt::format("{}: output key '{}' was not produced (pass --allow-missing {} if this build is "
                                   "known not to produce it)",
                                   fixture, m, m));
      std::cout << fmt::format("{:<14} not produced (allowed by --allow-missing)\n", m);
    }
    save_safetensors(output, out, {{"fixture", fixture}});
    if (!check) return 0;
    TensorMap ref = load_safetensors((fs::path(fixture) / "output.safetensors").string()).tensors;
    bool ok = true;
    // Every reference key must have been produced (or be allowed missing), gradients included.
    for (const auto& [name, r] : ref) {
      if (out.count(name) || std::find(missing.begin(), missing.end(), name) != missing.end()) continue;
      std::cout << fmt::format("{:<14} FAIL not produced\n", name);
      report["keys"][name] = {{"produced", false}, {"pass", false}};
      ok = false;
    }
    for (const auto& [name, t] : out) {
      auto it = ref.find(name);
      if (it == ref.end()) throw UserError(fmt::format("{}/output.safetensors: no reference for '{}'", fixture, name));
      const torch::Tensor& r = it->second;
      if (t.sizes() != r.sizes()) {
        std::cout << fmt::format("{:<14} FAIL shape [{}] vs reference [{}]\n", name, fmt::join(t.sizes(), ","),
                                 fmt::join(r.sizes(), ","));
        ok = false;
        continue;
      }
      if (!r.is_floating_point()) {
        int64_t diff = t.to(r.scalar_type()).ne(r).sum().item<int64_t>();
        const bool pass = static_cast<double>(diff) <= id_tolerance * static_cast<double>(r.numel());
        std::cout << fmt::format("{:<14} {} {} of {} ids differ\n", name, pass ? "ok  " : "FAIL", diff, r.numel());
        report["keys"][name] = {{"ids_differ", diff}, {"ids", r.numel()}, {"pass", pass}};
        ok = ok && pass;
        continue;
      }
      double num = (t.to(torch::kFloat64) - r.to(torch::kFloat64)).norm().item<double>();
      double den = r.to(torch::kFloat64).norm().item<double>();
      double rel = den > 0 ? num / den : num;
      const double limit = name.rfind("grad.", 0) == 0 ? grad_rtol : rtol;
      bool pass = rel <= limit;
      std::cout << fmt::format("{:<14} {} rel_err {:.3e} (limit {:.0e})\n", name, pass ? "ok  " : "FAIL", rel, limit);
      report["keys"][name] = {{"rel_err", rel}, {"pass", pass}};
      ok = ok && pass;
    }
    report["pass"] = ok;
    if (!json_path.empty()) {
      const std::string text = report.dump(2) + "\n";
      AtomicFile f(json_path);
      f.write(text.data(), text.size());
      f.commit();
    }
    return ok ? 0 : 1;
  });
}
