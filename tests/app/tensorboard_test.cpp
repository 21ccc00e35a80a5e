// The hand-written TensorBoard event files: CRC32C, TFRecord framing, and the real reader.
#include "app/train/tensorboard.h"

#include <gtest/gtest.h>

#include <cstring>

#include "app/image_grid.h"
#include "checkpoints/atomic_file.h"
#include "tests/app/cli_test_util.h"

namespace longgan::app::testing {
namespace {
namespace fs = std::filesystem;

TEST(TensorBoard, Crc32cKnownValues) {
  // The CRC-32C check value, and the test vectors of RFC 3720 (iSCSI) B.4.
  EXPECT_EQ(crc32c("123456789", 9), 0xe3069283u);
  const std::string zeros(32, '\0'), ones(32, '\xff');
  EXPECT_EQ(crc32c(zeros.data(), zeros.size()), 0x8a9136aau);
  EXPECT_EQ(crc32c(ones.data(), ones.size()), 0x62a8ab43u);
  const uint32_t crc = crc32c("123456789", 9);
  EXPECT_EQ(masked_crc32c("123456789", 9), ((crc >> 15) | (crc << 17)) + 0xa282ead8u);
}

TEST(TensorBoard, RecordFraming) {
  const std::string record = tfrecord("abc");
  ASSERT_EQ(record.size(), 8u + 4u + 3u + 4u);
  EXPECT_EQ(record.substr(0, 8), std::string("\x03\0\0\0\0\0\0\0", 8));
  EXPECT_EQ(record.substr(12, 3), "abc");
  uint32_t length_crc = 0, data_crc = 0;
  std::memcpy(&length_crc, record.data() + 8, 4);
  std::memcpy(&data_crc, record.data() + 15, 4);
  EXPECT_EQ(length_crc, masked_crc32c(record.data(), 8));
  EXPECT_EQ(data_crc, masked_crc32c("abc", 3));
}

// Reads every event file of `dir` with tensorboard's EventAccumulator and prints what it found.
constexpr const char* kReader = R"(
import sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
acc = EventAccumulator(sys.argv[1], size_guidance={'scalars': 0, 'images': 0})
acc.Reload()
for tag in sorted(acc.Tags()['scalars']):
    for e in acc.Scalars(tag):
        print('scalar', tag, e.step, repr(e.value))
for tag in sorted(acc.Tags()['images']):
    for e in acc.Images(tag):
        print('image', tag, e.step, e.width, e.height, len(e.encoded_image_string), e.encoded_image_string[:8].hex())
)";

TEST(TensorBoard, TheRealReaderReadsScalarsAndImages) {
  if (!python_imports("tensorboard")) {
    GTEST_SKIP() << python_executable() << " cannot import tensorboard (scripts/setup.sh installs it): not checked";
  }
  const fs::path dir = fresh_dir("tensorboard");
  at::Tensor image = at::zeros({5, 7, 3}, at::kByte);
  image.select(2, 0).fill_(200);
  const std::string png = encode_png(image);
  {
    EventWriter writer(dir);
    EXPECT_EQ(writer.file().parent_path(), dir);
    EXPECT_NE(writer.file().filename().string().find("events.out.tfevents."), std::string::npos);
    writer.add_scalars(1, {{"loss/g", 0.5}, {"lr/G", 0.125}});  // float32 exactly: repr() is plain
    writer.add_scalars(2, {{"loss/g", -1.25}});
    writer.add_scalars(300, {{"eval/fid", 123.5}});
    writer.add_image(2, "samples", png, 5, 7, 3);
  }
  const fs::path script = dir / "read_events.py";
  checkpoints::write_file_atomic(script, kReader);
  auto result = run_program(python_executable(), {script.string(), dir.string()});
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const std::string& out = result.output;
  EXPECT_NE(out.find("scalar loss/g 1 0.5\n"), std::string::npos) << out;
  EXPECT_NE(out.find("scalar loss/g 2 -1.25\n"), std::string::npos) << out;
  EXPECT_NE(out.find("scalar lr/G 1 0.125\n"), std::string::npos) << out;
  EXPECT_NE(out.find("scalar eval/fid 300 123.5\n"), std::string::npos) << out;
  EXPECT_NE(out.find("image samples 2 7 5 " + std::to_string(png.size()) + " 89504e470d0a1a0a\n"), std::string::npos)
      << out;
  EXPECT_EQ(out.find("DataLossError"), std::string::npos) << out;
  checkpoints::remove_tree(dir);
}

TEST(TensorBoard, RestartMarkerReplacesTheStepsAResumedRunRepeats) {
  if (!python_imports("tensorboard")) {
    GTEST_SKIP() << python_executable() << " cannot import tensorboard (scripts/setup.sh installs it): not checked";
  }
  const fs::path dir = fresh_dir("tensorboard_restart");
  {
    EventWriter crashed(dir);  // ran to step 4, its last checkpoint at step 2
    for (int64_t step = 1; step <= 4; ++step) crashed.add_scalars(step, {{"loss/g", static_cast<double>(step)}});
  }
  {
    EventWriter resumed(dir);
    resumed.add_session_start(3);
    for (int64_t step = 3; step <= 5; ++step) resumed.add_scalars(step, {{"loss/g", 10.0 * static_cast<double>(step)}});
  }
  const fs::path script = dir / "read_events.py";
  checkpoints::write_file_atomic(script, kReader);
  auto result = run_program(python_executable(), {script.string(), dir.string()});
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const std::string& out = result.output;
  const std::string expected =
      "scalar loss/g 1 1.0\nscalar loss/g 2 2.0\nscalar loss/g 3 30.0\nscalar loss/g 4 40.0\nscalar loss/g 5 50.0\n";
  EXPECT_NE(out.find(expected), std::string::npos) << out;  // in order, each step once, the resumed values
  EXPECT_EQ(out.find("scalar loss/g 3 3.0"), std::string::npos) << out;
  EXPECT_EQ(out.find("scalar loss/g 4 4.0"), std::string::npos) << out;
  checkpoints::remove_tree(dir);
}

}  // namespace
}  // namespace longgan::app::testing
