#include "host/dist/launcher.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>

#include "bevt/error.h"

namespace bevt::host::dist {

namespace {

constexpr int kMaxWorkers = 4096;
pid_t g_pids[kMaxWorkers];
volatile sig_atomic_t g_nworkers = 0;
volatile sig_atomic_t g_signal = 0;

extern "C" void forward_signal(int sig) {
  g_signal = sig;
  for (int i = 0; i < g_nworkers; ++i)
    if (g_pids[i] > 0) ::kill(g_pids[i], sig);
}

const int kForwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

std::string describe_status(int st) {
  if (WIFEXITED(st)) return fmt::format("exited with status {}", WEXITSTATUS(st));
  if (WIFSIGNALED(st))
    return fmt::format("was killed by signal {} ({})", WTERMSIG(st), ::strsignal(WTERMSIG(st)));
  return "ended";
}

}  // namespace

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw RunError(fmt::format("--nproc: cannot open a socket to find a free port: {}", std::strerror(errno)));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof(a);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    throw RunError(fmt::format("--nproc: cannot find a free port on 127.0.0.1: {}", std::strerror(errno)));
  }
  int port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

int launch_local(int nproc, const std::vector<std::string>& args, double grace_s) {
  if (nproc < 1 || nproc > kMaxWorkers)
    throw UserError(fmt::format("--nproc {}: the number of workers must be in [1, {}]", nproc, kMaxWorkers));
  if (std::getenv("RANK") || std::getenv("WORLD_SIZE"))
    throw UserError("--nproc inside a launch that already sets RANK / WORLD_SIZE (torchrun?): use one launcher");
  std::error_code ec;
  const std::string exe = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  if (ec) throw RunError(fmt::format("--nproc: cannot find this program's path: {}", ec.message()));
  const char* port_env = std::getenv("MASTER_PORT");
  const std::string port = port_env && *port_env ? std::string(port_env) : std::to_string(free_port());
  // CPU threads: share the cores between the workers unless the user chose.
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const std::string threads = std::to_string(std::max(1u, cores / static_cast<unsigned>(nproc)));

  std::vector<std::string> argv_s;
  argv_s.push_back(exe);
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : argv_s) argv.push_back(s.data());
  argv.push_back(nullptr);

  struct sigaction sa {};
  sa.sa_handler = forward_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  struct sigaction old[sizeof(kForwarded) / sizeof(kForwarded[0])];
  for (size_t k = 0; k < sizeof(kForwarded) / sizeof(kForwarded[0]); ++k) sigaction(kForwarded[k], &sa, &old[k]);

  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t parent = ::getpid();
  for (int r = 0; r < nproc; ++r) {
    pid_t pid = ::fork();
    if (pid < 0) {
      forward_signal(SIGTERM);
      throw RunError(fmt::format("--nproc: cannot start worker {}: {}", r, std::strerror(errno)));
    }
    if (pid == 0) {
      for (size_t k = 0; k < sizeof(kForwarded) / sizeof(kForwarded[0]); ++k) sigaction(kForwarded[k], &old[k], nullptr);
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);  // the workers end with the launcher
      if (::getppid() != parent) ::_exit(1);
      ::setenv("RANK", std::to_string(r).c_str(), 1);
      ::setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
      ::setenv("WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      ::setenv("LOCAL_WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      ::setenv("MASTER_ADDR", "127.0.0.1", 1);
      ::setenv("MASTER_PORT", port.c_str(), 1);
      ::setenv("OMP_NUM_THREADS", threads.c_str(), 0);
      ::execv(exe.c_str(), argv.data());
      std::fprintf(stderr, "bevt-run: error: --nproc: cannot start %s: %s\n", exe.c_str(), std::strerror(errno));
      ::_exit(127);
    }
    g_pids[r] = pid;
    g_nworkers = r + 1;
  }

  using Clock = std::chrono::steady_clock;
  int alive = nproc;
  int first_failure_status = 0;  // exit status of the first failing worker (or -1 for a signal)
  bool stopping = false, killed = false;
  Clock::time_point kill_at;
  auto stop_others = [&] {
    stopping = true;
    kill_at = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(grace_s));
    for (int i = 0; i < nproc; ++i)
      if (g_pids[i] > 0) ::kill(g_pids[i], SIGTERM);
  };
  while (alive > 0) {
    int st = 0;
    pid_t pid = ::waitpid(-1, &st, WNOHANG);
    if (pid > 0) {
      int r = 0;
      while (r < nproc && g_pids[r] != pid) ++r;
      if (r == nproc) continue;
      g_pids[r] = -1;
      --alive;
      const bool ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
      if (!ok && !stopping && !g_signal) {
        first_failure_status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        std::fprintf(stderr, "bevt-run: error: worker rank %d (pid %d) %s; stopping the other %d worker(s)\n", r,
                     static_cast<int>(pid), describe_status(st).c_str(), alive);
        std::fflush(stderr);
        stop_others();
      }
      continue;
    }
    if (pid < 0 && errno != EINTR) break;
    if (g_signal && !stopping) {
      stopping = true;
      kill_at = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(grace_s));
    }
    if (stopping && !killed && Clock::now() > kill_at) {
      killed = true;
      for (int i = 0; i < nproc; ++i)
        if (g_pids[i] > 0) ::kill(g_pids[i], SIGKILL);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  g_nworkers = 0;
  for (size_t k = 0; k < sizeof(kForwarded) / sizeof(kForwarded[0]); ++k) sigaction(kForwarded[k], &old[k], nullptr);
  if (g_signal && first_failure_status == 0) {
    std::fprintf(stderr, "bevt-run: error: interrupted by signal %d (%s); the workers were stopped\n",
                 static_cast<int>(g_signal), ::strsignal(g_signal));
    return 1;
  }
  if (first_failure_status == 0) return 0;
  return first_failure_status == 2 ? 2 : 1;
}

}  // namespace bevt::host::dist
