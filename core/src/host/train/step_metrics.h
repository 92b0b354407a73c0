// The loop's logged numbers. Terms stay on the device (float64 sums) and reach the host only at logging steps
// and before checkpoints, so a step never waits for the device. A non-finite loss term is remembered as the
// first step that had it and reported at the next of those points, before anything is written. A logging
// window's means (averaged over ranks) go to every sink: metrics.jsonl, the progress line (and any other sink
// added to the list).
#pragma once

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bevt/torch.h"

namespace bevt::host::train {

// Where a logging window's record goes.
class MetricsSink {
 public:
  virtual ~MetricsSink() = default;
  // rec: step, lr, step_time, peak_mem_mb, every mean term, epoch_<stream>; or an evaluation's metrics with
  // its step. `line`: the human summary ("" for evaluations).
  virtual void write(const nlohmann::json& rec, const std::string& line) = 0;
  // After every step (no device sync: for progress and rate, not numbers).
  virtual void step_done(int64_t /*done*/) {}
  virtual void finish() {}
};

// <run_dir>/metrics.jsonl (rank 0); a resumed run first copies resume_source's records up to start_step.
std::unique_ptr<MetricsSink> jsonl_sink(const std::string& run_dir, const std::string& resume_source,
                                        int64_t start_step);
// The progress line (rank 0): from the first second, every step, with the last logged numbers as its tail.
std::unique_ptr<MetricsSink> progress_sink(const std::string& label, int64_t total_steps, int64_t start_step);

class StepMetrics {
 public:
  explicit StepMetrics(std::string work_dir) : work_dir_(std::move(work_dir)) {}
  // One micro-step's terms (divided by the accumulation count by the caller); loss terms ("loss", "loss_*")
  // are watched for inf/NaN at 1-based step `step_number`.
  void add_micro(const std::map<std::string, torch::Tensor>& terms, double scale, int64_t step_number);
  void end_micro_steps();  // the step's sums join the window
  void add_device(const std::string& key, const torch::Tensor& value);  // e.g. grad_norm
  void add_host(const std::string& key, double value);                 // e.g. a discriminator's loss
  void end_step(double step_seconds);
  // RunError naming the first step whose loss term was not finite (waits for the device).
  void check_finite() const;
  // Means of the window (averaged over ranks), reset; empty when no step was added.
  std::map<std::string, double> flush(double extra_loss_scale = 0);
  double mean_step_time() const { return last_step_time_; }

 private:
  std::string work_dir_;
  std::map<std::string, torch::Tensor> step_t_;     // this step's micro-step sums
  std::map<std::string, torch::Tensor> window_t_;   // device sums
  std::map<std::string, double> window_;            // host sums
  std::map<std::string, torch::Tensor> first_bad_;  // per loss term: 1-based step of the first inf/NaN, or 0
  int64_t steps_ = 0;
  double step_time_ = 0, last_step_time_ = 0;
};

}  // namespace bevt::host::train
