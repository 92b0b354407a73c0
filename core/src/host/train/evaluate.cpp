#include "evaluate.h"

#include <fmt/format.h>

#include <algorithm>
#include <memory>

#include "bevt/error.h"
#include "bevt/progress.h"
#include "bevt/rng.h"
#include "host/dist/dist.h"
#include "sample_seed.h"

namespace bevt::host::train {

const char* probe_name(Probe p) {
  switch (p) {
    case Probe::None: return "full";
    case Probe::SingleFrame: return "single_frame";
    case Probe::Shuffled: return "shuffled";
  }
  return "?";
}

nlohmann::json EvalResult::to_json(const std::vector<std::string>& names) const {
  nlohmann::json j{{"top1", top1}, {"top5", top5}, {"mean_class", mean_class}, {"samples", samples}};
  nlohmann::json pc = nlohmann::json::object();
  for (size_t c = 0; c < per_class.size(); ++c) pc[c < names.size() ? names[c] : std::to_string(c)] = per_class[c];
  j["per_class"] = pc;
  j["per_family"] = per_family;
  j["confusion"] = confusion;
  return j;
}

torch::Tensor class_probabilities(TrainModel& model, const torch::Tensor& input) {
  auto head = model.heads.find("cls");
  if (head == model.heads.end())
    throw UserError("classification needs a [model.heads.cls] head (plugin = \"i3d\")");
  const bool views = input.dim() == 6;
  torch::Tensor x = views ? input.flatten(0, 1) : input;
  Features f = x.dim() == 4 ? model.backbone->forward_image(x) : model.backbone->forward_video(x);
  torch::Tensor p = torch::softmax(head->second->forward(f, *model.backbone), -1);
  if (views) p = p.reshape({input.size(0), input.size(1), -1}).mean(1);  // mmaction average_clips='prob'
  return p;
}

namespace {
torch::Tensor apply_probe(const torch::Tensor& input, Probe probe, const std::vector<int64_t>& indices, uint64_t seed) {
  if (probe == Probe::None) return input;
  // Time is the third-from-last... dimension -3 of [.., 3, T, H, W].
  const int64_t tdim = input.dim() - 3;
  const int64_t T = input.size(tdim);
  if (probe == Probe::SingleFrame) {
    torch::Tensor mid = input.narrow(tdim, T / 2, 1);
    std::vector<int64_t> rep(static_cast<size_t>(input.dim()), 1);
    rep[static_cast<size_t>(tdim)] = T;
    return mid.repeat(rep);
  }
  std::vector<torch::Tensor> out;
  for (int64_t i = 0; i < input.size(0); ++i) {
    Rng rng(sample_seed(seed, "probe/shuffle", 0, indices[static_cast<size_t>(i)]));
    std::vector<int64_t> perm(static_cast<size_t>(T));
    for (int64_t t = 0; t < T; ++t) perm[static_cast<size_t>(t)] = t;
    for (int64_t t = T - 1; t > 0; --t) std::swap(perm[static_cast<size_t>(t)], perm[static_cast<size_t>(rng.randint(0, t))]);
    out.push_back(input[i].index_select(tdim - 1, torch::tensor(perm).to(input.device())));
  }
  return torch::stack(out);
}
// Every rank's predictions on every rank, in dataset order. Each rank fills the rows of the samples it
// evaluated in dataset-sized tables that are summed over ranks; a sample evaluated twice (a bad sample's
// replacement) is divided by its count, which also undoes the sum for its id's bytes.
std::vector<Prediction> gather_predictions(const std::vector<Prediction>& local, int64_t classes) {
  double top = -1, id_len = 0;
  for (const auto& p : local) {
    top = std::max(top, static_cast<double>(p.index));
    id_len = std::max(id_len, static_cast<double>(p.id.size()));
  }
  const int64_t n = static_cast<int64_t>(dist::max_across_ranks(top)) + 1;
  const int64_t len = static_cast<int64_t>(dist::max_across_ranks(id_len));
  torch::Tensor probs = torch::zeros({n, classes}, torch::kFloat64);
  torch::Tensor ints = torch::zeros({n, 3 + len}, torch::kInt64);  // count, label, pred, id bytes
  auto pa = probs.accessor<double, 2>();
  auto ia = ints.accessor<int64_t, 2>();
  for (const auto& p : local) {
    ia[p.index][0] += 1;
    ia[p.index][1] += p.label;
    ia[p.index][2] += p.pred;
    for (size_t k = 0; k < p.id.size(); ++k) ia[p.index][3 + static_cast<int64_t>(k)] += static_cast<unsigned char>(p.id[k]);
    for (int64_t c = 0; c < classes; ++c) pa[p.index][c] += p.probs[static_cast<size_t>(c)];
  }
  dist::all_reduce_sum(probs);
  dist::all_reduce_sum(ints);
  pa = probs.accessor<double, 2>();
  ia = ints.accessor<int64_t, 2>();
  std::vector<Prediction> out;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t count = ia[i][0];
    if (count == 0) continue;
    Prediction p;
    p.index = i;
    p.label = ia[i][1] / count;
    p.pred = ia[i][2] / count;
    for (int64_t k = 0; k < len && ia[i][3 + k] != 0; ++k) p.id += static_cast<char>(ia[i][3 + k] / count);
    for (int64_t c = 0; c < classes; ++c) p.probs.push_back(static_cast<float>(pa[i][c] / static_cast<double>(count)));
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace

EvalResult evaluate(TrainModel& model, Loader& loader, const std::vector<std::string>& names,
                    const torch::Device& device, Probe probe, uint64_t seed, std::vector<Prediction>* predictions,
                    const std::string& label) {
  torch::NoGradGuard no_grad;
  model.train(false);
  const int64_t C = static_cast<int64_t>(names.size());
  EvalResult r;
  r.confusion.assign(static_cast<size_t>(C), std::vector<int64_t>(static_cast<size_t>(C), 0));
  int64_t top1 = 0, top5 = 0;
  loader.start_epoch(0, 0);
  std::unique_ptr<Progress> progress;
  if (dist::is_main()) progress = std::make_unique<Progress>(label, loader.batches_per_epoch());
  int64_t batches = 0;
  std::vector<Prediction> local;
  Batch b;
  while (loader.next(b)) {
    // Images (supervised image pre-training) are evaluated as they are; the probes need clips.
    if (b.input.dim() < 5 && (probe != Probe::None || b.input.dim() != 4))
      throw UserError("the probes and video evaluation need clips, the dataset gives images");
    if (b.input.dim() == 6) r.views = b.input.size(1);
    torch::Tensor x = apply_probe(b.input, probe, b.indices, seed).to(device);
    torch::Tensor p = class_probabilities(model, x).cpu();
    if (p.size(1) != C)
      throw UserError(fmt::format("the classifier has {} outputs but the dataset has {} classes "
                                  "(set model.heads.cls.num_classes)",
                                  p.size(1), C));
    torch::Tensor pred = p.argmax(1);
    torch::Tensor pf = predictions ? p.to(torch::kFloat32).contiguous() : torch::Tensor();
    torch::Tensor k5 = std::get<1>(p.topk(std::min<int64_t>(5, C), 1));
    for (int64_t i = 0; i < p.size(0); ++i) {
      int64_t y = b.label[i].item<int64_t>(), yhat = pred[i].item<int64_t>();
      r.confusion[static_cast<size_t>(y)][static_cast<size_t>(yhat)] += 1;
      top1 += y == yhat;
      top5 += (k5[i] == y).any().item<bool>();
      ++r.samples;
      if (predictions) {
        Prediction pr{b.indices[static_cast<size_t>(i)], b.ids[static_cast<size_t>(i)], y, yhat, {}};
        const float* row = pf[i].data_ptr<float>();
        pr.probs.assign(row, row + C);
        local.push_back(std::move(pr));
      }
    }
    if (progress) progress->update(++batches);
  }
  if (progress) progress->finish();
  if (predictions) {
    if (dist::active()) {
      *predictions = gather_predictions(local, C);
    } else {
      std::sort(local.begin(), local.end(), [](const Prediction& x, const Prediction& y) { return x.index < y.index; });
      *predictions = std::move(local);
    }
  }
  if (dist::active()) {
    // Each rank evaluated its shard: add up the counts (confusion matrix, top-1/5 hits, samples).
    torch::Tensor counts = torch::zeros({C * C + 3}, torch::kInt64);
    auto a = counts.accessor<int64_t, 1>();
    for (int64_t y = 0; y < C; ++y)
      for (int64_t k = 0; k < C; ++k) a[y * C + k] = r.confusion[static_cast<size_t>(y)][static_cast<size_t>(k)];
    a[C * C] = top1;
    a[C * C + 1] = top5;
    a[C * C + 2] = r.samples;
    dist::all_reduce_sum(counts);
    a = counts.accessor<int64_t, 1>();
    for (int64_t y = 0; y < C; ++y)
      for (int64_t k = 0; k < C; ++k) r.confusion[static_cast<size_t>(y)][static_cast<size_t>(k)] = a[y * C + k];
    top1 = a[C * C];
    top5 = a[C * C + 1];
    r.samples = a[C * C + 2];
  }
  if (r.samples == 0) throw UserError("the evaluation dataset is empty");
  r.top1 = static_cast<double>(top1) / static_cast<double>(r.samples);
  r.top5 = static_cast<double>(top5) / static_cast<double>(r.samples);
  std::map<std::string, std::pair<int64_t, int64_t>> fam;
  for (int64_t c = 0; c < C; ++c) {
    int64_t n = 0;
    for (auto v : r.confusion[static_cast<size_t>(c)]) n += v;
    int64_t ok = r.confusion[static_cast<size_t>(c)][static_cast<size_t>(c)];
    r.per_class.push_back(n ? static_cast<double>(ok) / static_cast<double>(n) : -1.0);
    const std::string& name = names[static_cast<size_t>(c)];
    auto slash = name.find('/');
    if (slash != std::string::npos) {
      auto& f = fam[name.substr(0, slash)];
      f.first += ok;
      f.second += n;
    }
  }
  for (const auto& [k, v] : fam)
    if (v.second) r.per_family[k] = static_cast<double>(v.first) / static_cast<double>(v.second);
  double sum = 0;
  int64_t present = 0;
  for (double a : r.per_class)
    if (a >= 0) {
      sum += a;
      ++present;
    }
  r.mean_class = present ? sum / static_cast<double>(present) : 0.0;
  return r;
}

}  // namespace bevt::host::train
