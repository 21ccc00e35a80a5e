#include "app/cli.h"

namespace longgan::app {

// TODO: longgan bench attention.
int run_bench(int, char**) { throw std::runtime_error("longgan bench is not implemented yet"); }

}  // namespace longgan::app
