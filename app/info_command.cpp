#include "app/cli.h"

namespace longgan::app {

// TODO(helper): longgan info.
int run_info(int, char**) { throw std::runtime_error("longgan info is not implemented yet"); }

}  // namespace longgan::app
