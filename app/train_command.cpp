#include "app/cli.h"

namespace longgan::app {

// TODO(helper): longgan train.
int run_train(int, char**) { throw std::runtime_error("longgan train is not implemented yet"); }

}  // namespace longgan::app
