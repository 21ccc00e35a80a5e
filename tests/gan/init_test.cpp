#include "gan/init.h"

#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>

#include "gan/spectral_norm.h"

namespace longgan::gan {
namespace {

struct TwoLayers : torch::nn::Module {
  TwoLayers() {
    conv = register_module("conv", SNConv2d(3, 4, 3));   // [4, 27]: 4 orthonormal rows
    linear = register_module("linear", SNLinear(2, 6));  // [6, 2]: 2 orthonormal columns
  }
  SNConv2d conv{nullptr};
  SNLinear linear{nullptr};
};

TEST(Init, OrthoGivesOrthonormalRowsOrColumns) {
  torch::manual_seed(0);
  TwoLayers model;
  EXPECT_EQ(initialize_weights(model, InitKind::ortho), 2);
  const at::Tensor w = model.conv->weight.reshape({4, -1});
  EXPECT_TRUE(at::allclose(at::mm(w, w.t()), torch::eye(4), 1e-5, 1e-5));
  const at::Tensor v = model.linear->weight;
  EXPECT_TRUE(at::allclose(at::mm(v.t(), v), torch::eye(2), 1e-5, 1e-5));
}

TEST(Init, N02AndXavierDistributions) {
  torch::manual_seed(1);
  SNLinear big(400, 300);
  initialize_weights(*big, InitKind::n02);
  EXPECT_NEAR(big->weight.std().item<double>(), 0.02, 0.001);
  EXPECT_NEAR(big->weight.mean().item<double>(), 0.0, 0.001);
  initialize_weights(*big, InitKind::xavier);
  const double bound = std::sqrt(6.0 / (400 + 300));
  EXPECT_LE(big->weight.abs().max().item<double>(), bound);
  EXPECT_NEAR(big->weight.std().item<double>(), bound / std::sqrt(3.0), 0.002);  // uniform(-a, a)
}

TEST(Init, ParseNamesTheChoices) {
  EXPECT_EQ(parse_init("ortho"), InitKind::ortho);
  EXPECT_EQ(parse_init("xavier"), InitKind::xavier);
  try {
    parse_init("kaiming");
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("n02"), std::string::npos);
  }
}

}  // namespace
}  // namespace longgan::gan
