// Checkpoint reliability: checksums, non-finite state, crash-safe pruning, leftovers, run lock.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <limits>

#include "checkpoints/atomic_file.h"
#include "tests/checkpoints/format_one.h"
#include "tests/checkpoints/fresh_dir.h"
#include "checkpoints/checkpoint.h"
#include "checkpoints/run_lock.h"

namespace longgan::checkpoints {
namespace {
namespace fs = std::filesystem;

using testing::fresh_dir;
using testing::make_format_one;

std::map<std::string, TensorMap> files_of(int64_t step) {
  return {{"G", {{"w", torch::arange(6, torch::kFloat32) + step}, {"n", torch::tensor({step}, torch::kInt64)}}},
          {"G_ema", {{"w", torch::ones({4}, torch::kFloat32) * step}}}};
}

nlohmann::json manifest() { return {{"model", {{"resolution", 32}}}}; }

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

void flip_byte(const fs::path& file, size_t offset) {
  std::string bytes = read_file(file);
  ASSERT_LT(offset, bytes.size());
  bytes[offset] = static_cast<char>(bytes[offset] ^ 0x01);
  write_file_durable(file, bytes);
}

// The pid of a process that has exited (reaped), for "writer no longer exists".
pid_t dead_pid() {
  pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  ::waitpid(pid, nullptr, 0);
  return pid;
}

TEST(CheckpointIntegrity, ChecksumIsXxh3AndFnv1aForFormatOne) {
  // Published test vectors of XXH3-64 and FNV-1a 64.
  EXPECT_EQ(file_checksum(""), "xxh3_64:2d06800538d394c2");
  EXPECT_EQ(file_checksum("a"), "xxh3_64:e6c632b61e964e1f");
  EXPECT_NE(file_checksum("ab"), file_checksum("ba"));
  EXPECT_EQ(file_checksum("", ChecksumAlgorithm::kFnv1a64), "fnv1a64:cbf29ce484222325");
  EXPECT_EQ(file_checksum("a", ChecksumAlgorithm::kFnv1a64), "fnv1a64:af63dc4c8601ec8c");
  EXPECT_EQ(file_checksum("foobar", ChecksumAlgorithm::kFnv1a64), "fnv1a64:85944171f73967e8");
}

TEST(CheckpointIntegrity, WritesFormatTwoWithXxh3) {
  fs::path run = fresh_dir("format2");
  fs::path dir = CheckpointWriter(run).write(1, manifest(), files_of(1));
  auto written = read_manifest(dir);
  EXPECT_EQ(written["format_version"], 2);
  EXPECT_EQ(written["checksums"]["G.pt"], file_checksum(read_file(dir / "G.pt"), ChecksumAlgorithm::kXxh3_64));
  ChecksumInfo info;
  EXPECT_TRUE(verify_checkpoint(dir, &info).empty());
  EXPECT_EQ(info.format_version, 2);
  EXPECT_EQ(info.algorithm, ChecksumAlgorithm::kXxh3_64);
  remove_tree(run);
}

TEST(CheckpointIntegrity, FormatOneCheckpointLoadsAndIsVerifiedWithFnv1a) {
  fs::path run = fresh_dir("format1");
  fs::path dir = CheckpointWriter(run).write(5, manifest(), files_of(5));
  make_format_one(dir);
  ASSERT_EQ(read_manifest(dir)["checksums"]["G.pt"].get<std::string>().rfind("fnv1a64:", 0), 0u);
  auto loaded = read_checkpoint(run);
  EXPECT_EQ(loaded.step, 5);
  EXPECT_TRUE(torch::equal(loaded.files["G"]["w"], files_of(5)["G"]["w"]));
  ChecksumInfo info;
  EXPECT_TRUE(verify_checkpoint(dir, &info).empty());
  EXPECT_EQ(info.format_version, 1);
  EXPECT_EQ(info.algorithm, ChecksumAlgorithm::kFnv1a64);
  // Still verified: a damaged byte is named.
  flip_byte(dir / "G.pt", read_file(dir / "G.pt").size() / 2);
  auto problems = verify_checkpoint(dir);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("G.pt"), std::string::npos) << problems[0];
  EXPECT_NE(problems[0].find("fnv1a64:"), std::string::npos) << problems[0];
  EXPECT_NE(error_of([&] { read_checkpoint(run); }).find("damaged"), std::string::npos);
  remove_tree(run);
}

TEST(CheckpointIntegrity, UnknownChecksumAlgorithmIsNamed) {
  fs::path run = fresh_dir("unknown_algorithm");
  fs::path dir = CheckpointWriter(run).write(1, manifest(), files_of(1));
  auto changed = read_manifest(dir);
  changed["checksums"]["G.pt"] = "sha1:0123456789abcdef0123456789abcdef01234567";
  write_file_atomic(dir / "manifest.json", changed.dump());
  auto problems = verify_checkpoint(dir);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("unknown algorithm ('sha1')"), std::string::npos) << problems[0];
  EXPECT_NE(problems[0].find("G.pt"), std::string::npos) << problems[0];
  remove_tree(run);
}

