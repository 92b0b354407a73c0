// The yardstick the CPU benchmarks read their rates against: the GFLOP/s of one 2048^3 float32 at::mm in the
// same process, on the BLAS the torch build ships (oneMKL in the wheel). A rate "x% of sgemm" is only meaningful
// when both figures come from the same run, since this VM's speed moves by up to 20% between runs.
#pragma once

#include <ATen/ATen.h>

#include "bench_harness.h"

namespace bevt::bench {

inline double sgemm_gflops(int reps = 5) {
  auto a = at::randn({2048, 2048}), b = at::randn({2048, 2048});
  auto r = time_case("sgemm", 2, reps, [&] { (void)at::mm(a, b); });
  return 2.0 * 2048.0 * 2048.0 * 2048.0 / r.median_s / 1e9;
}

}  // namespace bevt::bench
