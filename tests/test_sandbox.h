// Helpers for tests: temporary folders, files, and running the real executables.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>

#include "bevt/error.h"
#include "bevt/torch.h"

namespace bevt::test {

// A fresh folder for one test process: ctest runs test cases in parallel processes, so the name carries
// the process id and two cases never share (or wipe) each other's files.
inline std::filesystem::path temp_dir(const std::string& name) {
  auto d = std::filesystem::path(BEVT_TEST_TMP) / (name + "." + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

// A whole file as bytes ("" when it cannot be read).
inline std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline void write_file(const std::filesystem::path& p, const std::string& text) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

struct CmdResult {
  int status = -1;     // exit status, or 128+signal
  std::string output;  // stdout and stderr together
};

// Runs a shell command line; stderr is merged into the captured output.
inline CmdResult run(const std::string& cmd) {
  CmdResult r;
  std::FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
  int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return r;
}

// The message of the UserError f throws, or "(no UserError)".
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const bevt::UserError& e) {
    return e.what();
  }
  return "(no UserError)";
}

// "[a, b, c]": the shape notation of the reference key lists in tests/reference/keys.
inline std::string shape_str(const torch::Tensor& t) {
  std::string s = "[";
  for (int64_t d = 0; d < t.dim(); ++d) s += (d ? ", " : "") + std::to_string(t.size(d));
  return s + "]";
}

inline std::string bin(const std::string& tool) { return std::string(BEVT_BIN_DIR) + "/" + tool; }
inline std::string test_plugins(const std::string& sub) { return std::string(BEVT_TEST_PLUGIN_DIR) + "/" + sub; }

}  // namespace bevt::test