TEST(CheckpointIntegrity, FlippedByteIsNamedAndPreviousIntactOffered) {
  fs::path run = fresh_dir("flip");
  CheckpointWriter writer(run);
  writer.write(1, manifest(), files_of(1));
  fs::path dir = writer.write(2, manifest(), files_of(2));
  auto written = read_manifest(dir);
  ASSERT_TRUE(written["checksums"].contains("G_ema.pt")) << written.dump();
  EXPECT_EQ(written["checksums"]["G_ema.pt"], file_checksum(read_file(dir / "G_ema.pt")));
  EXPECT_TRUE(verify_checkpoint(dir).empty());

  // A byte in the middle of the file (tensor data, not the zip directory).
  flip_byte(dir / "G_ema.pt", read_file(dir / "G_ema.pt").size() / 2);
  std::string message = error_of([&] { read_checkpoint(run); });
  EXPECT_NE(message.find((dir / "G_ema.pt").string()), std::string::npos) << message;
  EXPECT_NE(message.find("damaged"), std::string::npos) << message;
  message = error_of([&] { read_tensors(dir, "G_ema"); });
  EXPECT_NE(message.find("G_ema.pt"), std::string::npos) << message;
  EXPECT_NO_THROW(read_tensors(dir, "G"));  // the other file is intact
  auto problems = verify_checkpoint(dir);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("G_ema.pt"), std::string::npos) << problems[0];
  EXPECT_EQ(newest_intact_checkpoint(run, 2), run / "step-000001");
  EXPECT_EQ(newest_intact_checkpoint(run, 1), std::nullopt);
  remove_tree(run);
}

TEST(CheckpointIntegrity, ManifestWithoutChecksumsIsAcceptedUnverified) {
  fs::path run = fresh_dir("old");
  fs::path dir = CheckpointWriter(run).write(3, manifest(), files_of(3));
  auto old = read_manifest(dir);
  old.erase("checksums");
  write_file_atomic(dir / "manifest.json", old.dump());
  EXPECT_EQ(read_checkpoint(run).step, 3);
  ChecksumInfo info;
  EXPECT_TRUE(verify_checkpoint(dir, &info).empty());
  EXPECT_EQ(info.algorithm, std::nullopt);
  // Unverifiable, but a file that does not even parse is still reported.
  write_file_durable(dir / "G.pt", "garbage");
  auto problems = verify_checkpoint(dir);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("G.pt"), std::string::npos);
  remove_tree(run);
}

TEST(CheckpointIntegrity, NonFiniteStateIsNeverWritten) {
  fs::path run = fresh_dir("nonfinite");
  CheckpointWriter writer(run);
  writer.write(1, manifest(), files_of(1));
  for (double bad : {std::numeric_limits<double>::infinity(), std::numeric_limits<double>::quiet_NaN()}) {
    auto files = files_of(2);
    files["optim_G"] = {{"0.exp_avg_sq", torch::tensor({1.0, bad}, torch::kFloat32)}};
    try {
      writer.write(2, manifest(), files);
      ADD_FAILURE() << "non-finite state was written";
    } catch (const NonFiniteStateError& e) {
      EXPECT_NE(std::string(e.what()).find("exp_avg_sq"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("optim_G.pt"), std::string::npos) << e.what();
    }
  }
  EXPECT_FALSE(fs::exists(run / "step-000002"));
  EXPECT_EQ(read_checkpoint(run).step, 1);
  for (const auto& entry : fs::directory_iterator(run)) {
    EXPECT_NE(entry.path().filename().string().rfind(".tmp-", 0), 0u) << entry.path();
  }
  remove_tree(run);
}

TEST(CheckpointIntegrity, HalfDeletedStepIsNeverOffered) {
  fs::path run = fresh_dir("half_deleted");
  CheckpointWriter writer(run, RetentionPolicy{.keep_last = 5});
  writer.write(1, manifest(), files_of(1));
  writer.write(2, manifest(), files_of(2));
  // A kill in the middle of an old-style delete: the manifest is still there, a file is gone.
  fs::remove(run / "step-000002" / "G_ema.pt");
  auto listed = list_checkpoints(run);
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].first, 1);
  // `latest` names it: an error naming the missing file, not a silent load.
  std::string message = error_of([&] { resolve_checkpoint(run); });
  EXPECT_NE(message.find((run / "step-000002" / "G_ema.pt").string()), std::string::npos) << message;
  fs::remove(run / "latest");
  EXPECT_EQ(resolve_checkpoint(run), run / "step-000001");
  remove_tree(run);
}

