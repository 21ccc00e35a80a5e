#include "attention/autocast_off.h"

#include <ATen/autocast_mode.h>

namespace longgan::attention {

AutocastOff::AutocastOff()
    : cuda_was_enabled_(at::autocast::is_autocast_enabled(at::kCUDA)),
      cpu_was_enabled_(at::autocast::is_autocast_enabled(at::kCPU)) {
  at::autocast::set_autocast_enabled(at::kCUDA, false);
  at::autocast::set_autocast_enabled(at::kCPU, false);
}

AutocastOff::~AutocastOff() {
  at::autocast::set_autocast_enabled(at::kCUDA, cuda_was_enabled_);
  at::autocast::set_autocast_enabled(at::kCPU, cpu_was_enabled_);
}

}  // namespace longgan::attention
