#include "app/console_log.h"

#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <streambuf>

namespace longgan::app {
namespace {

// The file side: whole lines, bar redraws collapsed to their last state, escape codes dropped.
// Lines go to memory until open() names the file.
class LogFile {
 public:
  void open(const std::filesystem::path& path, const std::string& first_line) {
    std::lock_guard<std::mutex> lock(mutex_);
    std::filesystem::create_directories(path.parent_path());
    out_.open(path, std::ios::app);
    if (!out_) throw std::runtime_error("cannot open the run's console log '" + path.string() + "' for appending");
    if (!first_line.empty()) out_ << first_line << "\n";
    out_ << pending_ << std::flush;
    pending_.clear();
  }
  ~LogFile() {
    if (!line_.empty()) emit(line_ + "\n");
  }
  void put(char c) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (escape_) {  // CSI sequence: ESC '[' parameters, ends with a letter
      if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')) escape_ = false;
      return;
    }
    if (c == '\x1b') {
      escape_ = true;
    } else if (c == '\r') {
      line_.clear();
    } else if (c == '\n') {
      emit(line_ + "\n");
      line_.clear();
    } else {
      line_ += c;
    }
  }
 private:
  void emit(const std::string& text) {
    if (out_.is_open()) out_ << text << std::flush;
    else pending_ += text;
  }

  std::string pending_;
  std::ofstream out_;
  std::string line_;
  bool escape_ = false;
  std::mutex mutex_;
};

// Passes every character to the original buffer and to the log.
class TeeBuffer : public std::streambuf {
 public:
  TeeBuffer(std::streambuf* original, LogFile* log) : original_(original), log_(log) {}
  std::streambuf* original() const { return original_; }

 protected:
  int overflow(int c) override {
    if (c == traits_type::eof()) return traits_type::not_eof(c);
    log_->put(static_cast<char>(c));
    return original_->sputc(static_cast<char>(c));
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    for (std::streamsize i = 0; i < n; ++i) log_->put(s[i]);
    return original_->sputn(s, n);
  }
  int sync() override { return original_->pubsync(); }

 private:
  std::streambuf* original_;
  LogFile* log_;
};

// Restores std::cout and std::cerr before the log closes (static destruction at exit).
struct ConsoleTee {
  std::unique_ptr<LogFile> log;
  std::unique_ptr<TeeBuffer> out, err;
  void stop() {
    if (out) std::cout.rdbuf(out->original());
    if (err) std::cerr.rdbuf(err->original());
    std::cout.flush();
    out.reset();
    err.reset();
    log.reset();
  }
  ~ConsoleTee() { stop(); }
};

ConsoleTee& tee() {
  static ConsoleTee instance;
  return instance;
}

}  // namespace

void capture_console() {
  ConsoleTee& t = tee();
  t.stop();
  t.log = std::make_unique<LogFile>();
  t.out = std::make_unique<TeeBuffer>(std::cout.rdbuf(), t.log.get());
  t.err = std::make_unique<TeeBuffer>(std::cerr.rdbuf(), t.log.get());
  std::cout.rdbuf(t.out.get());
  std::cerr.rdbuf(t.err.get());
}

void keep_console_log(const std::filesystem::path& file, const std::string& first_line) {
  if (!tee().log) capture_console();
  tee().log->open(file, first_line);
}

}  // namespace longgan::app
