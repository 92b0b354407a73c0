// The one place torch's umbrella header is included; the build precompiles it for every target.
#pragma once

#include <torch/torch.h>
