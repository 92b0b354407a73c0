// `bevt-run --nproc N`: a small local launcher for users without torchrun. It starts N copies of this program
// with the variables torchrun would set (RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR =
// 127.0.0.1, MASTER_PORT = a free port unless set), forwards SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and
// SIGUSR2 to them, and when one worker fails stops the others (SIGTERM, then SIGKILL after a grace period).
#pragma once

#include <string>
#include <vector>

namespace bevt::host::dist {

// Runs the workers and returns the launcher's exit status: 0 when every worker succeeded; 2 when the first
// failing worker reported bad input (status 2); 1 otherwise (a failed, killed or interrupted worker). Each
// failure is reported on one line naming the worker's rank. `args` are the worker's arguments (argv[1..]
// without --nproc).
int launch_local(int nproc, const std::vector<std::string>& args, double grace_s = 10.0);

// A TCP port that was free on 127.0.0.1 a moment ago.
int free_port();

}  // namespace bevt::host::dist
