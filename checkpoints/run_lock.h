#pragma once
// An exclusive lock on a run directory for the life of a trainer: flock on RUN/lock, which the
// kernel releases on any exit (even kill -9), so a stale lock file never blocks a later run.
// The file holds the holder's pid, for the message of the trainer that is refused.
#include <filesystem>
#include <stdexcept>

namespace longgan::checkpoints {

// Thrown when another process holds the lock; the message names its pid and the directory.
struct RunLockedError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class RunLock {
 public:
  // Creates `run_dir` if needed and takes the lock without waiting; RunLockedError when another
  // process holds it, std::runtime_error naming the file for other failures.
  explicit RunLock(const std::filesystem::path& run_dir);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
};

}  // namespace longgan::checkpoints
