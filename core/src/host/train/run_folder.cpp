#include "run_folder.h"

#include <fmt/format.h>

#include <ctime>
#include <filesystem>
#include <system_error>

#include "bevt/error.h"

namespace fs = std::filesystem;

namespace bevt::host::train {

namespace {
std::string local_stamp() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d_%H%M%S", &tm);
  return buf;
}
}  // namespace

RunFolder open_run_folder(const std::string& work_dir) {
  const fs::path root(work_dir);
  const fs::path latest = root / "latest";
  RunFolder out;
  std::error_code ec;
  if (fs::is_symlink(latest, ec)) {
    fs::path target = fs::read_symlink(latest, ec);
    if (!ec) out.previous = (target.is_absolute() ? target : root / target).string();
  }
  fs::create_directories(root / "runs");
  const std::string stamp = local_stamp();
  std::string name = stamp;
  // create_directory is the claim: false when a run of the same second took the name first.
  for (int k = 2; !fs::create_directory(root / "runs" / name); ++k) name = fmt::format("{}_{}", stamp, k);
  out.dir = (root / "runs" / name).string();
  // A new link beside the old one, renamed over it: readers never see a work_dir without `latest`.
  const fs::path tmp = root / fmt::format(".latest.{}", name);
  fs::remove(tmp, ec);
  fs::create_directory_symlink(fs::path("runs") / name, tmp, ec);
  if (!ec) fs::rename(tmp, latest, ec);
  if (ec)
    throw UserError(fmt::format("{}: cannot point {} at runs/{} ({}); check the folder's permissions", work_dir,
                                latest.string(), name, ec.message()));
  return out;
}

std::string latest_record(const std::string& work_dir, const std::string& name) {
  const fs::path in_latest = fs::path(work_dir) / "latest" / name;
  std::error_code ec;
  if (fs::exists(in_latest, ec)) return in_latest.string();
  return (fs::path(work_dir) / name).string();
}

}  // namespace bevt::host::train
