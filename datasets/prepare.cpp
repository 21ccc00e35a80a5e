#include "datasets/prepare.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "checkpoints/atomic_file.h"
#include "datasets/image_io.h"
#include "datasets/packed_format.h"
#include "longgan/build_config.h"

#if LONGGAN_HAVE_OPENCV
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#endif

namespace longgan::datasets {
namespace {

bool is_image_name(const std::string& name) {
  auto dot = name.rfind('.');
  if (dot == std::string::npos) return false;
  std::string ext = name.substr(dot + 1);
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == "jpg" || ext == "jpeg" || ext == "png" || ext == "webp";
}

using Problems = std::vector<std::pair<std::string, std::string>>;

// Image files under `dir`, recursively. Symbolic links to files are followed; links to folders are
// not (no loops) and are listed in `skipped`; dangling links and link loops in `unreadable`.
void scan(const std::filesystem::path& dir, std::vector<std::filesystem::path>& out, Problems& unreadable,
          Problems& skipped) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) throw std::runtime_error("cannot read the folder '" + dir.string() + "': " + std::strerror(errno));
  std::vector<std::filesystem::path> subdirs;
  while (dirent* entry = ::readdir(d)) {
    const std::string name = entry->d_name;
    if (name == "." || name == "..") continue;
    const auto path = dir / name;
    struct stat st {}, link {};
    if (::lstat(path.c_str(), &link) != 0) {
      unreadable.emplace_back(path.string(), std::string("cannot stat it: ") + std::strerror(errno));
      continue;
    }
    if (::stat(path.c_str(), &st) != 0) {
      const int error = errno;
      if (S_ISLNK(link.st_mode)) {
        unreadable.emplace_back(path.string(), error == ELOOP ? "symbolic link loop"
                                                              : std::string("dangling symbolic link (") +
                                                                    std::strerror(error) + ")");
      } else {
        unreadable.emplace_back(path.string(), std::string("cannot stat it: ") + std::strerror(error));
      }
      continue;
    }
    if (S_ISDIR(st.st_mode)) {
      if (S_ISLNK(link.st_mode)) {
        skipped.emplace_back(path.string(), "symbolic link to a folder (not followed)");
        continue;
      }
      subdirs.push_back(path);
    } else if (S_ISREG(st.st_mode) && is_image_name(name)) {
      out.push_back(path);
    }
  }
  ::closedir(d);
  for (const auto& sub : subdirs) scan(sub, out, unreadable, skipped);
}

// One line of the report: tabs and line breaks (OpenCV's multi-line messages, odd file names)
// become spaces.
std::string one_line(std::string text) {
  for (auto& c : text) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  while (!text.empty() && text.back() == ' ') text.pop_back();
  return text;
}

// Labels file: "filename,label" per line; blank lines and lines starting with '#' are ignored, and
// so is a first line "filename,label". filename is a path relative to the input folder or a bare
// file name.
struct Labels {
  std::map<std::string, int64_t> by_name;
  uint32_t count = 1;
};

Labels read_labels(const std::filesystem::path& file) {
  Labels labels;
  std::ifstream in(file);
  if (!in) throw std::runtime_error("cannot read the labels file '" + file.string() + "'");
  std::string line;
  int64_t line_number = 0, max_label = -1;
  while (std::getline(in, line)) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#' || (line_number == 1 && line == "filename,label")) continue;
    const auto where = "labels file '" + file.string() + "' line " + std::to_string(line_number);
    const auto comma = line.rfind(',');
    if (comma == std::string::npos || comma == 0) throw std::runtime_error(where + ": expected 'filename,label'");
    const std::string name = line.substr(0, comma), value = line.substr(comma + 1);
    int64_t label = -1;
    try {
      size_t used = 0;
      label = std::stoll(value, &used);
      if (used != value.size()) label = -1;
    } catch (const std::exception&) {
    }
    if (label < 0 || label > 1000000) throw std::runtime_error(where + ": the label must be an integer in [0, 1000000], got '" + value + "'");
    if (!labels.by_name.emplace(name, label).second) throw std::runtime_error(where + ": '" + name + "' is listed twice");
    max_label = std::max(max_label, label);
  }
  if (labels.by_name.empty()) throw std::runtime_error("labels file '" + file.string() + "' lists no image");
  labels.count = static_cast<uint32_t>(max_label + 1);
  return labels;
}

struct Decoded {
  std::vector<uint8_t> pixels;
  std::string problem;  // empty: good
  bool unreadable = false, upscaled = false;
};

