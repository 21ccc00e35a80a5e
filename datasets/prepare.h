#pragma once
// `longgan prepare` on a folder: every image found (recursively) is decoded, converted to 8-bit
// RGB, center-cropped to a square and resized to the target resolution, then written, in scan
// order, to one packed file. Needs OpenCV (LONGGAN_HAVE_OPENCV); without it prepare_folder throws.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace longgan::datasets {

struct PrepareOptions {
  std::filesystem::path input;    // folder searched recursively for .jpg .jpeg .png .webp (any case)
  std::filesystem::path output;   // the packed file; OUTPUT.report.txt lists the files left out
  int64_t resolution = 0;         // side of the square output images (>= 4)
  std::filesystem::path labels;   // optional: lines "filename,label" (see docs/DATASET_FORMAT.md)
  int64_t threads = 4;            // decoding threads
  int64_t min_size = 0;           // images whose shorter side is below this are skipped

  void validate() const;  // std::invalid_argument naming the option
};

struct PrepareSummary {
  int64_t found = 0;                                            // image files found
  int64_t written = 0;                                          // images in the output file
  std::vector<std::pair<std::string, std::string>> unreadable;  // (path, reason)
  int64_t upscaled = 0;                                         // shorter side below the resolution
  std::vector<std::pair<std::string, std::string>> skipped;     // (path, reason): too small, no label, folder link
  std::filesystem::path report;                                 // OUTPUT.report.txt
  uint64_t fingerprint = 0;
};

// The image files under `dir`, in natural order of their file names (2.png before 10.png), ties
// broken by the full path.
std::vector<std::filesystem::path> find_images(const std::filesystem::path& dir);
// The same, listing what could not be followed as (path, reason): dangling symbolic links and link
// loops in `unreadable`, links to folders (not followed) in `skipped`.
std::vector<std::filesystem::path> find_images(const std::filesystem::path& dir,
                                               std::vector<std::pair<std::string, std::string>>& unreadable,
                                               std::vector<std::pair<std::string, std::string>>& skipped);
// Natural order: digit runs compare as numbers, the rest character by character.
bool natural_less(const std::string& a, const std::string& b);

// progress(done, total) is called from the calling thread after each image.
PrepareSummary prepare_folder(const PrepareOptions& options,
                              const std::function<void(int64_t, int64_t)>& progress = {});

}  // namespace longgan::datasets
