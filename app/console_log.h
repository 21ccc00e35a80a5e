#pragma once
// RUN/log.txt: everything a command prints to stdout and stderr, also appended to a file, from
// the moment it is opened until the process exits (so the final error or "done" line is in it).
// The file gets what a reader of a terminal ends up seeing: a progress bar redrawn in place
// ("\r... \x1b[K") is written once per line, as last drawn.
#include <filesystem>
#include <string>

namespace longgan::app {

// Starts copying std::cout and std::cerr into memory, for a log file not yet chosen (a command
// that may still be refused writes nothing).
void capture_console();

// Appends what was captured so far to `file` (created with its directory) and copies std::cout
// and std::cerr there for the rest of the process (starting the copy if capture_console was not
// called), after `first_line` when not empty (e.g. a marker where a resumed run starts).
// std::runtime_error naming the file when it cannot be opened.
void keep_console_log(const std::filesystem::path& file, const std::string& first_line = {});


}  // namespace longgan::app
