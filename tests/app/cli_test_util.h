#pragma once
// Runs the longgan binary (path in env LONGGAN_BIN, set by CTest) for the CLI tests.
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

namespace longgan::app::testing {

struct RunResult {
  int exit_code = -1;  // 128 + signal when killed by a signal
  std::string output;  // stdout and stderr together
};

std::string longgan_binary();

// Runs `program args...` to completion (program a path).
RunResult run_program(const std::string& program, const std::vector<std::string>& args,
                      const std::vector<std::string>& env = {});

// The Python of the torch this build links (the project's venv), and whether it imports `module`.
std::string python_executable();
bool python_imports(const std::string& module);

// Runs `longgan args...` to completion.
RunResult run_longgan(const std::vector<std::string>& args, const std::vector<std::string>& env = {});

// Starts `longgan args...` in the background with output to `log`; returns the pid.
pid_t start_longgan(const std::vector<std::string>& args, const std::filesystem::path& log,
                    const std::vector<std::string>& env = {});
// Waits for `pid`; exit code as in RunResult.
int wait_for(pid_t pid);

// A fresh empty directory under the temp dir.
std::filesystem::path fresh_dir(const std::string& name);

// Gtest expectations that the latest checkpoints of `a` and `b` (run or step directories) are of the
// same step and hold the same files and names with equal tensors.
void expect_identical_checkpoints(const std::filesystem::path& a, const std::filesystem::path& b);

// The lines of a run's metrics.jsonl without their timing fields ("time", "images_per_second"):
// what a resumed run must reproduce exactly.
std::string metrics_without_timing(const std::filesystem::path& metrics_jsonl);

// `args` followed by `more`.
inline std::vector<std::string> with(std::vector<std::string> args, const std::vector<std::string>& more) {
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

// Polls `predicate` every 50 ms until it holds (true) or `seconds` have passed (false).
template <class F>
bool wait_until(F&& predicate, int seconds) {
  for (int i = 0; i < seconds * 20; ++i) {
    if (predicate()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

}  // namespace longgan::app::testing
