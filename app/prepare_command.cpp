#include "app/cli.h"

namespace longgan::app {

// TODO(helper): longgan prepare.
int run_prepare(int, char**) { throw std::runtime_error("longgan prepare is not implemented yet"); }

}  // namespace longgan::app
