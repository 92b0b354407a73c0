// The Video Swin backbone (official SwinTransformer3D, plus SwinTransformerBEVT's image path and mask token)
// behind the SDK's Backbone interface. Submodules carry the official attribute names, so official state
// dicts load without renaming.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>

#include "bevt/backbone.h"
#include "options.h"
#include "patch_embed.h"
#include "stage.h"
#include "window_plan.h"

namespace bevt::swin {

class VideoSwin : public Backbone {
 public:
  explicit VideoSwin(const SwinOptions& opts);

  BackboneSpec spec() const override;
  Features forward_video(const torch::Tensor& clip, const torch::Tensor& mask = {}) override;
  Features forward_image(const torch::Tensor& image, const torch::Tensor& mask = {}) override;
  torch::Tensor final_norm(const torch::Tensor& x) override;
  void set_grad_checkpointing(bool on) override { opts_.grad_checkpointing = on; }
  LoadReport load_weights(const TensorMap& tensors, const LoadOptions& opts = {}) override;
  TensorMap export_weights() const override;
  int64_t num_layer_levels() const override;
  int64_t layer_level(const std::string& param_name) const override;

  const SwinOptions& options() const { return opts_; }

 private:
  void init_weights();
  // Runs the stages on channels-last tokens [B,D,H,W,C]; `image` drops the time axis of the features.
  void run_stages(torch::Tensor x, PlanMode mode, bool image, Features& f);
  const StagePlan& plan_for(PlanMode mode, int64_t batch, const Dims3& grid, const torch::Device& device);
  torch::Tensor insert_mask_token(const torch::Tensor& x, const torch::Tensor& mask, const std::vector<int64_t>& grid);
  // Weight conversions (weights.cpp).
  TensorMap inflate_2d(TensorMap t) const;
  void resize_tables(TensorMap& t, const LoadOptions& lo) const;
  void clear_caches();

  SwinOptions opts_;
  PatchEmbed3D patch_embed{nullptr};
  PatchEmbed2D patch_embed_2d{nullptr};
  torch::Tensor mask_token;
  torch::nn::ModuleList layers{nullptr};
  std::vector<SwinStage> stages_;
  torch::nn::LayerNorm norm{nullptr};

  std::mutex plan_mutex_;
  // Plans are never evicted: checkpointed blocks refer to them until backward.
  std::map<std::tuple<int, int64_t, int64_t, int64_t, int64_t, std::string>, std::shared_ptr<StagePlan>> plans_;
};

}  // namespace bevt::swin
