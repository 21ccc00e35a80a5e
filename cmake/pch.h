// Precompiled once and reused by every C++ target: the torch headers dominate compile time.
#pragma once
#include <torch/torch.h>
#include <nlohmann/json.hpp>