#if LONGGAN_HAVE_OPENCV
Decoded decode(const std::filesystem::path& path, int64_t resolution, int64_t min_size) {
  Decoded out;
  auto rgb = decode_rgb_image(path, out.problem);
  if (!rgb) {
    out.unreadable = true;
    return out;
  }
  const cv::Mat image(static_cast<int>(rgb->height), static_cast<int>(rgb->width), CV_8UC3, rgb->pixels.data());
  const int side = std::min(image.rows, image.cols);
  if (side < min_size) {
    out.problem = "too small (" + std::to_string(image.cols) + "x" + std::to_string(image.rows) +
                  ", shorter side below --min-size " + std::to_string(min_size) + ")";
    return out;
  }
  cv::Mat square = image(cv::Rect((image.cols - side) / 2, (image.rows - side) / 2, side, side));
  const int r = static_cast<int>(resolution);
  cv::Mat resized;
  if (side == r) {
    resized = square.clone();
  } else {
    out.upscaled = side < r;
    cv::resize(square, resized, cv::Size(r, r), 0, 0, out.upscaled ? cv::INTER_CUBIC : cv::INTER_AREA);
  }
  if (!resized.isContinuous()) resized = resized.clone();
  out.pixels.assign(resized.data, resized.data + static_cast<size_t>(r) * r * 3);
  return out;
}
#endif

void write_report(const PrepareOptions& o, const PrepareSummary& s) {
  std::ostringstream text;
  text << "longgan prepare report\n"
       << "input: " << o.input.string() << "\noutput: " << o.output.string() << "\nresolution: " << o.resolution
       << "\nfound: " << s.found << "\nwritten: " << s.written << "\nupscaled: " << s.upscaled
       << "\nunreadable: " << s.unreadable.size() << "\nskipped: " << s.skipped.size() << "\n";
  for (const auto& [path, reason] : s.unreadable) {
    text << "unreadable\t" << one_line(path) << "\t" << one_line(reason) << "\n";
  }
  for (const auto& [path, reason] : s.skipped) text << "skipped\t" << one_line(path) << "\t" << one_line(reason) << "\n";
  checkpoints::write_file_atomic(s.report, text.str());
}

}  // namespace

void PrepareOptions::validate() const {
  if (input.empty()) throw std::invalid_argument("prepare: --input (a folder of images) is required");
  if (output.empty()) throw std::invalid_argument("prepare: --output is required");
  if (resolution < 4 || resolution > 8192) {
    throw std::invalid_argument("prepare: --resolution must be in [4, 8192], got " + std::to_string(resolution));
  }
  if (threads < 1) throw std::invalid_argument("prepare: --threads must be >= 1, got " + std::to_string(threads));
  if (min_size < 0) throw std::invalid_argument("prepare: --min-size must be >= 0, got " + std::to_string(min_size));
}

bool natural_less(const std::string& a, const std::string& b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (std::isdigit(static_cast<unsigned char>(a[i])) && std::isdigit(static_cast<unsigned char>(b[j]))) {
      size_t i_end = i, j_end = j;
      while (i_end < a.size() && std::isdigit(static_cast<unsigned char>(a[i_end]))) ++i_end;
      while (j_end < b.size() && std::isdigit(static_cast<unsigned char>(b[j_end]))) ++j_end;
      size_t i_nz = i, j_nz = j;  // skip leading zeros, then compare by length and digits
      while (i_nz + 1 < i_end && a[i_nz] == '0') ++i_nz;
      while (j_nz + 1 < j_end && b[j_nz] == '0') ++j_nz;
      if (i_end - i_nz != j_end - j_nz) return i_end - i_nz < j_end - j_nz;
      const int cmp = a.compare(i_nz, i_end - i_nz, b, j_nz, j_end - j_nz);
      if (cmp != 0) return cmp < 0;
      i = i_end;
      j = j_end;
    } else {
      if (a[i] != b[j]) return static_cast<unsigned char>(a[i]) < static_cast<unsigned char>(b[j]);
      ++i;
      ++j;
    }
  }
  return a.size() - i < b.size() - j;
}

std::vector<std::filesystem::path> find_images(const std::filesystem::path& dir) {
  Problems unreadable, skipped;
  return find_images(dir, unreadable, skipped);
}

std::vector<std::filesystem::path> find_images(const std::filesystem::path& dir,
                                               std::vector<std::pair<std::string, std::string>>& unreadable,
                                               std::vector<std::pair<std::string, std::string>>& skipped) {
  std::vector<std::filesystem::path> files;
  scan(dir, files, unreadable, skipped);
  std::sort(files.begin(), files.end(), [](const auto& x, const auto& y) {
    const std::string xn = x.filename().string(), yn = y.filename().string();
    if (natural_less(xn, yn)) return true;
    if (natural_less(yn, xn)) return false;
    return x.string() < y.string();
  });
  return files;
}

