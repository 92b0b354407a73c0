// The two kinds of failure a user can meet, mapped to exit statuses by the executables (DESIGN.md):
// UserError = bad input (command line, experiment file, weights, dataset layout) → exit 2;
// RunError = a failure during a run (diverged, too many bad files, a dead worker) → exit 1.
// Messages are one line that names the file, key or line and what to do.
#pragma once

#include <stdexcept>
#include <string>

namespace bevt {

class UserError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class RunError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace bevt
