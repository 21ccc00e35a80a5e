#include "gan/biggan/biggan_flags.h"

#include <gtest/gtest.h>

#include "gan/biggan/biggan_tensors.h"

namespace longgan::gan {
namespace {

std::string error_of(const std::function<void()>& call) {
  try {
    call();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(BigGanFlags, ModelComputesWhatBigGanPyTorchBuilds) {
  BigGanFlags flags = tfhub_biggan_flags(256);
  const ModelConfig model = biggan_model_config(flags);
  EXPECT_EQ(model.z_dim, 140);  // 7 slots of 20
  EXPECT_EQ(latent_split(model).first, 20);
  EXPECT_EQ(model.shared_dim, 128);
  EXPECT_EQ(model.g_attn, std::vector<int64_t>{128});
  EXPECT_EQ(model.bn_eps, 1e-4);
  EXPECT_EQ(model.sn_eps, 1e-4);
  EXPECT_EQ(model.spectral_norm, "biggan");
  EXPECT_EQ(biggan_model_config(tfhub_biggan_flags(512)).z_dim, 128);
  flags.dim_z = 120;  // train.py's default at 256: 7 slots of 17, BigGAN-PyTorch drops the rest
  EXPECT_EQ(biggan_model_config(flags).z_dim, 119);
  EXPECT_EQ(latent_split(biggan_model_config(flags)).first, 17);

  // G_attn values no block has are dropped as BigGAN drops them; "0" is none; shared_dim 0 is dim_z.
  flags = BigGanFlags{};
  flags.resolution = 64;
  flags.G_ch = flags.D_ch = 8;
  flags.G_attn = "32_3";
  flags.D_attn = "0";
  flags.dim_z = 20;
  const ModelConfig small = biggan_model_config(flags);
  EXPECT_EQ(small.g_attn, std::vector<int64_t>{32});
  EXPECT_TRUE(small.d_attn.empty());
  EXPECT_EQ(small.shared_dim, 20);
  EXPECT_FALSE(small.hierarchical_z);
  EXPECT_EQ(small.z_dim, 20);
}

TEST(BigGanFlags, RefusesWhatLongGanCannotComputeTheSameWayNamingTheFlag) {
  BigGanFlags flags = tfhub_biggan_flags(128);
  flags.D_attn = "4";  // BigGAN: after both 4x4 blocks of D
  EXPECT_NE(error_of([&] { biggan_model_config(flags); }).find("D_attn: '4' puts attention after 2 D blocks"),
            std::string::npos);
  flags = tfhub_biggan_flags(128);
  flags.norm_style = "in";
  EXPECT_NE(error_of([&] { biggan_model_config(flags); }).find("norm_style: 'in'"), std::string::npos);
  EXPECT_NE(error_of([&] { tfhub_biggan_flags(64); }).find("128, 256 and 512"), std::string::npos);

  BigGanFlags set;
  EXPECT_NE(error_of([&] { set_biggan_flag(set, "G_ch", "9x"); }).find("G_ch: '9x' is not an integer"), std::string::npos);
  EXPECT_NE(error_of([&] { set_biggan_flag(set, "G_lr", "1"); }).find("unknown BigGAN-PyTorch flag G_lr"), std::string::npos);
  set_biggan_flag(set, "hier", "true");
  set_biggan_flag(set, "SN_eps", "1e-6");
  EXPECT_TRUE(set.hier);
  EXPECT_EQ(set.SN_eps, 1e-6);
}

TEST(BigGanFlags, ExportRefusesModelsBigGanPyTorchCannotExpressNamingTheOption) {
  EXPECT_NE(error_of([] { biggan_flags_of(ModelConfig::preset(32)); }).find("model option spectral_norm: 'longgan'"),
            std::string::npos);
  ModelConfig model = biggan_model_config(tfhub_biggan_flags(128));
  model.attention = attention::SmyrfOptions{};
  EXPECT_NE(error_of([&] { biggan_flags_of(model); }).find("model option attention"), std::string::npos);
  // And what it can express comes back as the flags that built it.
  const BigGanFlags back = biggan_flags_of(biggan_model_config(tfhub_biggan_flags(128)));
  EXPECT_EQ(biggan_model_config(back).z_dim, 120);
  EXPECT_EQ(back.G_attn, "64");
}

TEST(BigGanTensors, NamesFollowBigGanPyTorchsModules) {
  EXPECT_EQ(biggan_tensor_name("blocks.3.cbn1.bn.running_mean"), "blocks.3.0.bn1.stored_mean");
  EXPECT_EQ(biggan_tensor_name("blocks.3.cbn2.gain.u"), "blocks.3.0.bn2.gain.u0");
  EXPECT_EQ(biggan_tensor_name("blocks.3.cbn2.bn.num_batches_tracked"), "");
  EXPECT_EQ(biggan_tensor_name("attention.4.theta.weight"), "blocks.4.1.theta.weight");
  EXPECT_EQ(biggan_tensor_name("attention.4.gamma"), "blocks.4.1.gamma");
  EXPECT_EQ(biggan_tensor_name("out_bn.weight"), "output_layer.0.gain");
  EXPECT_EQ(biggan_tensor_name("out_conv.u"), "output_layer.2.u0");
  EXPECT_EQ(biggan_tensor_name("embed.u"), "embed.u0");
  EXPECT_EQ(biggan_tensor_name("shared.weight"), "shared.weight");
}

}  // namespace
}  // namespace longgan::gan
