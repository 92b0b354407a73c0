// The EMA against mmcv 1.x's EMAHook (mmcv/runner/hooks/ema.py), by hand: after every iteration
// avg = (1 − m)·avg + m·param with m = min(momentum, (1 + iter) / (warm_up + iter)), iter = runner.iter.
#include <gtest/gtest.h>

#include "bevt/error.h"
#include "host/train/ema.h"

namespace tr = bevt::host::train;

namespace {

tr::NamedParam param(const std::string& name, std::vector<float> v) {
  return {name, torch::tensor(v).requires_grad_(true)};
}

void set(tr::NamedParam& p, std::vector<float> v) {
  torch::NoGradGuard ng;
  p.param.copy_(torch::tensor(v));
}

void expect_avg(const tr::Ema& e, const std::string& name, std::vector<double> want) {
  torch::Tensor got = e.state().at(name);
  ASSERT_EQ(got.numel(), static_cast<int64_t>(want.size()));
  for (size_t i = 0; i < want.size(); ++i)
    EXPECT_NEAR(got[static_cast<int64_t>(i)].item<double>(), want[i], 1e-6) << name << "[" << i << "]";
}

}  // namespace

TEST(Ema, MomentumIsTheHooksPerIteration) {
  // BEVT's SSv2 fine-tune (the hook's defaults): (1 + i) / (100 + i) >= 0.01 > 2e-4, so no warm-up at all.
  for (int64_t i : {0, 1, 7, 8, 99, 100000}) EXPECT_DOUBLE_EQ(tr::Ema::momentum_at(2e-4, 100, i), 2e-4) << i;
  // Where the warm-up bites: momentum 0.9, warm_up 4.
  EXPECT_DOUBLE_EQ(tr::Ema::momentum_at(0.9, 4, 0), 0.25);       // 1/4
  EXPECT_DOUBLE_EQ(tr::Ema::momentum_at(0.9, 4, 1), 0.4);        // 2/5
  EXPECT_DOUBLE_EQ(tr::Ema::momentum_at(0.9, 4, 2), 0.5);        // 3/6
  EXPECT_DOUBLE_EQ(tr::Ema::momentum_at(0.9, 4, 3), 4.0 / 7.0);  // 4/7
  EXPECT_DOUBLE_EQ(tr::Ema::momentum_at(0.9, 4, 10), 11.0 / 14.0);
  EXPECT_DOUBLE_EQ(tr::Ema::momentum_at(0.9, 4, 26), 0.9);  // 27/30 = 0.9
  EXPECT_DOUBLE_EQ(tr::Ema::momentum_at(0.9, 4, 1000), 0.9);
  EXPECT_DOUBLE_EQ(tr::Ema::momentum_at(0.3, 0, 0), 0.3);  // no warm-up: the hook would divide by zero
}

// Two steps of gradient accumulation over 2 iterations: iterations 0 and 2 see the weights before a step, 1 and
// 3 the weights after it (the optimiser hook runs first). The momentum weighs the NEW value.
TEST(Ema, HandComputedSequence) {
  std::vector<tr::NamedParam> p = {param("backbone.w", {1, 2}), param("cls_head.fc_cls.bias", {-1})};
  tr::Ema ema(p, 0.9, 4);
  expect_avg(ema, "backbone.w", {1, 2});  // starts as the weights
  ema.update(0);                          // m = 1/4 of the same weights: unchanged
  expect_avg(ema, "backbone.w", {1, 2});
  set(p[0], {3, 4});
  set(p[1], {1});
  ema.update(1);                                      // m = 2/5
  expect_avg(ema, "backbone.w", {1.8, 2.8});          // 0.6·[1,2] + 0.4·[3,4]
  expect_avg(ema, "cls_head.fc_cls.bias", {-0.2});    // 0.6·(−1) + 0.4·1
  ema.update(2);                                      // m = 1/2, same weights again
  expect_avg(ema, "backbone.w", {2.4, 3.4});          // 0.5·[1.8,2.8] + 0.5·[3,4]
  expect_avg(ema, "cls_head.fc_cls.bias", {0.4});     // 0.5·(−0.2) + 0.5·1
  set(p[0], {0, 0});
  ema.update(3);                                      // m = 4/7
  expect_avg(ema, "backbone.w", {2.4 * 3 / 7, 3.4 * 3 / 7});
  expect_avg(ema, "cls_head.fc_cls.bias", {0.4 * 3 / 7 + 4.0 / 7});

  // Evaluation swaps the averages in and back out; the live weights are untouched by the round trip.
  ema.swap();
  EXPECT_NEAR(p[0].param[1].item<double>(), 3.4 * 3 / 7, 1e-6);
  expect_avg(ema, "backbone.w", {0, 0});
  ema.swap();
  EXPECT_EQ(p[0].param[1].item<float>(), 0.0f);
  expect_avg(ema, "backbone.w", {2.4 * 3 / 7, 3.4 * 3 / 7});
}

// Resume: the saved averages come back exactly; a state without one of them names it.
TEST(Ema, StateRoundTripAndMissingTensor) {
  std::vector<tr::NamedParam> p = {param("a", {1, 2}), param("b", {3})};
  tr::Ema ema(p, 0.5, 1);
  set(p[0], {5, 6});
  ema.update(0);
  bevt::TensorMap saved;
  for (const auto& [k, v] : ema.state()) saved[k] = v.clone();
  tr::Ema other(p, 0.5, 1);
  other.load_state(saved, "ema.safetensors");
  expect_avg(other, "a", {3, 4});
  saved.erase("b");
  try {
    other.load_state(saved, "step_4/ema.safetensors");
    FAIL() << "no error";
  } catch (const bevt::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("step_4/ema.safetensors: no averaged weight of the right shape for 'b'"),
              std::string::npos)
        << e.what();
  }
}
