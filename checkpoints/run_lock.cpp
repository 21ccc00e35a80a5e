#include "checkpoints/run_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace longgan::checkpoints {

RunLock::RunLock(const std::filesystem::path& run_dir) : path_(run_dir / "lock") {
  std::filesystem::create_directories(run_dir);
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw std::runtime_error("cannot open lock file '" + path_.string() + "': " + std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    int error = errno;
    std::string holder;
    char buffer[32] = {};
    ssize_t n = ::pread(fd_, buffer, sizeof(buffer) - 1, 0);
    for (ssize_t i = 0; i < n && buffer[i] >= '0' && buffer[i] <= '9'; ++i) holder += buffer[i];
    ::close(fd_);
    fd_ = -1;
    if (error == EWOULDBLOCK) {
      throw RunLockedError("run directory '" + run_dir.string() + "' is in use by another longgan train (pid " +
                           (holder.empty() ? std::string("unknown") : holder) + ", lock file '" + path_.string() +
                           "'): wait for it to finish or stop it, or choose another --out");
    }
    throw std::runtime_error("cannot lock '" + path_.string() + "': " + std::strerror(error));
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    int error = errno;
    ::close(fd_);
    fd_ = -1;
    throw std::runtime_error("cannot write lock file '" + path_.string() + "': " + std::strerror(error));
  }
}

RunLock::~RunLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the lock; the file stays (removing it would race a new locker)
}

}  // namespace longgan::checkpoints
