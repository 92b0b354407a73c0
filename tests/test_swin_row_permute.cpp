// Video Swin's window partition with a permutation as its backward (plugins/backbones/video_swin/row_permute):
// on real plans (padding + cyclic shift, images and clips) the gather reads each token exactly once, and the
// gradients through permute_rows equal index_select's own (scatter-add) gradients bit for bit, both ways.
#include <gtest/gtest.h>

#include "row_permute.h"
#include "window_plan.h"

namespace {

using bevt::swin::Dims3;

void expect_same_as_index_select(const bevt::swin::WindowPlan& p, int64_t C) {
  const int64_t R = p.scatter.size(0);
  // Every real row is read once; the other gathered positions read the appended zero row.
  auto counts = torch::bincount(p.gather, {}, R + 1);
  EXPECT_TRUE(counts.narrow(0, 0, R).eq(1).all().item<bool>());
  EXPECT_EQ(counts[R].item<int64_t>() > 0, p.pad);

  torch::manual_seed(0);
  auto h = torch::randn({R, C}, torch::requires_grad());
  auto gw = torch::randn({p.gather.size(0), C});
  auto gy = torch::randn({R, C});
  // Reference: the autograd of cat + index_select (index_add in backward).
  auto h_ref = h.detach().clone().requires_grad_();
  auto src = p.pad ? torch::cat({h_ref, torch::zeros({1, C})}, 0) : h_ref;
  auto w_ref = src.index_select(0, p.gather);
  auto y_ref = (w_ref * 1.0).index_select(0, p.scatter);
  auto w = bevt::swin::permute_rows(h, p.gather, p.pad, p.scatter, false);
  auto y = bevt::swin::permute_rows(w * 1.0, p.scatter, false, p.gather, p.pad);
  EXPECT_TRUE(torch::equal(w, w_ref));
  EXPECT_TRUE(torch::equal(y, y_ref));
  ((w_ref * gw).sum() + (y_ref * gy).sum()).backward();
  ((w * gw).sum() + (y * gy).sum()).backward();
  EXPECT_TRUE(torch::equal(h.grad(), h_ref.grad()));
}

TEST(swin_row_permute, GradientsEqualIndexSelectOnPaddedShiftedPlans) {
  struct Case {
    bevt::swin::PlanMode mode;
    int64_t batch;
    Dims3 grid;
  };
  const Case cases[] = {{bevt::swin::PlanMode::Video, 2, {4, 14, 14}},   // shift, no padding
                        {bevt::swin::PlanMode::Video, 1, {3, 9, 10}},    // temporal + spatial padding
                        {bevt::swin::PlanMode::ImageBevt, 2, {1, 14, 14}},
                        {bevt::swin::PlanMode::ImageSwin, 1, {1, 11, 9}}};
  int checked = 0;
  for (const auto& c : cases) {
    auto stage = bevt::swin::make_stage_plan(c.mode, c.batch, c.grid, {8, 7, 7});
    for (const auto& p : stage->plans) {
      if (p.identity) continue;
      SCOPED_TRACE(::testing::Message() << "grid " << c.grid[0] << "x" << c.grid[1] << "x" << c.grid[2]
                                        << (p.pad ? " padded" : ""));
      expect_same_as_index_select(p, 5);
      ++checked;
    }
  }
  EXPECT_GE(checked, 6);
}

TEST(swin_row_permute, NoGraphWithoutGrad) {
  auto stage = bevt::swin::make_stage_plan(bevt::swin::PlanMode::Video, 1, {3, 9, 10}, {8, 7, 7});
  const auto& p = stage->plans[1];
  auto h = torch::randn({p.scatter.size(0), 4}, torch::requires_grad());
  torch::NoGradGuard ng;
  EXPECT_FALSE(bevt::swin::permute_rows(h, p.gather, p.pad, p.scatter, false).requires_grad());
}

}  // namespace
