#pragma once
// Durable, atomic file writes: the bytes go to a temporary file in the target's directory, are
// flushed to disk (fsync), and the temporary is renamed over the target; a crash at any moment
// leaves either the old file or the new one, never a torn one.
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace longgan::checkpoints {

// Writes `bytes` to `path` atomically (tmp file + fsync + rename + fsync of the directory).
// Throws std::runtime_error naming the path and the system error.
void write_file_atomic(const std::filesystem::path& path, std::string_view bytes);

// Writes `bytes` to a new file at `path` (truncating) and fsyncs it; not atomic by itself.
void write_file_durable(const std::filesystem::path& path, std::string_view bytes);

// fsync of a directory, so that renames and new entries in it survive a crash.
void fsync_directory(const std::filesystem::path& dir);

// Removes a file or a directory tree; no error when it does not exist. (std::filesystem::remove_all
// must not be used: libtorch.so exports its own copy of std::filesystem, whose remove_all crashes.)
void remove_tree(const std::filesystem::path& path);

// Removes the temporaries ".tmp-...-<pid>" (files or directories) in `dir` whose writer process no
// longer exists (and, with include_own, this process's own); returns what it removed. Temporaries
// of live processes are left alone: the run-directory lock makes those rare, but never fatal.
std::vector<std::filesystem::path> remove_stale_temporaries(const std::filesystem::path& dir, bool include_own);

// The whole content of a file; std::runtime_error naming the path when it cannot be read.
std::string read_file(const std::filesystem::path& path);

}  // namespace longgan::checkpoints
