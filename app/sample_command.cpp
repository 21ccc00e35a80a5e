#include "app/cli.h"

namespace longgan::app {

// TODO(helper): longgan sample.
int run_sample(int, char**) { throw std::runtime_error("longgan sample is not implemented yet"); }

}  // namespace longgan::app
