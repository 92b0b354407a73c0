// Trainable VQ-VAE tokenizers.
//
//   vq    a small VQ-VAE for the built-in, no-download default (generated 32-64 px images, trains on a CPU in
//         a minute or two).
//   peco  PeCo (Dong et al., arXiv 2111.12710): the same VQ-VAE machinery plus a perceptual loss, the distance
//         between features of a frozen backbone (any backbone plugin, built through the host) for the input and
//         for the reconstruction, and VQGAN's adversarial loss (a PatchGAN discriminator on the reconstruction,
//         switched on at a start step, weighted adaptively). PeCo's official weights were never released; bevt
//         trains it (run.mode = "tokenizer").
//
// Model. Images in [0,1] are mapped to [-1,1]. A conv encoder (3x3 stem, per level a residual block and a
// stride-2 3x3 conv, a middle residual block, a 1x1 projection) gives code vectors of `code_dim` channels at
// 1/downsample of the input side. Quantiser: encoder outputs and codes are L2-normalised (cosine codebook, as
// ViT-VQGAN / BEiT v2 do: better codebook usage than raw Euclidean), the nearest code is the one with the largest
// cosine, i.e. the smallest Euclidean distance between unit vectors. Codes are not parameters: they move by EMA of
// the (normalised) encoder outputs assigned to them, re-normalised after each update; the encoder is pulled to
// its codes by the commitment loss beta * ||z - sg(e)||^2; gradients pass the quantiser by the straight-through
// estimator. Codes unused over the last `dead_code_window` batches are restarted from random encoder outputs of
// the current batch (deterministic: drawn with bevt::Rng seeded from the experiment seed). The codebook is
// initialised from the first training batch's encoder outputs. A conv decoder mirrors the encoder (nearest 2x
// upsampling + 3x3 conv per level) and reconstructs the [-1,1] image.
//
// Options for targets that tell shape rather than colour (the miniature's tokenizer, docs/ablations.md): input =
// "luma" feeds the standardised luminance, padding = "replicate" keeps flat regions alike up to the border, and
// local = true encodes each token's patch on its own, so a token is the silhouette fragment in its cell.
//
// logits(prepared) = -||z - e_k||^2 = 2 cos(z, e_k) - 2 for every code k → [N, vocab, h, w]; argmax = nearest
// code, which is what the SDK's tokenize() and this class's (chunked) tokenize() return.
//
// Adversarial term (peco, as VQGAN trains its autoencoder): a PatchGAN discriminator D (pix2pix layout: 4x4
// convs, stride 2 then 1, BatchNorm, LeakyReLU 0.2; N(0, 0.02) init) scores [-1,1] images per patch. From step
// disc_start on, the tokenizer's loss adds lambda * L_G with L_G = -mean D(x_rec) (hinge) or
// mean softplus(-D(x_rec)) (non-saturating), and lambda = disc_weight * ||grad_last nll|| / (||grad_last L_G||
// + 1e-4) clamped to [0, 1e4] and detached, the gradients taken at the decoder's last conv weight and nll =
// pixel + perceptual_weight * perceptual loss (VQGAN's adaptive weight). D's own loss on the same batch,
// hinge 0.5 (mean relu(1 - D(x)) + mean relu(1 + D(sg(x_rec)))) or its softplus form, is returned as
// TokenizerLoss::adversary; the host trains D on it with a second optimiser. D is not a sub-module: the
// exported tokenizer never contains it.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bevt/backbone.h"
#include "bevt/config.h"
#include "bevt/context.h"
#include "bevt/error.h"
#include "bevt/plugin.h"
#include "bevt/rng.h"
#include "bevt/safetensors.h"
#include "bevt/state_dict.h"
#include "bevt/tokenizer.h"

namespace {

namespace F = torch::nn::functional;

// A 3x3 convolution with padding 1: zero padding, or replicated border pixels (then a uniform image stays uniform
// through the encoder, so its cells cannot tell the border from the inside).
torch::nn::Conv2dOptions conv3x3(int64_t in, int64_t out, bool replicate, int64_t stride = 1) {
  auto o = torch::nn::Conv2dOptions(in, out, 3).stride(stride).padding(1);
  if (replicate) o.padding_mode(torch::kReplicate);
  return o;
}

// Pre-activation residual block: x + conv1x1(relu(conv3x3(relu(x)))), inner width ch/2 (at least 8).
class ResBlock : public torch::nn::Module {
 public:
  explicit ResBlock(int64_t ch, bool replicate = false) {
    const int64_t mid = std::max<int64_t>(8, ch / 2);
    conv1_ = register_module("conv1", torch::nn::Conv2d(conv3x3(ch, mid, replicate)));
    conv2_ = register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(mid, ch, 1)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return x + conv2_->forward(torch::relu(conv1_->forward(torch::relu(x))));
  }

 private:
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr};
};

struct VqOptions {
  int64_t vocab = 256, code_dim = 32, downsample = 4, hidden = 32, input_size = 32;
  std::vector<int64_t> channel_mult;  // one per downsampling level; empty = all 1
  double beta = 0.25, ema_decay = 0.95;
  int64_t dead_code_window = 20;
  std::string recon_loss = "l2";
  bool centre = false;  // subtract each image's mean colour before encoding
  std::string input = "rgb";      // "luma": each image's standardised luminance (replicated to 3 channels)
  std::string padding = "zeros";  // the encoder's 3x3 convolutions: "zeros" | "replicate"
  bool local = false;             // each token from its own downsample x downsample patch alone
};

int64_t levels_of(int64_t downsample) {
  int64_t l = 0;
  while ((int64_t{1} << l) < downsample) ++l;
  return l;
}

