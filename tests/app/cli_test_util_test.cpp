// The helpers of tests/app/cli_test_util.h (compiled here: the suite's sources are *_test.cpp).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <sstream>

#include "checkpoints/atomic_file.h"
#include "checkpoints/checkpoint.h"
#include "longgan/build_config.h"
#include "tests/app/cli_test_util.h"

namespace longgan::app::testing {

std::string longgan_binary() {
  const char* bin = std::getenv("LONGGAN_BIN");
  return bin != nullptr ? bin : "build/bin/longgan";
}

void expect_identical_checkpoints(const std::filesystem::path& a, const std::filesystem::path& b) {
  auto ca = checkpoints::read_checkpoint(a);
  auto cb = checkpoints::read_checkpoint(b);
  EXPECT_EQ(ca.step, cb.step);
  ASSERT_EQ(ca.files.size(), cb.files.size());
  for (const auto& [file, tensors] : ca.files) {
    ASSERT_TRUE(cb.files.count(file)) << file;
    const auto& other = cb.files.at(file);
    ASSERT_EQ(tensors.size(), other.size()) << file;
    for (const auto& [name, tensor] : tensors) {
      ASSERT_TRUE(other.count(name)) << file << "/" << name;
      EXPECT_TRUE(torch::equal(tensor, other.at(name))) << file << "/" << name << " differs";
    }
  }
}

std::string metrics_without_timing(const std::filesystem::path& metrics_jsonl) {
  std::istringstream lines(checkpoints::read_file(metrics_jsonl));
  std::string line, kept;
  while (std::getline(lines, line)) {
    auto entry = nlohmann::json::parse(line);
    EXPECT_TRUE(entry.contains("time") && entry.contains("images_per_second")) << line;
    entry.erase("time");
    entry.erase("images_per_second");
    kept += entry.dump() + "\n";
  }
  return kept;
}

namespace {

pid_t start_program(std::string binary, const std::vector<std::string>& args, const std::filesystem::path& log,
                    const std::vector<std::string>& env) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, STDOUT_FILENO);
    ::dup2(fd, STDERR_FILENO);
    for (const auto& setting : env) ::putenv(const_cast<char*>(setting.c_str()));
    std::vector<char*> argv{binary.data()};
    for (const auto& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    ::execv(binary.c_str(), argv.data());
    ::_exit(127);
  }
  return pid;
}

}  // namespace

pid_t start_longgan(const std::vector<std::string>& args, const std::filesystem::path& log,
                    const std::vector<std::string>& env) {
  return start_program(longgan_binary(), args, log, env);
}

int wait_for(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

RunResult run_program(const std::string& program, const std::vector<std::string>& args,
                      const std::vector<std::string>& env) {
  auto log = std::filesystem::temp_directory_path() / ("longgan_cli_" + std::to_string(::getpid()) + ".log");
  RunResult result;
  result.exit_code = wait_for(start_program(program, args, log, env));
  result.output = checkpoints::read_file(log);
  std::filesystem::remove(log);
  return result;
}

RunResult run_longgan(const std::vector<std::string>& args, const std::vector<std::string>& env) {
  return run_program(longgan_binary(), args, env);
}

std::string python_executable() { return LONGGAN_PYTHON_EXECUTABLE; }

bool python_imports(const std::string& module) {
  return run_program(python_executable(), {"-c", "import " + module}).exit_code == 0;
}

std::filesystem::path fresh_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("longgan_app_" + name + "_" + std::to_string(::getpid()));
  checkpoints::remove_tree(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

TEST(CliTestUtil, BinaryRuns) {
  auto result = run_longgan({"--version"});
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("LongGAN"), std::string::npos) << result.output;
}

}  // namespace longgan::app::testing
