// The masked-token metrics of pre-training: loss/accuracy on masked positions only, and the copy baseline.
#include <gtest/gtest.h>

#include "host/train/mim_metrics.h"
#include "test_sandbox.h"

using bevt::host::train::copy_baseline_accuracy;
using bevt::host::train::masked_regression_terms;
using bevt::host::train::masked_token_terms;

namespace {
torch::Tensor ids(std::vector<std::vector<int64_t>> rows) {
  std::vector<torch::Tensor> t;
  for (auto& r : rows) t.push_back(torch::tensor(r, torch::kInt64));
  return torch::stack(t);
}
torch::Tensor bools(std::vector<std::vector<int64_t>> rows) { return ids(std::move(rows)).to(torch::kBool); }
}  // namespace

TEST(MimMetrics, CopyBaselinePredictsEachSamplesModalVisibleToken) {
  // Sample 0: visible 1, 1, 2 → predicts 1; its masked 1, 3: one hit.
  // Sample 1: visible 4, 0 (a tie) → the smaller id, 0; its masked 5, 4, 4: no hit.
  // Sample 2: visible 7, 7 → 7; its masked 0, 2, 2: no hit. One hit in eight masked cells.
  auto tokens = ids({{1, 1, 2, 1, 3}, {4, 5, 4, 4, 0}, {0, 2, 2, 7, 7}});
  auto mask = bools({{0, 0, 0, 1, 1}, {0, 1, 1, 1, 0}, {1, 1, 1, 0, 0}});
  EXPECT_NEAR(copy_baseline_accuracy(tokens, mask, 8).item<double>(), 1.0 / 8.0, 1e-7);
  // A solid sample is copied exactly; with nothing visible the prediction is id 0; with nothing masked, 0.
  auto solid = ids({{3, 3, 3, 3}});
  EXPECT_DOUBLE_EQ(copy_baseline_accuracy(solid, bools({{0, 1, 1, 0}}), 4).item<double>(), 1.0);
  EXPECT_DOUBLE_EQ(copy_baseline_accuracy(solid, bools({{1, 1, 1, 1}}), 4).item<double>(), 0.0);
  EXPECT_DOUBLE_EQ(copy_baseline_accuracy(ids({{0, 0, 0, 0}}), bools({{1, 1, 1, 1}}), 4).item<double>(), 1.0);
  EXPECT_DOUBLE_EQ(copy_baseline_accuracy(solid, bools({{0, 0, 0, 0}}), 4).item<double>(), 0.0);
}

TEST(MimMetrics, TermsCountMaskedPositionsOnlyAndNameTheStream) {
  // Logits that pick token 2 everywhere; targets 2 at the masked cells except one.
  auto tokens = ids({{2, 2, 0, 1}, {2, 2, 2, 2}}).reshape({2, 2, 2});
  auto mask = bools({{1, 0, 1, 0}, {1, 1, 0, 0}}).reshape({2, 2, 2});
  auto logits = torch::zeros({2, 4, 3});
  logits.index_put_({torch::indexing::Slice(), torch::indexing::Slice(), 2}, 5.0);
  auto out = masked_token_terms(logits, tokens, mask, "video");
  ASSERT_EQ(out.size(), 3u);
  EXPECT_NEAR(out.at("acc_video").item<double>(), 3.0 / 4.0, 1e-7);
  // Sample 0's visible 2, 1 tie → 1: masked 2, 0 miss; sample 1's visible 2, 2 → 2: masked 2, 2 hit.
  EXPECT_NEAR(out.at("copy_video").item<double>(), 2.0 / 4.0, 1e-7);
  auto l = logits.reshape({-1, 3}).index({mask.reshape({-1})});
  auto expect = torch::nn::functional::cross_entropy(l, tokens.reshape({-1}).index({mask.reshape({-1})}));
  EXPECT_NEAR(out.at("loss_video").item<double>(), expect.item<double>(), 1e-6);
  auto err = bevt::test::error_of([&] { masked_token_terms(torch::zeros({2, 5, 3}), tokens, mask, "video"); });
  EXPECT_NE(err.find("the decoder predicts 5 positions but the tokenizer gives 4 targets"), std::string::npos) << err;
  // The same terms from the masked rows' logits alone (what the pre-training step computes).
  const torch::Tensor rows = mask.reshape({-1}).nonzero().squeeze(1);
  ASSERT_EQ(rows.numel(), 4);
  auto at = bevt::host::train::masked_token_terms_at(logits.reshape({-1, 3}).index_select(0, rows), rows, tokens,
                                                     mask, "video");
  for (const auto& [k, v] : out) EXPECT_NEAR(at.at(k).item<double>(), v.item<double>(), 1e-7) << k;
}

TEST(MimMetrics, RegressionTermsAreTheMaskedMeanSquaredErrorBesideThatOfPredictingZeros) {
  // 2 samples of a 2x2 grid, 3 values per cell; 3 cells masked.
  torch::Tensor targets = torch::arange(24, torch::kFloat32).reshape({2, 2, 2, 3}) / 10.0;
  torch::Tensor mask = bools({{1, 0, 0, 1}, {0, 1, 0, 0}}).reshape({2, 2, 2});
  torch::Tensor pred = torch::full({2, 4, 3}, 0.5);
  auto out = masked_regression_terms(pred, targets, mask, "image");
  ASSERT_EQ(out.size(), 2u);
  torch::Tensor m = mask.reshape({2, 4}), t = targets.reshape({2, 4, 3});
  double loss = 0, zero = 0;
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t l = 0; l < 4; ++l)
      if (m[b][l].item<bool>())
        for (int64_t k = 0; k < 3; ++k) {
          const double v = t[b][l][k].item<double>();
          loss += (v - 0.5) * (v - 0.5) / 3.0 / 3.0;  // mean over the 3 values, then over the 3 masked cells
          zero += v * v / 3.0 / 3.0;
        }
  EXPECT_NEAR(out.at("loss_image").item<double>(), loss, 1e-5);
  EXPECT_NEAR(out.at("zero_image").item<double>(), zero, 1e-5);
  // The visible cells do not count: changing their prediction changes nothing.
  torch::Tensor other = pred.clone();
  other.index_put_({~m}, 100.0);
  EXPECT_NEAR(masked_regression_terms(other, targets, mask, "image").at("loss_image").item<double>(), loss, 1e-5);
  // Gradients reach the prediction.
  torch::Tensor p = pred.clone().requires_grad_(true);
  masked_regression_terms(p, targets, mask, "image").at("loss_image").backward();
  EXPECT_GT(p.grad().abs().sum().item<double>(), 0.0);
  EXPECT_EQ(p.grad().index({~m}).abs().sum().item<double>(), 0.0);
  auto err = bevt::test::error_of([&] { masked_regression_terms(torch::zeros({2, 5, 3}), targets, mask, "video"); });
  EXPECT_NE(err.find("the decoder predicts 5 positions"), std::string::npos) << err;
  err = bevt::test::error_of([&] { masked_regression_terms(torch::zeros({2, 4, 7}), targets, mask, "video"); });
  EXPECT_NE(err.find("7 values per cell but the targets have 3"), std::string::npos) << err;
}
