// TensorBoard event files: work_dir/events.out.tfevents.<seconds>.<host>, written as TensorFlow does (TFRecord
// framing with masked CRC-32C; Event and Summary protobuf messages encoded by hand, a dozen bytes of wire
// format, so no protobuf runtime is linked). One scalar per logged term: train/<term> for training windows,
// val/<metric> for evaluations. [log] tensorboard = false turns it off.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "step_metrics.h"

namespace bevt::host::train {

std::unique_ptr<MetricsSink> tensorboard_sink(const std::string& work_dir);

// CRC-32C (Castagnoli) of `data` and TFRecord's masked form of it; exposed for the tests.
uint32_t crc32c(const void* data, size_t size);
uint32_t masked_crc32c(const void* data, size_t size);

}  // namespace bevt::host::train
