#include "checkpoints/atomic_file.h"

#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace longgan::checkpoints {
namespace {

[[noreturn]] void fail(const std::string& what, const std::filesystem::path& path, int error) {
  std::string message = what + " '" + path.string() + "': " + std::strerror(error);
  if (error == ENOSPC || error == EDQUOT) {
    message += " (the disk is full: free space on it; nothing partial was left behind, earlier files are intact)";
  }
  throw std::runtime_error(message);
}

}  // namespace

void write_file_durable(const std::filesystem::path& path, std::string_view bytes) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("cannot create", path, errno);
  const char* data = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    ssize_t written = ::write(fd, data, left);
    if (written < 0) {
      if (errno == EINTR) continue;
      int error = errno;
      ::close(fd);
      fail("cannot write", path, error);
    }
    data += written;
    left -= static_cast<size_t>(written);
  }
  if (::fsync(fd) != 0) {
    int error = errno;
    ::close(fd);
    fail("cannot flush (fsync)", path, error);
  }
  if (::close(fd) != 0) fail("cannot close", path, errno);
}

void fsync_directory(const std::filesystem::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) fail("cannot open directory", dir, errno);
  int rc = ::fsync(fd);
  int error = errno;
  ::close(fd);
  // Some file systems refuse fsync on directories (EINVAL); their renames are still ordered.
  if (rc != 0 && error != EINVAL) fail("cannot flush (fsync) directory", dir, error);
}

void write_file_atomic(const std::filesystem::path& path, std::string_view bytes) {
  std::filesystem::path dir = path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path();
  std::filesystem::path tmp = dir / (".tmp-" + path.filename().string() + "-" + std::to_string(::getpid()));
  try {
    write_file_durable(tmp, bytes);
  } catch (...) {
    ::unlink(tmp.c_str());  // never leave our own temporary behind (a full disk stays full otherwise)
    throw;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    ::unlink(tmp.c_str());
    throw std::runtime_error("cannot rename '" + tmp.string() + "' to '" + path.string() + "': " + ec.message());
  }
  fsync_directory(dir);
}

void remove_tree(const std::filesystem::path& path) {
  auto remove_entry = [](const char* entry, const struct stat*, int, struct FTW*) -> int { return ::remove(entry); };
  if (::nftw(path.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT) {
    fail("cannot remove", path, errno);
  }
}

namespace {

// The writer pid of a temporary "....-<pid>", or 0 when the name does not end in one.
pid_t temporary_writer(const std::string& name) {
  auto dash = name.rfind('-');
  if (dash == std::string::npos || dash + 1 >= name.size()) return 0;
  long long pid = 0;
  for (size_t i = dash + 1; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9' || pid > 100000000) return 0;
    pid = pid * 10 + (name[i] - '0');
  }
  return static_cast<pid_t>(pid);
}

bool process_exists(pid_t pid) { return ::kill(pid, 0) == 0 || errno == EPERM; }

}  // namespace

std::vector<std::filesystem::path> remove_stale_temporaries(const std::filesystem::path& dir, bool include_own) {
  std::vector<std::filesystem::path> removed;
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return removed;
  std::vector<std::filesystem::path> candidates;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    std::string name = entry.path().filename().string();
    if (name.rfind(".tmp-", 0) != 0) continue;
    pid_t pid = temporary_writer(name);
    bool own = pid == ::getpid();
    // Names without a pid come from builds before temporaries carried one: stale by now.
    if ((own && include_own) || (!own && (pid <= 0 || !process_exists(pid)))) candidates.push_back(entry.path());
  }
  for (const auto& path : candidates) {
    remove_tree(path);
    removed.push_back(path);
  }
  return removed;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open '" + path.string() + "' for reading");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) throw std::runtime_error("cannot read '" + path.string() + "'");
  return buffer.str();
}

}  // namespace longgan::checkpoints