class Encoder : public torch::nn::Module {
 public:
  explicit Encoder(const VqOptions& o) {
    const int64_t L = levels_of(o.downsample);
    auto ch = [&](int64_t i) { return o.hidden * (o.channel_mult.empty() ? 1 : o.channel_mult[size_t(i)]); };
    const bool rp = o.padding == "replicate";
    conv_in_ = register_module("conv_in", torch::nn::Conv2d(conv3x3(3, ch(0), rp)));
    auto down = register_module("down", std::make_shared<torch::nn::Module>());
    for (int64_t i = 0; i < L; ++i) {
      auto lvl = down->register_module(std::to_string(i), std::make_shared<torch::nn::Module>());
      const int64_t out = ch(std::min(i + 1, L - 1));
      res_.push_back(lvl->register_module("res", std::make_shared<ResBlock>(ch(i), rp)));
      down_.push_back(lvl->register_module("conv", torch::nn::Conv2d(conv3x3(ch(i), out, rp, 2))));
    }
    const int64_t top = L > 0 ? ch(L - 1) : ch(0);
    mid_ = register_module("mid", std::make_shared<ResBlock>(top, rp));
    conv_out_ = register_module("conv_out", torch::nn::Conv2d(torch::nn::Conv2dOptions(top, o.code_dim, 1)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor h = conv_in_->forward(x);
    for (size_t i = 0; i < res_.size(); ++i) h = down_[i]->forward(res_[i]->forward(h));
    return conv_out_->forward(torch::relu(mid_->forward(h)));
  }

 private:
  torch::nn::Conv2d conv_in_{nullptr}, conv_out_{nullptr};
  std::vector<std::shared_ptr<ResBlock>> res_;
  std::vector<torch::nn::Conv2d> down_;
  std::shared_ptr<ResBlock> mid_;
};

class Decoder : public torch::nn::Module {
 public:
  explicit Decoder(const VqOptions& o) {
    const int64_t L = levels_of(o.downsample);
    auto ch = [&](int64_t i) { return o.hidden * (o.channel_mult.empty() ? 1 : o.channel_mult[size_t(i)]); };
    const int64_t top = L > 0 ? ch(L - 1) : ch(0);
    conv_in_ = register_module("conv_in", torch::nn::Conv2d(torch::nn::Conv2dOptions(o.code_dim, top, 3).padding(1)));
    mid_ = register_module("mid", std::make_shared<ResBlock>(top));
    auto up = register_module("up", std::make_shared<torch::nn::Module>());
    // up.<i> undoes down.<i>; run from the deepest level to the first.
    for (int64_t i = 0; i < L; ++i) {
      auto lvl = up->register_module(std::to_string(i), std::make_shared<torch::nn::Module>());
      const int64_t in = ch(std::min(i + 1, L - 1));
      up_.push_back(lvl->register_module(
          "conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, ch(i), 3).padding(1))));
      res_.push_back(lvl->register_module("res", std::make_shared<ResBlock>(ch(i))));
    }
    conv_out_ = register_module("conv_out", torch::nn::Conv2d(torch::nn::Conv2dOptions(ch(0), 3, 3).padding(1)));
  }
  torch::Tensor forward(const torch::Tensor& z) {
    torch::Tensor h = mid_->forward(conv_in_->forward(z));
    for (size_t k = up_.size(); k-- > 0;) {
      h = F::interpolate(h, F::InterpolateFuncOptions()
                                .scale_factor(std::vector<double>{2.0, 2.0})
                                .mode(torch::kNearest));
      h = res_[k]->forward(up_[k]->forward(h));
    }
    return conv_out_->forward(torch::relu(h));
  }
  const torch::Tensor& last_weight() const { return conv_out_->weight; }

 private:
  torch::nn::Conv2d conv_in_{nullptr}, conv_out_{nullptr};
  std::shared_ptr<ResBlock> mid_;
  std::vector<torch::nn::Conv2d> up_;
  std::vector<std::shared_ptr<ResBlock>> res_;
};

// Cosine codebook with EMA updates, usage tracking and dead-code restarts. Everything is a buffer (saved with
// the weights; the optimiser never sees it).
class Quantizer : public torch::nn::Module {
 public:
  Quantizer(int64_t vocab, int64_t dim, double decay, int64_t window, uint64_t seed)
      : vocab_(vocab), decay_(decay), window_(window), seed_(seed) {
    torch::Tensor e = F::normalize(torch::randn({vocab, dim}), F::NormalizeFuncOptions().dim(1));
    embedding = register_buffer("embedding", e);
    embed_sum = register_buffer("embed_sum", e.clone());
    cluster_size = register_buffer("cluster_size", torch::zeros({vocab}));
    last_used = register_buffer("last_used", torch::zeros({vocab}, torch::kInt64));
    step = register_buffer("step", torch::zeros({}, torch::kInt64));
    initialized = register_buffer("initialized", torch::zeros({}, torch::kInt64));
  }

  // Similarity [M, vocab] of unit vectors z [M, dim] to every code.
  torch::Tensor cosine(const torch::Tensor& z) const { return torch::matmul(z, embedding.t()); }

  struct Stats {
    torch::Tensor perplexity, dead;
  };

  // Training-time bookkeeping for one batch of unit vectors z [M, dim] and their codes idx [M] (no grad).
  Stats update(const torch::Tensor& z, const torch::Tensor& idx) {
    torch::NoGradGuard ng;
    const int64_t M = z.size(0);
    torch::Tensor counts = torch::bincount(idx, /*weights=*/{}, vocab_).to(torch::kFloat32);
    torch::Tensor p = counts / double(std::max<int64_t>(M, 1));
    Stats s;
    s.perplexity = torch::exp(-(p * torch::log(p + 1e-10)).sum());
    // EMA of counts and of the sums of assigned vectors; codes = normalised sums (direction only).
    torch::Tensor sums = torch::zeros_like(embed_sum).index_add_(0, idx, z);
    cluster_size.mul_(decay_).add_(counts, 1.0 - decay_);
    embed_sum.mul_(decay_).add_(sums, 1.0 - decay_);
    torch::Tensor norm = embed_sum.norm(2, 1, true);
    embedding.copy_(torch::where(norm > 1e-6, embed_sum / norm.clamp_min(1e-6), embedding));
    // Usage: a code is dead when unused over the last `window` batches.
    step.add_(1);
    last_used.masked_fill_(counts > 0, step.item<int64_t>());
    torch::Tensor dead = (step - last_used) >= window_;
    const int64_t n_dead = dead.sum().item<int64_t>();
    s.dead = torch::tensor(double(n_dead));
    if (n_dead > 0 && M > 0) restart(dead.nonzero().flatten(), z);
    return s;
  }

  // Sets `which` codes to random rows of z (with replacement when z has fewer rows), deterministically: the
  // draw is a pure function of (seed, step), and `step` is a buffer, so a run resumed from a checkpoint restarts
  // exactly the codes the uninterrupted run would.
  void restart(const torch::Tensor& which, const torch::Tensor& z) {
    torch::NoGradGuard ng;
    bevt::Rng rng(bevt::Rng::derive(seed_, {static_cast<uint64_t>(step.item<int64_t>())}));
    const int64_t k = which.numel(), M = z.size(0);
    std::vector<int64_t> pick(static_cast<size_t>(k));
    if (M >= k) {  // without replacement: a partial Fisher-Yates shuffle
      std::vector<int64_t> all(static_cast<size_t>(M));
      for (int64_t i = 0; i < M; ++i) all[size_t(i)] = i;
      for (int64_t i = 0; i < k; ++i) {
        int64_t j = rng.randint(i, M - 1);
        std::swap(all[size_t(i)], all[size_t(j)]);
        pick[size_t(i)] = all[size_t(i)];
      }
    } else {
      for (auto& v : pick) v = rng.randint(0, M - 1);
    }
    torch::Tensor rows = z.index_select(0, torch::tensor(pick, torch::kInt64).to(z.device()));
    torch::Tensor w = which.to(embedding.device());
    embedding.index_copy_(0, w, rows);
    embed_sum.index_copy_(0, w, rows);
    cluster_size.index_fill_(0, w, 1.0);
    last_used.index_fill_(0, w, step.item<int64_t>());
  }

  // The first training batch seeds the whole codebook.
  void init_from(const torch::Tensor& z) {
    if (initialized.item<int64_t>() != 0) return;
    restart(torch::arange(vocab_, torch::kInt64), z);
    cluster_size.zero_();
    initialized.fill_(1);
  }

  torch::Tensor embedding, embed_sum, cluster_size, last_used, step, initialized;

 private:
  int64_t vocab_;
  double decay_;
  int64_t window_;
  uint64_t seed_;
};

// PatchGAN discriminator (pix2pix / VQGAN layout): a 4x4 stride-2 conv + LeakyReLU(0.2); (layers - 1) 4x4
// stride-2 convs without bias + BatchNorm + LeakyReLU, widths width * min(2^n, 8); one more such block at
// stride 1; a 4x4 stride-1 conv to one logit per patch. Convs N(0, 0.02), norms' scales N(1, 0.02), biases 0,
// drawn from a generator of the experiment seed. Parameter names as the PyTorch nn.Sequential ("main.<i>.*").
class PatchDiscriminator : public torch::nn::Module {
 public:
  PatchDiscriminator(int64_t layers, int64_t width, uint64_t seed) {
    namespace nn = torch::nn;
    auto conv = [](int64_t in, int64_t out, int64_t stride, bool bias) {
      return nn::Conv2d(nn::Conv2dOptions(in, out, 4).stride(stride).padding(1).bias(bias));
    };
    auto lrelu = [] { return nn::LeakyReLU(nn::LeakyReLUOptions().negative_slope(0.2)); };
    main_ = nn::Sequential();
    main_->push_back(conv(3, width, 2, true));
    main_->push_back(lrelu());
    int64_t mult = 1;
    for (int64_t n = 1; n <= layers; ++n) {
      const int64_t prev = mult;
      mult = std::min<int64_t>(int64_t{1} << n, 8);
      main_->push_back(conv(width * prev, width * mult, n < layers ? 2 : 1, false));
      main_->push_back(nn::BatchNorm2d(width * mult));
      main_->push_back(lrelu());
    }
    main_->push_back(conv(width * mult, 1, 1, true));
    register_module("main", main_);
    torch::NoGradGuard ng;
    auto gen = at::detail::createCPUGenerator(seed);
    for (auto& m : main_->modules(false)) {
      if (auto* c = m->as<nn::Conv2d>()) {
        c->weight.normal_(0.0, 0.02, gen);
        if (c->bias.defined()) c->bias.zero_();
      } else if (auto* b = m->as<nn::BatchNorm2d>()) {
        b->weight.normal_(1.0, 0.02, gen);
        b->bias.zero_();
      }
    }
  }
  torch::Tensor forward(const torch::Tensor& x) { return main_->forward(x); }

  // Side of the logit map for an input side s (0 = the input is too small for this depth).
  static int64_t output_side(int64_t s, int64_t layers) {
    for (int64_t n = 0; n < layers; ++n) s = s >= 2 ? s / 2 : 0;  // 4x4, stride 2, padding 1
    return std::max<int64_t>(s - 2, 0);                           // two 4x4 stride-1 convs, padding 1
  }

 private:
  torch::nn::Sequential main_{nullptr};
};

// Sets requires_grad off on a module's parameters for a scope: the tokenizer's adversarial term flows through
// the discriminator into the reconstruction without giving the discriminator a gradient.
class NoParamGrad {
 public:
  explicit NoParamGrad(torch::nn::Module& m) : params_(m.parameters()) {
    for (auto& p : params_) {
      was_.push_back(p.requires_grad());
      p.set_requires_grad(false);
    }
  }
  ~NoParamGrad() {
    for (size_t i = 0; i < params_.size(); ++i) params_[i].set_requires_grad(was_[i]);
  }
  NoParamGrad(const NoParamGrad&) = delete;
  NoParamGrad& operator=(const NoParamGrad&) = delete;

 private:
  std::vector<torch::Tensor> params_;
  std::vector<bool> was_;
};

std::string need_msg(const bevt::Config& cfg, const char* key, const std::string& what) {
  return fmt::format("{}: {} must be {}", cfg.where(key), key, what);
}

std::vector<bevt::KeySpec> common_keys(const VqOptions& d) {
  using bevt::key;
  return {
      key("vocab_size", d.vocab, "codebook size (number of token ids)"),
      key("code_dim", d.code_dim, "dimension of a code vector (codes and encoder outputs are L2-normalised)"),
      key("downsample", d.downsample, "input pixels per token side: a power of two (one encoder level per factor 2)"),
      key("hidden", d.hidden, "channels of the first encoder level (and the last decoder level)"),
      key("channel_mult", d.channel_mult,
          "channel multiplier per downsampling level (length log2(downsample)); [] = all 1"),
      key("input_size", d.input_size, "side of the square images the tokenizer expects (the host resizes to it)"),
      key("beta", d.beta, "commitment loss weight: beta * ||z - sg(code)||^2"),
      key("ema_decay", d.ema_decay, "EMA decay of the codebook updates (codes are not optimiser parameters)"),
      key("dead_code_window", d.dead_code_window,
          "a code unused over this many training batches is dead and restarted from an encoder output"),
      key("recon_loss", d.recon_loss, "pixel reconstruction loss on [-1,1] images: \"l1\" | \"l2\""),
      key("centre", d.centre,
          "subtract each image's mean colour before encoding (and reconstruct the centred image): codes then "
          "tell shapes and edges rather than the absolute colour. Weights trained with it hold a marker "
          "buffer, so they load only with centre = true"),
      key("input", d.input,
          "what the encoder sees: \"rgb\" (the image in [-1,1]) | \"luma\" (each image's luminance less its mean, "
          "divided by its standard deviation: codes then tell the silhouette, not the colour or the contrast; the "
          "decoder reconstructs that). Weights trained with luma hold a marker buffer (input_luma)"),
      key("local", d.local,
          "encode every downsample x downsample patch on its own (and decode it so): a token then depends on its "
          "patch alone, not on the whole image the convolutions would otherwise see. With input = \"luma\" each "
          "patch is standardised on its own: a flat patch gives one code, an edge or corner its shape's. Weights "
          "trained with it hold a marker buffer (local_patches)"),
      key("padding", d.padding,
          "padding of the encoder's 3x3 convolutions: \"zeros\" | \"replicate\" (a flat region gets the same code "
          "at the border as inside). Weights trained with replicate hold a marker buffer (pad_replicate)"),
      key("weights", "",
          "safetensors file of a trained tokenizer (export_weights); loaded at construction, the tokenizer is then "
          "frozen (eval, no grad) until train() is called. \"\" = random init"),
  };
}

class VqTokenizer : public bevt::Tokenizer {
 public:
  static VqOptions vq_defaults() { return VqOptions{}; }
  static VqOptions peco_defaults() {
    VqOptions o;
    o.vocab = 8192;
    o.code_dim = 32;
    o.downsample = 16;
    o.hidden = 64;
    o.channel_mult = {1, 2, 2, 4};
    o.input_size = 224;
    o.ema_decay = 0.99;
    o.dead_code_window = 100;
    o.recon_loss = "l1";
    return o;
  }

  VqTokenizer(const bevt::Config& cfg, const bevt::BuildContext& ctx, bool peco)
      : peco_(peco), name_(peco ? "peco" : "vq") {
    o_.vocab = cfg.get_int("vocab_size");
    o_.code_dim = cfg.get_int("code_dim");
    o_.downsample = cfg.get_int("downsample");
    o_.hidden = cfg.get_int("hidden");
    o_.channel_mult = cfg.get_int_list("channel_mult");
    o_.input_size = cfg.get_int("input_size");
    o_.beta = cfg.get_float("beta");
    o_.ema_decay = cfg.get_float("ema_decay");
    o_.dead_code_window = cfg.get_int("dead_code_window");
    o_.recon_loss = cfg.get_string("recon_loss");
    o_.centre = cfg.get_bool("centre");
    o_.input = cfg.get_string("input");
    o_.padding = cfg.get_string("padding");
    o_.local = cfg.get_bool("local");
    auto need = [&](bool ok, const char* k, const std::string& what) {
      if (!ok) throw bevt::UserError(need_msg(cfg, k, what));
    };
    need(o_.vocab >= 2, "vocab_size", ">= 2");
    need(o_.code_dim >= 1, "code_dim", ">= 1");
    need(o_.downsample >= 1 && o_.downsample <= 256 && (o_.downsample & (o_.downsample - 1)) == 0, "downsample",
         "a power of two in 1..256");
    need(o_.hidden >= 1, "hidden", ">= 1");
    const auto L = size_t(levels_of(o_.downsample));
    need(o_.channel_mult.empty() || o_.channel_mult.size() == std::max<size_t>(L, 1), "channel_mult",
         fmt::format("empty or a list of log2(downsample) = {} positive integers", std::max<size_t>(L, 1)));
    for (auto m : o_.channel_mult) need(m >= 1, "channel_mult", "a list of positive integers");
    need(o_.input_size > 0 && o_.input_size % o_.downsample == 0, "input_size",
         fmt::format("a positive multiple of downsample = {}", o_.downsample));
    need(o_.beta >= 0, "beta", ">= 0");
    need(o_.ema_decay >= 0 && o_.ema_decay < 1, "ema_decay", "in [0, 1)");
    need(o_.dead_code_window >= 1, "dead_code_window", ">= 1");
    need(o_.recon_loss == "l1" || o_.recon_loss == "l2", "recon_loss", "\"l1\" or \"l2\"");
    need(o_.input == "rgb" || o_.input == "luma", "input", "\"rgb\" or \"luma\"");
    need(o_.padding == "zeros" || o_.padding == "replicate", "padding", "\"zeros\" or \"replicate\"");
    need(!(o_.centre && o_.input == "luma"), "centre", "false with input = \"luma\" (luma already subtracts the mean)");

    const uint64_t seed = bevt::Rng::derive(ctx.seed, {0x76715f746f6bULL /* "vq_tok" */, peco ? 1ULL : 0ULL});
    encoder_ = register_module("encoder", std::make_shared<Encoder>(o_));
    quantize_ = register_module(
        "quantize", std::make_shared<Quantizer>(o_.vocab, o_.code_dim, o_.ema_decay, o_.dead_code_window, seed));
    decoder_ = register_module("decoder", std::make_shared<Decoder>(o_));
    // A marker in the state: centred and uncentred weights never load into each other's configuration.
    if (o_.centre) register_buffer("input_centre", torch::ones({1}));
    if (o_.input == "luma") register_buffer("input_luma", torch::ones({1}));
    if (o_.padding == "replicate") register_buffer("pad_replicate", torch::ones({1}));
    if (o_.local) register_buffer("local_patches", torch::ones({1}));

    const std::string path = cfg.get_string("weights");
    loaded_ = !path.empty();
    if (peco_) {
      setup_perceptual(cfg, ctx);
      setup_adversarial(cfg, ctx);
    }

    if (!path.empty()) {
      if (!std::filesystem::exists(path))
        throw bevt::UserError(fmt::format(
            "{}: {} tokenizer weights '{}' not found; train them with {} (run.mode = \"tokenizer\"; it writes the "
            "file named by that experiment) or set weights = \"\"",
            cfg.where("weights"), name_, path, how_to_train()));
      bevt::LoadOptions lo;
      lo.source = path;
      load_weights(bevt::load_safetensors(path).tensors, lo);
      freeze();
    }
  }

  int64_t vocab_size() const override { return o_.vocab; }
  int64_t input_size() const override { return o_.input_size; }
  int64_t downsample() const override { return o_.downsample; }
  bool trainable() const override { return true; }
  bool has_trained_weights() const override { return loaded_; }

  torch::Tensor prepare(const torch::Tensor& images) override {
    torch::Tensor x = images.to(torch::kFloat32) * 2.0 - 1.0;
    if (o_.input == "luma") {
      // The floor on the deviation keeps a flat image (deviation 0) at zero instead of amplifying its codec noise.
      torch::Tensor y = bevt::luminance(x);
      if (o_.local) {  // per patch: the mean and deviation of each downsample x downsample cell
        const int64_t d = o_.downsample;
        auto per_cell = [d](const torch::Tensor& t) {
          return F::avg_pool2d(t, F::AvgPool2dFuncOptions(d)).repeat_interleave(d, 2).repeat_interleave(d, 3);
        };
        y = y - per_cell(y);
        // A cell whose deviation is under 0.1 (a tenth of the generator's weakest silhouette contrast; a resize's
        // faint tail, codec noise) counts as flat and becomes exactly zero: every flat cell then gets one code
        // bit for bit, where dividing its rounding noise by a small floor would pick among near-tied codes.
        torch::Tensor dev = per_cell(y.pow(2)).sqrt();
        y = torch::where(dev < 0.1, torch::zeros_like(y), y / dev.clamp_min(0.1));
      } else {
        y = y - y.mean({2, 3}, /*keepdim=*/true);
        y = y / y.pow(2).mean({2, 3}, /*keepdim=*/true).sqrt().clamp_min(0.02);
      }
      return y.expand({-1, 3, -1, -1}).contiguous();
    }
    return o_.centre ? x - x.mean({2, 3}, /*keepdim=*/true) : x;
  }

  // train(true) makes the parameters trainable again (a tokenizer loaded from weights starts frozen).
  void train(bool on = true) override {
    if (on && peco_ && loaded_) {
      // A peco built from `weights` is the frozen tokenizer: it has no discriminator, and a perceptual backbone
      // only when its table was given.
      if (perceptual_weight_ > 0 && !backbone_)
        throw bevt::UserError(fmt::format(
            "{}: this peco was loaded from weights = \"{}\" without a [perceptual] table; to train it further give "
            "the table or set perceptual_weight = 0",
            where_, weights_path_));
      if (disc_weight_ > 0)
        throw bevt::UserError(fmt::format(
            "{}: this peco was loaded from weights = \"{}\" (frozen: no discriminator is built); train from "
            "scratch (weights = \"\", resuming through the run's checkpoints) or set disc_weight = 0",
            where_, weights_path_));
    }
    for (auto& p : parameters()) p.set_requires_grad(on);
    torch::nn::Module::train(on);
    if (disc_) {
      for (auto& p : disc_->parameters()) p.set_requires_grad(on);
      disc_->train(on);
    }
  }

  void set_train_step(int64_t step) override { train_step_ = step; }
  std::shared_ptr<torch::nn::Module> adversary() override { return disc_; }
  double adversary_lr_mult() const override { return disc_lr_mult_; }

  torch::Tensor logits(const torch::Tensor& prepared) override {
    check_input(prepared);
    torch::Tensor z = encode(prepared);  // [N, D, h, w] unit vectors
    const auto N = z.size(0), h = z.size(2), w = z.size(3);
    torch::Tensor flat = z.permute({0, 2, 3, 1}).reshape({-1, o_.code_dim});
    torch::Tensor neg_d2 = quantize_->cosine(flat) * 2.0 - 2.0;  // -||z-e||^2 for unit vectors
    return neg_d2.reshape({N, h, w, o_.vocab}).permute({0, 3, 1, 2});
  }

  // Same result as the SDK default (argmax of logits after the range/shape checks), without materialising the
  // whole [N, vocab, h, w] tensor at once (8192 codes x 64 images x 196 tokens would be 400 MB).
  torch::Tensor tokenize(const torch::Tensor& images) override {
    check_images(images, "tokenizer input");
    torch::NoGradGuard ng;
    torch::Tensor prepared = prepare(images);
    check_input(prepared);
    torch::Tensor z = encode(prepared);
    const auto N = z.size(0), h = z.size(2), w = z.size(3);
    torch::Tensor flat = z.permute({0, 2, 3, 1}).reshape({-1, o_.code_dim});
    std::vector<torch::Tensor> parts;
    const int64_t chunk = 4096;
    for (int64_t s = 0; s < flat.size(0); s += chunk)
      parts.push_back(quantize_->cosine(flat.slice(0, s, std::min(s + chunk, flat.size(0)))).argmax(1));
    torch::Tensor ids = parts.empty() ? torch::zeros({0}, flat.options().dtype(torch::kInt64)) : torch::cat(parts);
    return ids.reshape({N, h, w});
  }

  bevt::TokenizerLoss training_loss(const torch::Tensor& images) override {
    check_images(images, "training images");
    torch::Tensor x = prepare(images);
    check_input(x);
    torch::Tensor z = encode(x);
    const auto N = z.size(0), h = z.size(2), w = z.size(3);
    torch::Tensor flat = z.permute({0, 2, 3, 1}).reshape({-1, o_.code_dim});
    if (is_training()) quantize_->init_from(flat.detach());
    torch::Tensor idx;
    {
      torch::NoGradGuard ng;
      idx = quantize_->cosine(flat).argmax(1);
    }
    torch::Tensor zq = quantize_->embedding.index_select(0, idx).detach();
    torch::Tensor commit = o_.beta * (flat - zq).pow(2).sum(1).mean();
    torch::Tensor st = flat + (zq - flat).detach();  // straight-through estimator
    torch::Tensor recon_img = decode(st.reshape({N, h, w, o_.code_dim}).permute({0, 3, 1, 2}));
    torch::Tensor recon = o_.recon_loss == "l1" ? (recon_img - x).abs().mean() : (recon_img - x).pow(2).mean();

    bevt::TokenizerLoss out;
    out.total = recon + commit;
    out.terms["recon"] = recon.detach();
    out.terms["commit"] = commit.detach();
    if (peco_) {
      torch::Tensor perc = torch::zeros({}, x.options());
      torch::Tensor nll = recon;  // VQGAN's "nll": pixel + weighted perceptual loss
      if (backbone_ && perceptual_weight_ > 0) {
        perc = perceptual(images, (recon_img + 1.0) * 0.5);
        out.total = out.total + perceptual_weight_ * perc;
        nll = nll + perceptual_weight_ * perc;
      }
      out.terms["perceptual"] = perc.detach();
      if (disc_weight_ > 0) adversarial(x, recon_img, nll, out);
    }
    if (is_training()) {
      auto s = quantize_->update(flat.detach(), idx);
      out.terms["perplexity"] = s.perplexity;
      out.terms["dead_codes"] = s.dead;
    } else {
      torch::NoGradGuard ng;
      torch::Tensor p = torch::bincount(idx, {}, o_.vocab).to(torch::kFloat32) / double(idx.numel());
      out.terms["perplexity"] = torch::exp(-(p * torch::log(p + 1e-10)).sum());
      out.terms["dead_codes"] = ((quantize_->step - quantize_->last_used) >= o_.dead_code_window).sum().to(torch::kFloat32);
    }
    return out;
  }

  bevt::LoadReport load_weights(const bevt::TensorMap& tensors, const bevt::LoadOptions& opts) override {
    // A tokenizer-mode checkpoint (model.safetensors) also holds the discriminator: the tokenizer ignores it.
    bevt::TensorMap own;
    for (const auto& [k, v] : tensors)
      if (k.rfind("discriminator.", 0) != 0) own.emplace(k, v);
    try {
      return bevt::load_state_dict(*this, own, opts);
    } catch (const bevt::UserError& e) {
      throw bevt::UserError(fmt::format(
          "{} (the {} tokenizer is configured for vocab_size {}, code_dim {}, downsample {}, hidden {}, "
          "channel_mult [{}], centre {}, input {}, padding {}, local {}; set those keys to match the weights, or "
          "retrain with {})",
          e.what(), name_, o_.vocab, o_.code_dim, o_.downsample, o_.hidden, fmt::join(o_.channel_mult, ","),
          o_.centre, o_.input, o_.padding, o_.local, how_to_train()));
    }
  }

 private:
  std::string how_to_train() const {
    return peco_ ? "`bevt-run experiments/tokenizers/peco_in1k.toml` (ImageNet) or `bevt-run "
                   "experiments/tokenizers/peco_small.toml` (generated images, no download)"
                 : "`bevt-run experiments/tokenizers/vq_small.toml`";
  }

  // Images as the host gives them: [N,3,H,W] in [0,1] (NaN fails the range check too).
  void check_images(const torch::Tensor& images, const char* what) const {
    if (images.dim() != 4 || images.size(1) != 3)
      throw bevt::UserError(fmt::format("{}: {} must be [N,3,H,W] images in [0,1], got [{}]", name_, what,
                                        fmt::join(images.sizes(), ",")));
    bevt::check_unit_range(images, fmt::format("{}: {}", name_, what));
  }

  void check_input(const torch::Tensor& x) const {
    if (x.dim() != 4 || x.size(1) != 3)
      throw bevt::UserError(
          fmt::format("{}: input must be [N,3,H,W], got [{}]", name_, fmt::join(x.sizes(), ",")));
    if (x.size(2) % o_.downsample != 0 || x.size(3) % o_.downsample != 0 || x.size(2) == 0 || x.size(3) == 0)
      throw bevt::UserError(fmt::format("{}: image size {}x{} is not a positive multiple of downsample = {}",
                                        name_, x.size(2), x.size(3), o_.downsample));
  }

  // [N, D, h, w] unit vectors. local: the patches go through the encoder as a batch of d x d images.
  torch::Tensor encode(const torch::Tensor& prepared) {
    torch::Tensor z;
    if (o_.local) {
      const int64_t N = prepared.size(0), C = prepared.size(1), d = o_.downsample;
      const int64_t h = prepared.size(2) / d, w = prepared.size(3) / d;
      torch::Tensor patches = prepared.reshape({N, C, h, d, w, d}).permute({0, 2, 4, 1, 3, 5}).reshape({-1, C, d, d});
      z = encoder_->forward(patches).reshape({N, h, w, -1}).permute({0, 3, 1, 2});
    } else {
      z = encoder_->forward(prepared);
    }
    return F::normalize(z, F::NormalizeFuncOptions().dim(1).eps(1e-6));
  }

  // Codes [N, D, h, w] → images [N, 3, h * d, w * d]; local: each code decoded to its patch alone.
  torch::Tensor decode(const torch::Tensor& z) {
    if (!o_.local) return decoder_->forward(z);
    const int64_t N = z.size(0), D = z.size(1), h = z.size(2), w = z.size(3), d = o_.downsample;
    torch::Tensor cells = decoder_->forward(z.permute({0, 2, 3, 1}).reshape({-1, D, 1, 1}));  // [N*h*w, 3, d, d]
    return cells.reshape({N, h, w, 3, d, d}).permute({0, 3, 1, 4, 2, 5}).reshape({N, 3, h * d, w * d});
  }

  void freeze() {
    for (auto& p : parameters()) p.set_requires_grad(false);
    torch::nn::Module::train(false);
  }

  void setup_perceptual(const bevt::Config& cfg, const bevt::BuildContext& ctx) {
    perceptual_weight_ = cfg.get_float("perceptual_weight");
    if (perceptual_weight_ < 0) throw bevt::UserError(need_msg(cfg, "perceptual_weight", ">= 0"));
    stages_ = cfg.get_string_list("perceptual_stages");
    mean_ = cfg.get_float_list("perceptual_mean");
    std_ = cfg.get_float_list("perceptual_std");
    if (mean_.size() != 3 || std_.size() != 3)
      throw bevt::UserError(need_msg(cfg, "perceptual_mean", "3 numbers (and perceptual_std too)"));
    for (double s : std_)
      if (s <= 0) throw bevt::UserError(need_msg(cfg, "perceptual_std", "3 positive numbers"));
    if (perceptual_weight_ == 0) return;
    if (stages_.empty()) throw bevt::UserError(need_msg(cfg, "perceptual_stages", "a non-empty list of feature names"));
    // The frozen tokenizer needs no backbone to tokenize (an absent table reads as one without a plugin).
    if (loaded_ && !(cfg.has("perceptual") && cfg.get_table("perceptual").has("plugin"))) return;
    if (!cfg.has("perceptual"))
      throw bevt::UserError(fmt::format(
          "{}: peco needs a [{}.perceptual] table naming the frozen backbone (plugin = \"video_swin\" and its keys, "
          "weights = a bevt checkpoint), or perceptual_weight = 0",
          cfg.where(), cfg.path()));
    if (!ctx.build)
      throw bevt::UserError(fmt::format("{}: peco cannot build its perceptual backbone: the host gave no builder",
                                        cfg.where("perceptual")));
    bevt::Config sub = cfg.get_table("perceptual");
    if (!sub.has("plugin"))
      throw bevt::UserError(fmt::format("{}: the perceptual table needs plugin = \"<backbone name>\"",
                                        cfg.where("perceptual")));
    backbone_ = bevt::component_cast<bevt::Backbone>(ctx.build(bevt::Kind::Backbone, sub));
    if (!backbone_->spec().has_image_path)
      throw bevt::UserError(fmt::format("{}: perceptual backbone '{}' has no image path; choose one that has",
                                        cfg.where("perceptual"), sub.get_string("plugin")));
    // Frozen for good: not registered as a sub-module, so it is absent from parameters(), the state dict and
    // train(); its parameters never require grad.
    for (auto& p : backbone_->parameters()) p.set_requires_grad(false);
    backbone_->eval();
  }

  void setup_adversarial(const bevt::Config& cfg, const bevt::BuildContext& ctx) {
    where_ = cfg.where();
    weights_path_ = cfg.get_string("weights");
    disc_weight_ = cfg.get_float("disc_weight");
    disc_start_ = cfg.get_int("disc_start");
    disc_layers_ = cfg.get_int("disc_layers");
    const int64_t width = cfg.get_int("disc_width");
    disc_loss_ = cfg.get_string("disc_loss");
    disc_lr_mult_ = cfg.get_float("disc_lr_mult");
    auto need = [&](bool ok, const char* k, const std::string& what) {
      if (!ok) throw bevt::UserError(need_msg(cfg, k, what));
    };
    need(disc_weight_ >= 0 && std::isfinite(disc_weight_), "disc_weight", ">= 0 (0 = no adversarial loss)");
    need(disc_start_ >= 0, "disc_start", ">= 0 (the optimiser step from which the adversarial loss is on)");
    need(disc_layers_ >= 1 && disc_layers_ <= 8, "disc_layers", "in 1..8");
    need(width >= 1, "disc_width", ">= 1");
    need(disc_loss_ == "hinge" || disc_loss_ == "non_saturating", "disc_loss", "\"hinge\" or \"non_saturating\"");
    need(disc_lr_mult_ > 0 && std::isfinite(disc_lr_mult_), "disc_lr_mult", "> 0");
    if (disc_weight_ == 0 || loaded_) return;  // frozen use (weights) needs no discriminator
    need(PatchDiscriminator::output_side(o_.input_size, disc_layers_) >= 1, "disc_layers",
         fmt::format("small enough for input_size = {} (each layer halves the side, and the last two 4x4 convs "
                     "take 2 more pixels; {} layers need at least {} px)",
                     o_.input_size, disc_layers_, (int64_t{1} << disc_layers_) * 3));
    disc_ = std::make_shared<PatchDiscriminator>(
        disc_layers_, width, bevt::Rng::derive(ctx.seed, {0x7065636f5f64ULL /* "peco_d" */}));
  }

  // VQGAN's adversarial term (see the file comment): the tokenizer's side is added to out.total, the
  // discriminator's loss on the same batch goes to out.adversary. Off before disc_start and outside training.
  void adversarial(const torch::Tensor& x, const torch::Tensor& recon_img, const torch::Tensor& nll,
                   bevt::TokenizerLoss& out) {
    torch::Tensor zero = torch::zeros({}, x.options());
    for (const char* k : {"adv", "adv_weight", "disc_loss", "logits_real", "logits_fake"}) out.terms[k] = zero;
    if (!disc_ || !is_training() || train_step_ < disc_start_) return;
    const int64_t side = std::min(x.size(2), x.size(3));
    if (PatchDiscriminator::output_side(side, disc_layers_) < 1)
      throw bevt::UserError(fmt::format("{}: {}x{} images are too small for a discriminator of disc_layers = {}",
                                        name_, x.size(2), x.size(3), disc_layers_));
    auto dp = disc_->parameters();
    if (!dp.empty() && dp.front().device() != x.device()) disc_->to(x.device());
    const bool hinge = disc_loss_ == "hinge";
    torch::Tensor fake_g;
    {
      NoParamGrad off(*disc_);
      fake_g = disc_->forward(recon_img);
    }
    torch::Tensor g = hinge ? -fake_g.mean() : F::softplus(-fake_g).mean();
    torch::Tensor lambda = zero;
    const torch::Tensor& last = decoder_->last_weight();
    if (torch::GradMode::is_enabled() && last.requires_grad() && nll.requires_grad() && g.requires_grad()) {
      torch::Tensor gn = torch::autograd::grad({nll}, {last}, {}, /*retain_graph=*/true)[0];
      torch::Tensor gg = torch::autograd::grad({g}, {last}, {}, /*retain_graph=*/true)[0];
      lambda = (gn.norm() / (gg.norm() + 1e-4)).clamp(0.0, 1e4).detach() * disc_weight_;
    }
    out.total = out.total + lambda * g;
    torch::Tensor real = disc_->forward(x.detach()), fake = disc_->forward(recon_img.detach());
    torch::Tensor d = hinge ? 0.5 * (torch::relu(1.0 - real).mean() + torch::relu(1.0 + fake).mean())
                            : 0.5 * (F::softplus(-real).mean() + F::softplus(fake).mean());
    out.adversary = d;
    out.terms["adv"] = g.detach();
    out.terms["adv_weight"] = lambda;
    out.terms["disc_loss"] = d.detach();
    out.terms["logits_real"] = real.detach().mean();
    out.terms["logits_fake"] = fake.detach().mean();
  }

  // Mean over the chosen stages of the squared distance between channel-normalised features (LPIPS-style
  // without learned weights). Gradient flows into `recon01` only.
  torch::Tensor perceptual(const torch::Tensor& images01, const torch::Tensor& recon01) {
    auto dev = images01.device();
    auto bp = backbone_->parameters();
    if (!bp.empty() && bp.front().device() != dev) backbone_->to(dev);
    backbone_->eval();
    torch::Tensor mean = torch::tensor(mean_, torch::kFloat32).to(dev).view({1, 3, 1, 1});
    torch::Tensor sd = torch::tensor(std_, torch::kFloat32).to(dev).view({1, 3, 1, 1});
    bevt::Features target;
    {
      torch::NoGradGuard ng;
      target = backbone_->forward_image((images01.to(torch::kFloat32) - mean) / sd);
    }
    bevt::Features pred = backbone_->forward_image((recon01 - mean) / sd);
    torch::Tensor total = torch::zeros({}, recon01.options());
    auto unit = [](const torch::Tensor& f) { return F::normalize(f, F::NormalizeFuncOptions().dim(1).eps(1e-10)); };
    for (const auto& s : stages_) {
      torch::Tensor a = unit(target.at(s)), b = unit(pred.at(s));
      total = total + (a - b).pow(2).sum(1).mean();
    }
    return total / double(stages_.size());
  }

  bool peco_;
  std::string name_;
  VqOptions o_;
  std::shared_ptr<Encoder> encoder_;
  std::shared_ptr<Quantizer> quantize_;
  std::shared_ptr<Decoder> decoder_;
  double perceptual_weight_ = 0;
  std::vector<std::string> stages_;
  std::vector<double> mean_, std_;
  std::shared_ptr<bevt::Backbone> backbone_;
  bool loaded_ = false;  // built from `weights`: the frozen tokenizer
  std::string where_, weights_path_;
  // Adversarial training (peco).
  std::shared_ptr<PatchDiscriminator> disc_;
  double disc_weight_ = 0, disc_lr_mult_ = 1;
  int64_t disc_start_ = 0, disc_layers_ = 3;
  std::string disc_loss_ = "hinge";
  int64_t train_step_ = 0;
};

class SmallVq : public VqTokenizer {
 public:
  static std::vector<bevt::KeySpec> keys() { return common_keys(vq_defaults()); }
  SmallVq(const bevt::Config& cfg, const bevt::BuildContext& ctx) : VqTokenizer(cfg, ctx, false) {}
};

class Peco : public VqTokenizer {
 public:
  static std::vector<bevt::KeySpec> keys() {
    using bevt::key;
    auto k = common_keys(peco_defaults());
    k.push_back(key("perceptual_weight", 1.0, "weight of the perceptual loss (0 = none; no backbone is built)"));
    k.push_back(key("perceptual_stages", std::vector<std::string>{"stage1", "stage2", "stage3", "stage4"},
                    "features of the backbone's forward_image compared between input and reconstruction"));
    k.push_back(key("perceptual_mean", std::vector<double>{0.485, 0.456, 0.406},
                    "per-channel mean subtracted from [0,1] images before the backbone"));
    k.push_back(key("perceptual_std", std::vector<double>{0.229, 0.224, 0.225},
                    "per-channel std dividing [0,1] images before the backbone"));
    k.push_back(bevt::table_key("perceptual",
                                "the frozen perceptual backbone: plugin = \"<backbone>\" plus its keys (weights = a "
                                "bevt/safetensors checkpoint); not needed by a tokenizer loaded from weights"));
    k.push_back(key("disc_weight", 0.8,
                    "adversarial loss weight (VQGAN's discriminator_weight, times its adaptive gradient-norm ratio); "
                    "0 = no discriminator"));
    k.push_back(key("disc_start", int64_t{250001},
                    "optimiser step (0-based) from which the adversarial loss is on (VQGAN's ImageNet config)"));
    k.push_back(key("disc_layers", int64_t{3}, "PatchGAN discriminator depth: stride-2 conv layers (pix2pix n_layers)"));
    k.push_back(key("disc_width", int64_t{64}, "channels of the discriminator's first layer (ndf), x2 per layer up to x8"));
    k.push_back(key("disc_loss", "hinge",
                    "\"hinge\" (VQGAN: D hinge, G -mean D(x_rec)) | \"non_saturating\" (softplus forms)"));
    k.push_back(key("disc_lr_mult", 1.0,
                    "discriminator learning rate relative to optim.lr (same schedule, betas and clipping)"));
    return k;
  }
  Peco(const bevt::Config& cfg, const bevt::BuildContext& ctx) : VqTokenizer(cfg, ctx, true) {}
};

}  // namespace

BEVT_REGISTER(bevt::plugin<bevt::Tokenizer, SmallVq>(
    "vq", "small trainable VQ-VAE tokenizer (cosine EMA codebook) for the no-download default"));
BEVT_REGISTER(bevt::plugin<bevt::Tokenizer, Peco>(
    "peco", "PeCo: VQ-VAE tokenizer trained with a perceptual loss from a frozen backbone plugin"));