TEST(CheckpointIntegrity, PruningRenamesBeforeDeleting) {
  fs::path run = fresh_dir("prune");
  CheckpointWriter writer(run, RetentionPolicy{.keep_last = 1});
  // A step directory renamed for deletion by a process killed mid-delete: a temporary, never listed.
  fs::path trash = run / (".tmp-trash-step-000001-" + std::to_string(dead_pid()));
  fs::create_directories(trash);
  std::ofstream(trash / "manifest.json") << "{}";
  EXPECT_TRUE(list_checkpoints(run).empty());
  writer.write(2, manifest(), files_of(2));
  writer.write(3, manifest(), files_of(3));
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(run)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"latest", "step-000003"}));
  remove_tree(run);
}

TEST(CheckpointIntegrity, StaleTemporariesOfDeadWritersOnly) {
  fs::path run = fresh_dir("stale");
  const std::string dead = std::to_string(dead_pid());
  const std::string self = std::to_string(::getpid());
  fs::create_directories(run / (".tmp-step-000004-" + dead));
  std::ofstream(run / (".tmp-config.json-" + dead)) << "x";
  std::ofstream(run / (".tmp-grid.png-" + self)) << "x";  // a live writer's (ours)
  std::ofstream(run / "keep-me") << "x";
  auto removed = remove_stale_temporaries(run, /*include_own=*/false);
  EXPECT_EQ(removed.size(), 2u);
  EXPECT_FALSE(fs::exists(run / (".tmp-step-000004-" + dead)));
  EXPECT_FALSE(fs::exists(run / (".tmp-config.json-" + dead)));
  EXPECT_TRUE(fs::exists(run / (".tmp-grid.png-" + self)));
  EXPECT_TRUE(fs::exists(run / "keep-me"));
  EXPECT_EQ(remove_stale_temporaries(run, /*include_own=*/true).size(), 1u);
  EXPECT_FALSE(fs::exists(run / (".tmp-grid.png-" + self)));
  remove_tree(run);
}

TEST(CheckpointIntegrity, FailedAtomicWriteLeavesNoTemporary) {
  fs::path run = fresh_dir("write_error");
  // A file size limit makes write(2) fail (EFBIG) the way a full disk does (ENOSPC).
  struct rlimit old_limit {};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  auto old_handler = ::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = old_limit;
  small.rlim_cur = 4096;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  std::string message = error_of([&] { write_file_atomic(run / "big.bin", std::string(100000, 'x')); });
  ::setrlimit(RLIMIT_FSIZE, &old_limit);
  ::signal(SIGXFSZ, old_handler);
  EXPECT_NE(message.find("cannot write"), std::string::npos) << message;
  EXPECT_TRUE(fs::is_empty(run)) << "a temporary was left behind";
  remove_tree(run);
}

TEST(RunLock, SecondLockerIsRefusedNamingTheHolder) {
  fs::path run = fresh_dir("lock");
  {
    RunLock first(run);
    EXPECT_EQ(read_file(run / "lock"), std::to_string(::getpid()) + "\n");
    try {
      RunLock second(run);  // flock conflicts between separate opens, even in one process
      ADD_FAILURE() << "second lock taken";
    } catch (const RunLockedError& e) {
      EXPECT_NE(std::string(e.what()).find("pid " + std::to_string(::getpid())), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(run.string()), std::string::npos) << e.what();
    }
  }
  // Released with its holder; the file left behind does not block.
  EXPECT_NO_THROW(RunLock again(run));
  remove_tree(run);
}

}  // namespace
}  // namespace longgan::checkpoints
