// run.mode = "token_probe": what a tokenizer's targets carry about the classes (issue #18). Each clip's
// tokenizer views become three feature vectors; a linear probe (ridge_probe.h) is fitted on [data.train] and
// tested on [data.test] (or [data.val]), top-1 overall and per class family:
//   bag    — how often each token occurs (one-hot ids, or regression targets, averaged over cells and frames):
//            position- and order-free, so it can only tell the classes by what the tokens themselves encode;
//   grid   — every cell of every frame in order (one-hot ids or targets, concatenated): all the targets hold,
//            position and time included;
//   colour — each cell's mean colour in every frame, the tokenizer ignored: what a code of colour and position
//            alone would give. Targets that encode shape beat it on the appearance classes.
// Nothing is trained but the probe, and the probe has no seed: the same tokenizer and data give the same table.
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "bevt/error.h"
#include "bevt/log.h"
#include "bevt/tokenizer.h"
#include "host/dist/dist.h"
#include "ridge_probe.h"
#include "runners.h"
#include "streams.h"

namespace bevt::host::train {

namespace {

const std::vector<std::pair<std::string, std::string>> kFeatureSets = {
    {"bag", "token frequencies (cells and frames averaged)"},
    {"grid", "every cell of every frame"},
    {"colour", "mean colour per cell and frame (no tokenizer)"},
};

using Features = std::map<std::string, torch::Tensor>;  // feature set → [B, D] float32 on the CPU

Features batch_features(Tokenizer& tok, torch::Tensor views, const torch::Device& device) {
  if (views.dim() == 4) views = views.unsqueeze(1);  // images: one frame
  const int64_t B = views.size(0), T = views.size(1);
  const torch::Tensor flat = views.flatten(0, 1).to(device);
  torch::Tensor cells;  // [B*T, cells, K]
  if (tok.target_dim() > 0) {
    cells = tok.targets(flat).flatten(2).transpose(1, 2);
  } else {
    cells = torch::one_hot(tok.tokenize(flat).flatten(1), tok.vocab_size()).to(torch::kFloat32);
  }
  cells = cells.to(torch::kCPU, torch::kFloat32).reshape({B, T, cells.size(1), cells.size(2)});
  const int64_t gh = views.size(3) / tok.downsample(), gw = views.size(4) / tok.downsample();
  const torch::Tensor colour = torch::adaptive_avg_pool2d(flat.to(torch::kCPU, torch::kFloat32), {gh, gw});
  return {{"bag", cells.mean({1, 2})}, {"grid", cells.flatten(1)}, {"colour", colour.reshape({B, -1})}};
}

torch::Tensor views_of(const Batch& b, const std::string& slot) {
  if (!b.tokenizer_view.defined())
    throw UserError(fmt::format("[{}] gives no tokenizer view: set its tokenizer_size to the tokenizer's input_size",
                                slot));
  return b.tokenizer_view;
}

std::string family_of(const std::string& class_name) {
  const auto slash = class_name.find('/');
  return slash == std::string::npos ? std::string() : class_name.substr(0, slash);
}

}  // namespace

int run_token_probe(const RunContext& ctx) {
  if (dist::active())
    throw UserError("run.mode = 'token_probe' fits one probe on every sample: run it in one process (no --nproc)");
  auto tok = ctx.composition.get<Tokenizer>("tokenizer");
  const torch::Device device(ctx.run.device);
  tok->to(device);
  tok->eval();
  if (!tok->has_trained_weights())
    log_warn("the tokenizer has no trained weights (set its weights key): the probe measures a random tokenizer");
  auto train_ds = ctx.composition.get<Dataset>("data.train");
  std::string test_slot = "data.test";
  auto test_ds = ctx.composition.get<Dataset>(test_slot);
  if (!test_ds) test_ds = ctx.composition.get<Dataset>(test_slot = "data.val");
  const std::vector<std::string> names = train_ds->class_names();
  if (test_ds->class_names() != names)
    throw UserError(fmt::format("{}: [{}] and [data.train] must list the same classes in the same order",
                                ctx.exp.where(test_slot), test_slot));
  const int64_t C = static_cast<int64_t>(names.size());
  torch::NoGradGuard no_grad;
  const int64_t batch = ctx.exp.loader.eval_batch_size;

  // Training features, all of them: the probe is fitted in closed form.
  std::map<std::string, std::vector<torch::Tensor>> parts;
  std::vector<torch::Tensor> label_parts;
  {
    auto s = make_stream(ctx, "train", train_ds, batch, false, 1);
    s->loader->start_epoch(0, 0);
    Batch b;
    while (s->loader->next(b)) {
      for (auto& [k, v] : batch_features(*tok, views_of(b, "data.train"), device)) parts[k].push_back(v);
      label_parts.push_back(b.label);
    }
  }
  if (label_parts.empty()) throw UserError(fmt::format("{}: the dataset is empty", ctx.exp.where("data.train")));
  const torch::Tensor train_labels = torch::cat(label_parts);
  std::map<std::string, RidgeProbe> probes;
  for (const auto& [name, summary] : kFeatureSets) {
    const torch::Tensor x = torch::cat(parts.at(name));
    parts.erase(name);
    probes[name] = fit_ridge_probe(x, train_labels, C);
    log_info("{} ({} dims): ridge {:.3g}, leave-one-out top-1 {:.4f} on {} training samples", name, x.size(1),
             probes[name].lambda, probes[name].loo_top1, x.size(0));
  }

  // Test: predictions batch by batch (the test features are never all held).
  std::map<std::string, std::vector<std::vector<int64_t>>> confusion;
  for (const auto& fs : kFeatureSets)
    confusion[fs.first].assign(static_cast<size_t>(C), std::vector<int64_t>(static_cast<size_t>(C), 0));
  {
    auto s = make_stream(ctx, "test", test_ds, batch, false, 3);
    s->loader->start_epoch(0, 0);
    Batch b;
    while (s->loader->next(b)) {
      const torch::Tensor y = b.label.to(torch::kLong);
      for (auto& [name, x] : batch_features(*tok, views_of(b, test_slot), device)) {
        const RidgeProbe& p = probes.at(name);
        if (x.size(1) != p.mean.size(0))
          throw UserError(fmt::format("{}: its tokenizer views give {} {} features where [data.train]'s give {}: "
                                      "use the same clip_len and tokenizer_size in both",
                                      ctx.exp.where(test_slot), x.size(1), name, p.mean.size(0)));
        const torch::Tensor pred = p.predict(x);
        for (int64_t i = 0; i < y.size(0); ++i)
          ++confusion[name][static_cast<size_t>(y[i].item<int64_t>())][static_cast<size_t>(pred[i].item<int64_t>())];
      }
    }
  }

  std::vector<std::string> families;
  for (const auto& n : names)
    if (auto f = family_of(n); !f.empty() && std::find(families.begin(), families.end(), f) == families.end())
      families.push_back(f);
  nlohmann::json results{{"mode", "token_probe"},
                         {"classes", names},
                         {"chance", 1.0 / static_cast<double>(C)},
                         {"train_samples", train_labels.size(0)},
                         {"vocab_or_target_dim", tok->target_dim() > 0 ? tok->target_dim() : tok->vocab_size()},
                         {"targets", tok->target_dim() > 0 ? "regression" : "token ids"}};
  std::string table = "| features | dims | ridge | leave-one-out top-1 | test top-1";
  for (const auto& f : families) table += " | " + f;
  table += " |\n|---|---:|---:|---:|---:";
  for (size_t i = 0; i < families.size(); ++i) table += "|---:";
  table += "|\n";
  for (const auto& [name, summary] : kFeatureSets) {
    const auto& m = confusion.at(name);
    int64_t ok = 0, total = 0;
    std::map<std::string, std::pair<int64_t, int64_t>> fam;
    for (int64_t c = 0; c < C; ++c) {
      int64_t n = 0;
      for (auto v : m[static_cast<size_t>(c)]) n += v;
      const int64_t hit = m[static_cast<size_t>(c)][static_cast<size_t>(c)];
      ok += hit;
      total += n;
      if (auto f = family_of(names[static_cast<size_t>(c)]); !f.empty()) {
        fam[f].first += hit;
        fam[f].second += n;
      }
    }
    if (total == 0) throw UserError(fmt::format("{}: the dataset is empty", ctx.exp.where(test_slot)));
    const RidgeProbe& p = probes.at(name);
    const int64_t dims = p.mean.size(0);  // the test batches were checked against it
    nlohmann::json j{{"summary", summary},   {"dims", dims},         {"ridge", p.lambda},
                     {"loo_top1", p.loo_top1}, {"ridges_tried", p.lambdas}, {"loo_top1_per_ridge", p.loo},
                     {"confusion", m},        {"samples", total}};
    j["top1"] = static_cast<double>(ok) / static_cast<double>(total);
    table += fmt::format("| {} | {} | {:.3g} | {:.1f} | {:.1f}", name, dims, p.lambda, 100 * p.loo_top1,
                         100 * j["top1"].get<double>());
    for (const auto& f : families) {
      const auto& [hit, n] = fam[f];
      const double acc = n ? static_cast<double>(hit) / static_cast<double>(n) : 0.0;
      j["per_family"][f] = acc;
      table += fmt::format(" | {:.1f}", 100 * acc);
    }
    table += " |\n";
    results["features"][name] = j;
  }
  table += fmt::format("\nTop-1 in %; chance {:.1f}%. {} training, {} test samples.\n", 100.0 / static_cast<double>(C),
                       train_labels.size(0), results["features"]["bag"]["samples"].get<int64_t>());
  results["table"] = table;
  std::printf("\n%s\n", table.c_str());
  write_results(ctx, results);
  return 0;
}

}  // namespace bevt::host::train