PrepareSummary prepare_folder(const PrepareOptions& options, const std::function<void(int64_t, int64_t)>& progress) {
#if !LONGGAN_HAVE_OPENCV
  (void)options;
  (void)progress;
  throw std::runtime_error(
      "this build of LongGAN lacks the OpenCV component needed to decode images for `longgan prepare`: install "
      "libopencv-core-dev, libopencv-imgproc-dev and libopencv-imgcodecs-dev (scripts/setup.sh does) and rebuild "
      "(scripts/build.sh); `longgan prepare --synthetic N` works without it");
#else
  options.validate();
  struct stat st {};
  if (::stat(options.input.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    throw std::runtime_error("prepare: --input '" + options.input.string() + "' is not a folder");
  }
  std::optional<Labels> labels;
  if (!options.labels.empty()) labels = read_labels(options.labels);
  PrepareSummary summary;
  const auto files = find_images(options.input, summary.unreadable, summary.skipped);
  if (files.empty()) {
    throw std::runtime_error("prepare: no .jpg, .jpeg, .png or .webp files under '" + options.input.string() +
                             "'; nothing written to '" + options.output.string() +
                             "' (a dataset that holds no images is refused)");
  }
  summary.found = static_cast<int64_t>(files.size());
  summary.report = options.output;
  summary.report += ".report.txt";

  auto label_of = [&](const std::filesystem::path& file) -> std::optional<int64_t> {
    if (!labels) return 0;
    const auto relative = file.lexically_relative(options.input).generic_string();
    for (const auto& key : {relative, file.filename().string()}) {
      auto it = labels->by_name.find(key);
      if (it != labels->by_name.end()) return it->second;
    }
    return std::nullopt;
  };

  // Workers decode files in any order, at most `window` ahead of the writer, which takes the
  // results in scan order.
  const int64_t n = summary.found;
  const int64_t window = options.threads * 4;
  std::vector<std::optional<Decoded>> results(static_cast<size_t>(n));
  std::mutex mutex;
  std::condition_variable ready, room;
  int64_t next_file = 0, written_upto = 0;
  bool stop = false;
  auto worker = [&] {
    for (;;) {
      int64_t i;
      {
        std::unique_lock<std::mutex> lock(mutex);
        room.wait(lock, [&] { return stop || next_file >= n || next_file < written_upto + window; });
        if (stop || next_file >= n) return;
        i = next_file++;
      }
      Decoded decoded;
      try {
        decoded = decode(files[i], options.resolution, options.min_size);
      } catch (const std::exception& e) {
        decoded.unreadable = true;
        decoded.problem = e.what();
      }
      {
        std::lock_guard<std::mutex> lock(mutex);
        results[i] = std::move(decoded);
      }
      ready.notify_all();
    }
  };
  std::vector<std::thread> workers;
  for (int64_t t = 0; t < std::min(options.threads, n); ++t) workers.emplace_back(worker);
  auto stop_workers = [&] {
    {
      std::lock_guard<std::mutex> lock(mutex);
      stop = true;
    }
    room.notify_all();
    for (auto& w : workers) w.join();
    workers.clear();
  };

  try {
    PackedWriter writer(options.output, static_cast<uint32_t>(options.resolution),
                        static_cast<uint32_t>(options.resolution), 3, labels ? labels->count : 1);
    for (int64_t i = 0; i < n; ++i) {
      Decoded decoded;
      {
        std::unique_lock<std::mutex> lock(mutex);
        ready.wait(lock, [&] { return results[i].has_value(); });
        decoded = std::move(*results[i]);
        results[i].reset();
        written_upto = i + 1;
      }
      room.notify_all();
      const std::string name = files[i].string();
      if (decoded.unreadable) {
        summary.unreadable.emplace_back(name, decoded.problem);
      } else if (!decoded.problem.empty()) {
        summary.skipped.emplace_back(name, decoded.problem);
      } else if (auto label = label_of(files[i]); !label) {
        summary.skipped.emplace_back(name, "no label in '" + options.labels.string() + "'");
      } else {
        writer.add(decoded.pixels.data(), *label);
        ++summary.written;
        summary.upscaled += decoded.upscaled;
      }
      if (progress) progress(i + 1, n);
    }
    stop_workers();
    if (summary.written == 0) {
      write_report(options, summary);
      throw std::runtime_error("prepare: none of the " + std::to_string(n) + " image files under '" +
                               options.input.string() + "' could be used; see " + summary.report.string() +
                               "; nothing written to '" + options.output.string() +
                               "' (a dataset that holds no images is refused)");
    }
    summary.fingerprint = writer.finish();
  } catch (...) {
    stop_workers();
    throw;
  }
  write_report(options, summary);
  return summary;
#endif
}

}  // namespace longgan::datasets
