#include "step_metrics.h"

#include <fmt/format.h>

#include "bevt/error.h"
#include "bevt/progress.h"
#include "checkpoint.h"
#include "host/dist/dist.h"

namespace bevt::host::train {

namespace {

class JsonlSink : public MetricsSink {
 public:
  JsonlSink(const std::string& run_dir, const std::string& resume_source, int64_t start)
      : log_(run_dir, resume_source, start) {}
  void write(const nlohmann::json& rec, const std::string&) override { log_.write(rec); }

 private:
  MetricsLog log_;
};

class ProgressSink : public MetricsSink {
 public:
  ProgressSink(const std::string& label, int64_t total, int64_t start) : progress_(label, total, 10.0, start) {}
  void write(const nlohmann::json& rec, const std::string& line) override {
    if (!line.empty()) progress_.update(rec.at("step").get<int64_t>(), line);  // evaluations have no line
  }
  void step_done(int64_t done) override { progress_.update(done); }
  void finish() override { progress_.finish(); }

 private:
  Progress progress_;
};

void accumulate(std::map<std::string, torch::Tensor>& into, const std::string& k, const torch::Tensor& v) {
  auto it = into.find(k);
  if (it == into.end())
    into.emplace(k, v);
  else
    it->second = it->second + v;
}

}  // namespace

std::unique_ptr<MetricsSink> jsonl_sink(const std::string& run_dir, const std::string& resume_source,
                                        int64_t start_step) {
  return std::make_unique<JsonlSink>(run_dir, resume_source, start_step);
}

std::unique_ptr<MetricsSink> progress_sink(const std::string& label, int64_t total_steps, int64_t start_step) {
  return std::make_unique<ProgressSink>(label, total_steps, start_step);
}

void StepMetrics::add_micro(const std::map<std::string, torch::Tensor>& terms, double scale, int64_t step_number) {
  for (const auto& [k, v] : terms) {
    accumulate(step_t_, k, v.detach().to(torch::kFloat64) / scale);
    if (k == "loss" || k.rfind("loss_", 0) == 0) {
      auto& fb = first_bad_[k];
      if (!fb.defined()) fb = torch::zeros({}, v.options().dtype(torch::kInt64));
      fb = torch::where(fb.eq(0) & ~torch::isfinite(v.detach()), torch::full_like(fb, step_number), fb);
    }
  }
}

void StepMetrics::end_micro_steps() {
  for (const auto& [k, v] : step_t_) accumulate(window_t_, k, v);
  step_t_.clear();
}

void StepMetrics::add_device(const std::string& key, const torch::Tensor& value) { accumulate(window_t_, key, value); }

void StepMetrics::add_host(const std::string& key, double value) { window_[key] += value; }

void StepMetrics::end_step(double step_seconds) {
  step_time_ += step_seconds;
  ++steps_;
}

void StepMetrics::check_finite() const {
  for (const auto& [k, t] : first_bad_) {
    const int64_t bad = t.item<int64_t>();
    if (bad > 0)
      throw RunError(fmt::format("step {}: {} is not finite (diverged); the last good checkpoint is kept in "
                                 "{}/checkpoints (lower optim.lr or raise optim.warmup_steps)",
                                 bad, k, work_dir_));
  }
}

std::map<std::string, double> StepMetrics::flush(double loss_scale) {
  std::map<std::string, double> mean;
  if (steps_ == 0) return mean;
  for (const auto& [k, v] : window_t_) window_[k] += v.item<double>();
  if (loss_scale > 0) window_["loss_scale"] = loss_scale * static_cast<double>(steps_);
  const double n = static_cast<double>(steps_);
  for (const auto& [k, v] : window_) mean[k] = v / n;
  mean["step_time"] = step_time_ / n;
  dist::average(mean);  // every rank's losses and times, averaged
  last_step_time_ = mean["step_time"];
  window_t_.clear();
  window_.clear();
  steps_ = 0;
  step_time_ = 0;
  return mean;
}

}  // namespace bevt::host::train
