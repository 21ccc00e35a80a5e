// libFuzzer: a --config file of arbitrary bytes, read and overlaid as `longgan train --config`
// does, then the model and train sections checked as before a run.
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <string>

#include <torch/torch.h>  // the app headers rely on the precompiled torch header elsewhere

#include "app/cli.h"
#include "app/run_config.h"
#include "app/session_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/longgan-config-fuzz-" + std::to_string(::getpid()) + ".json";
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  try {
    nlohmann::json config = longgan::app::default_session_config();
    config["run"] = {{"data", "x.lgd"}, {"seed", 0}, {"device", "cpu"}};
    longgan::app::overlay_config(config, longgan::app::read_json_file(path), path);
    longgan::app::check_session_config(config);
  } catch (const std::exception&) {
  }
  return 0;
}
