// The closed-form linear probe behind run.mode = "token_probe": its leave-one-out shortcut against refitting,
// its choice of ridge, and its errors.
#include <gtest/gtest.h>

#include "bevt/error.h"
#include "host/train/ridge_probe.h"

using bevt::host::train::fit_ridge_probe;

namespace {

// Leave-one-out top-1 of ridge `lambda` with an unpenalised intercept, by refitting N times.
double refit_loo(const torch::Tensor& x, const torch::Tensor& y, int64_t classes, double lambda) {
  const int64_t n = x.size(0);
  int64_t hits = 0;
  for (int64_t i = 0; i < n; ++i) {
    const torch::Tensor keep = torch::arange(n) != i;
    const torch::Tensor xi = x.index({keep}), yi = torch::one_hot(y.index({keep}), classes).to(torch::kFloat64);
    const torch::Tensor mx = xi.mean(0), my = yi.mean(0);
    const torch::Tensor xc = xi - mx;
    const torch::Tensor eye = torch::eye(x.size(1), torch::kFloat64);
    const torch::Tensor w = torch::linalg_solve(xc.t().mm(xc) + lambda * eye, xc.t().mm(yi - my), true);
    const torch::Tensor pred = ((x[i] - mx).unsqueeze(0).mm(w) + my).argmax(1);
    hits += pred.item<int64_t>() == y[i].item<int64_t>();
  }
  return static_cast<double>(hits) / static_cast<double>(n);
}

}  // namespace

TEST(RidgeProbe, LeaveOneOutShortcutEqualsRefittingWithMoreOrFewerFeaturesThanSamples) {
  for (auto [n, d] : {std::pair<int64_t, int64_t>{30, 80}, {60, 6}}) {
    torch::Generator gen = at::detail::createCPUGenerator(static_cast<uint64_t>(n));
    const torch::Tensor y = torch::randint(0, 3, {n}, gen);
    // Weakly informative features: the leave-one-out accuracy varies with the ridge.
    const torch::Tensor x = torch::randn({n, d}, gen, torch::kFloat64) + 0.7 * torch::one_hot(y, d).to(torch::kFloat64);
    const auto p = fit_ridge_probe(x, y, 3);
    ASSERT_EQ(p.lambdas.size(), 13u);
    ASSERT_EQ(p.loo.size(), 13u);
    for (size_t k = 0; k < p.lambdas.size(); ++k)
      EXPECT_DOUBLE_EQ(p.loo[k], refit_loo(x, y, 3, p.lambdas[k])) << "n " << n << " d " << d << " ridge " << p.lambdas[k];
    // The chosen ridge has the best leave-one-out top-1, and the largest such ridge wins a tie.
    double best = *std::max_element(p.loo.begin(), p.loo.end());
    EXPECT_DOUBLE_EQ(p.loo_top1, best);
    size_t last_best = 0;
    for (size_t k = 0; k < p.loo.size(); ++k)
      if (p.loo[k] == best) last_best = k;
    EXPECT_DOUBLE_EQ(p.lambda, p.lambdas[last_best]);
    for (size_t k = 1; k < p.lambdas.size(); ++k) EXPECT_GT(p.lambdas[k], p.lambdas[k - 1]);
  }
}

TEST(RidgeProbe, SeparableClassesArePredictedAndConstantFeaturesGiveTheMajority) {
  torch::Generator gen = at::detail::createCPUGenerator(7);
  const torch::Tensor y = torch::arange(90) % 3;
  const torch::Tensor centres = torch::tensor({{4.0, 0.0}, {0.0, 4.0}, {-4.0, -4.0}}, torch::kFloat64);
  const torch::Tensor x = centres.index({y}) + 0.3 * torch::randn({90, 2}, gen, torch::kFloat64);
  const auto p = fit_ridge_probe(x.to(torch::kFloat32), y, 3);  // float features are computed in float64
  EXPECT_DOUBLE_EQ(p.loo_top1, 1.0);
  const torch::Tensor yt = torch::arange(30) % 3;
  const torch::Tensor xt = centres.index({yt}) + 0.3 * torch::randn({30, 2}, gen, torch::kFloat64);
  EXPECT_TRUE(torch::equal(p.predict(xt), yt));
  // Features that say nothing: every sample gets the most frequent training class.
  const torch::Tensor yc = torch::tensor({0, 1, 1, 2, 1}, torch::kLong);
  const auto c = fit_ridge_probe(torch::ones({5, 4}), yc, 3);
  EXPECT_TRUE(torch::equal(c.predict(torch::randn({3, 4}, gen)), torch::ones({3}, torch::kLong)));
  EXPECT_DOUBLE_EQ(c.loo_top1, 0.6);
}

TEST(RidgeProbe, BadInputsAreUserErrors) {
  EXPECT_THROW(fit_ridge_probe(torch::zeros({1, 3}), torch::zeros({1}, torch::kLong), 2), bevt::UserError);
  EXPECT_THROW(fit_ridge_probe(torch::zeros({4, 3}), torch::tensor({0, 1, 2, 1}), 2), bevt::UserError);
  EXPECT_THROW(fit_ridge_probe(torch::zeros({4, 3}), torch::tensor({0, 1, -1, 1}), 2), bevt::UserError);
  EXPECT_THROW(fit_ridge_probe(torch::zeros({4, 3}), torch::zeros({3}, torch::kLong), 2), bevt::UserError);
  EXPECT_THROW(fit_ridge_probe(torch::zeros({4}), torch::zeros({4}, torch::kLong), 2), bevt::UserError);
}
