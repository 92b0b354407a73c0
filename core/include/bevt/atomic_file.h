// Atomic file writes (checkpoints, results, safetensors): a temporary file beside the destination, fsync, rename, fsync of the folder.
// A crash or a full disk leaves the old file (or none), never a truncated one.
#pragma once

#include <string>

namespace bevt {

class AtomicFile {
 public:
  explicit AtomicFile(std::string path);  // throws UserError when the folder is not writable
  ~AtomicFile();                           // removes the temporary file unless committed
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  void write(const void* data, size_t size);  // throws UserError (e.g. disk full), naming the file
  void commit();

 private:
  std::string path_, tmp_;
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace bevt
