// The bevt_pretrain_step fixture: one step of the official BEVTMultiSource (SwinTransformerBEVT with its two
// decoders, BEVTMultiSourceHead's shared lm_head and frozen DALL-E encoder), run through the trainer's own code:
// the components built by their plugins as the composition builds them, tied and loaded as a BEVT whole-model
// checkpoint (TrainModel), the fixture's masks fed through the MaskForGrid hook, pretrain_iteration's forward
// (what the pretrain runner calls), then the loop's backward (plain: fp32, one micro-step). Every shape and
// hyper-parameter comes from the fixture's files, none from the public case.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <filesystem>

#include "bevt/backbone.h"
#include "bevt/config.h"
#include "bevt/error.h"
#include "bevt/head.h"
#include "bevt/safetensors.h"
#include "bevt/tokenizer.h"
#include "bevt_forward.h"
#include "host/train/model.h"
#include "host/train/pretrain_step.h"

namespace fs = std::filesystem;

namespace bevt::forward {

namespace {

const torch::Tensor& tensor(const TensorMap& m, const std::string& key, const std::string& file) {
  auto it = m.find(key);
  if (it == m.end()) throw UserError(fmt::format("{}: no tensor '{}'", file, key));
  return it->second;
}

// The decoder head reproducing "<backbone module>.<stream>", built on the backbone's spec and the vocabulary.
std::shared_ptr<Head> build_head(const host::Registry& reg, const std::string& official, const Backbone& backbone,
                                 int64_t vocab) {
  const host::LoadedPlugin& p = plugin_for_module(reg, official, "decoder");
  Config cfg;
  cfg.set_toml("vocab_size", std::to_string(vocab));
  cfg.validate(p.info.keys, {});
  BuildContext ctx;
  ctx.backbone = backbone.spec();
  ctx.vocab_size = vocab;
  return component_cast<Head>(p.info.factory(cfg, ctx));
}

// The fixture's tokenizer views are the official encoder's input, already through the data pipeline's
// map_pixels; the trainer gives the tokenizer [0, 1] images and lets it prepare() them. Invert prepare (an
// affine map, measured on 0 and 1), then step each value by an ulp until prepare() gives back the fixture's
// exact float: the encoder then sees bit-identical input, so its argmax cannot flip on rounding.
torch::Tensor unprepare(Tokenizer& tok, const torch::Tensor& prepared, const std::string& where) {
  torch::NoGradGuard no_grad;
  const torch::Tensor ends = tok.prepare(torch::tensor({0.0F, 1.0F}).view({2, 1, 1, 1}));
  const double b = ends[0].item<double>(), a = ends[1].item<double>() - b;
  if (!(a > 0)) throw UserError(fmt::format("{}: the tokenizer's input mapping cannot be inverted", where));
  torch::Tensor x = ((prepared.to(torch::kFloat64) - b) / a).to(torch::kFloat32).clamp(0, 1);
  for (int i = 0; i < 4; ++i) {
    const torch::Tensor d = tok.prepare(x) - prepared;
    if (!d.ne(0).any().item<bool>()) break;
    const torch::Tensor toward = torch::where(d > 0, torch::zeros_like(x), torch::ones_like(x));
    x = torch::where(d.ne(0), torch::nextafter(x, toward), x);
  }
  return x;
}

}  // namespace

TensorMap run_pretrain_step_fixture(const host::Registry& reg, const std::string& dir, const torch::Device& device,
                                    host::Precision precision, int64_t& gradients) {
  const std::string cfg_path = (fs::path(dir) / "config.toml").string();
  const std::string in_path = (fs::path(dir) / "input.safetensors").string();
  const std::string w_path = (fs::path(dir) / "weights.safetensors").string();
  Config fixture = Config::from_file(cfg_path);
  Config head_args = fixture.get_table("head_args");

  // The components, in the composition's order: backbone and tokenizer, then the heads on their spec/vocabulary.
  const host::LoadedPlugin& bb_plugin = plugin_for_module(reg, "SwinTransformerBEVT", fixture.where("model_args"));
  Config bb_args = fixture.get_table("model_args").deep_copy();
  bb_args.validate(bb_plugin.info.keys, {});
  BuildContext ctx;
  auto backbone = component_cast<Backbone>(bb_plugin.info.factory(bb_args, ctx));
  const host::LoadedPlugin& tok_plugin = plugin_for_module(reg, "Encoder", fixture.where("tokenizer_args"));
  Config tok_args = fixture.get_table("tokenizer_args").deep_copy();
  // use_mixed_precision only makes the official encoder's convolutions fp16 on CUDA; this check runs fp32.
  tok_args.validate(tok_plugin.info.keys, {"use_mixed_precision"});
  auto tokenizer = component_cast<Tokenizer>(tok_plugin.info.factory(tok_args, ctx));

  const int64_t vocab = head_args.get_int("num_classes");
  if (vocab != tokenizer->vocab_size())
    throw UserError(fmt::format("{}: num_classes {} is not the tokenizer's vocabulary {}",
                                head_args.where("num_classes"), vocab, tokenizer->vocab_size()));
  const int64_t channels = backbone->spec().stage("stage4").channels;
  if (head_args.get_int("in_channels") != channels)
    throw UserError(fmt::format("{}: in_channels {} is not the backbone's {} output channels",
                                head_args.where("in_channels"), head_args.get_int("in_channels"), channels));

  // BEVT's one lm_head: the two decoders' classifiers tied, as pretrain.tie_lm_head does.
  host::train::TrainModel model;
  model.backbone = backbone;
  model.heads["image"] = build_head(reg, "SwinTransformerBEVT.image", *backbone, vocab);
  model.heads["video"] = build_head(reg, "SwinTransformerBEVT.video", *backbone, vocab);
  host::train::tie_lm_heads(model);
  TensorMap weights = load_safetensors(w_path).tensors;
  model.load_state(weights, w_path);
  LoadOptions tlo;
  tlo.source = w_path;
  tokenizer->load_weights(weights, tlo);
  model.to(device);
  tokenizer->to(device);

  // Inputs and masks, with their shapes checked against each other (never against the public case's).
  TensorMap in = load_safetensors(in_path).tensors;
  const torch::Tensor video = tensor(in, "video", in_path).to(torch::kFloat32);
  const torch::Tensor image = tensor(in, "image", in_path).to(torch::kFloat32);
  const torch::Tensor video_mask = tensor(in, "video_mask", in_path).to(torch::kBool);
  const torch::Tensor target_mask = tensor(in, "video_target_mask", in_path).to(torch::kBool);
  const torch::Tensor image_mask = tensor(in, "image_mask", in_path).to(torch::kBool);
  torch::Tensor video_view = tensor(in, "video_tokenizer_view", in_path);
  torch::Tensor image_view = tensor(in, "image_tokenizer_view", in_path);
  const int64_t B = video.size(0), T = target_mask.size(1);
  if (video_view.size(0) != B * T)
    throw UserError(fmt::format("{}: video_tokenizer_view has {} views, not batch {} x {} frames", in_path,
                                video_view.size(0), B, T));
  if (video_mask.size(0) != B || T % video_mask.size(1) != 0 ||
      !video_mask.repeat_interleave(T / video_mask.size(1), 1).equal(target_mask))
    throw UserError(fmt::format("{}: video_target_mask is not video_mask repeated over the frames of each token "
                                "frame (the rule the trainer applies)", in_path));
  video_view = unprepare(*tokenizer, video_view.to(torch::kFloat32), in_path);
  video_view = video_view.view({B, T, video_view.size(1), video_view.size(2), video_view.size(3)});
  image_view = unprepare(*tokenizer, image_view.to(torch::kFloat32), in_path);

  // The masks reach the encoder through the runner's hook; a grid that differs from the fixture's mask is an
  // error, never a resize.
  auto given = [&](const torch::Tensor& mask, const std::string& key) {
    return [mask, key, in_path, device](const std::array<int64_t, 3>& grid) {
      const torch::Tensor m = mask.dim() == 3 ? mask.unsqueeze(1) : mask;
      if (m.size(1) != grid[0] || m.size(2) != grid[1] || m.size(3) != grid[2])
        throw UserError(fmt::format("{}: {} is [{}] but the trainer asks for a mask on the token grid [{}]", in_path,
                                    key, fmt::join(mask.sizes(), ","), fmt::join(grid, ",")));
      return m.to(device);
    };
  };
  std::vector<host::train::StreamBatch> streams(2);
  streams[0].name = "video";  // the official order: the video stream, then the image stream
  streams[0].weight = head_args.get_float("loss_weight_3d");
  streams[0].head = model.heads.at("video").get();
  streams[0].input = video.to(device);
  streams[0].view = video_view.to(device);
  streams[0].mask_for = given(video_mask, "video_mask");
  streams[1].name = "image";
  streams[1].weight = head_args.get_float("loss_weight_2d");
  streams[1].head = model.heads.at("image").get();
  streams[1].input = image.to(device);
  streams[1].view = image_view.to(device);
  streams[1].mask_for = given(image_mask, "image_mask");

  // The loop's micro-step: train mode (the tokenizer stays frozen in eval), forward under autocast, backward,
  // the tied classifier's gradients folded into one.
  model.train(true);
  std::map<std::string, torch::Tensor> terms, targets;
  {
    host::train::AutocastGuard autocast(precision, device);
    terms = host::train::pretrain_iteration(*model.backbone, *tokenizer, streams, &targets);
  }
  terms.at("loss").backward();
  model.fold_alias_grads();

  TensorMap out;
  auto put = [&](const std::string& key, const torch::Tensor& t) {
    const torch::Tensor c = t.detach().to(torch::kCPU);
    out[key] = (c.is_floating_point() ? c.to(torch::kFloat32) : c).contiguous();
  };
  // BEVT's loss_cls_3d / loss_cls_2d carry their loss weight.
  put("loss_video", (streams[0].weight * terms.at("loss_video")).reshape({1}));
  put("loss_image", (streams[1].weight * terms.at("loss_image")).reshape({1}));
  put("acc_video", terms.at("acc_video").reshape({1}));
  put("acc_image", terms.at("acc_image").reshape({1}));
  // The official tokens: one row per view, the video's views (sample-major) then the image's.
  put("tokens", torch::cat({targets.at("video").reshape({B * T, -1}), targets.at("image")}, 0).to(torch::kInt64));
  gradients = 0;
  for (const auto& p : model.parameters()) {
    if (!p.param.grad().defined()) continue;
    put("grad." + p.name, p.param.grad());
    ++gradients;
  }
  return out;
}

}  // namespace bevt::forward
