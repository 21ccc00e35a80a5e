// Phases and implementations recorded for benchmarks: only while a profile is active, nested
// timers not counted twice, and each attention call naming what actually ran.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "attention/attention.h"
#include "attention/call_profile.h"
#include "attention_test_support.h"

namespace longgan::attention {
namespace {

TEST(CallProfile, RecordsOnlyWhileActiveAndNeverTwiceForNestedPhases) {
  CallProfile profile;
  { PhaseTimer untimed(kPhaseHash); }
  record_implementation("nobody listens");
  int synchronized = 0;
  profile.synchronize = [&] { ++synchronized; };
  {
    const ScopedCallProfile recording(profile);
    PhaseTimer outer(kPhaseGather);
    {
      PhaseTimer inner(kPhaseKernel);  // nested: counted in gather only
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    record_implementation("x");
  }
  EXPECT_EQ(profile.milliseconds.count(kPhaseHash), 0u);
  EXPECT_EQ(profile.milliseconds.count(kPhaseKernel), 0u);
  ASSERT_EQ(profile.milliseconds.count(kPhaseGather), 1u);
  EXPECT_GE(profile.milliseconds[kPhaseGather], 19.0);
  EXPECT_EQ(synchronized, 2);  // start and end of the one counted phase
  EXPECT_EQ(profile.implementations, std::vector<std::string>{"x"});
  // After the scope nothing more is recorded, and a new phase counts again.
  { PhaseTimer after(kPhaseHash); }
  EXPECT_EQ(profile.milliseconds.count(kPhaseHash), 0u);
  CallProfile second;
  {
    const ScopedCallProfile recording(second);
    PhaseTimer timer(kPhaseMerge);
  }
  EXPECT_EQ(second.milliseconds.count(kPhaseMerge), 1u);
}

TEST(CallProfile, SectionsNestAndLeavePhasesInsideThemRecording) {
  CallProfile profile;
  { SectionTimer untimed("outside"); }
  {
    const ScopedCallProfile scope(profile);
    const SectionTimer outer("step");
    {
      const SectionTimer inner("forward");
      const PhaseTimer phase(kPhaseKernel);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_FALSE(profile.sections.contains("outside"));
  EXPECT_GE(profile.sections.at("forward"), 19.0);
  EXPECT_GE(profile.milliseconds.at(kPhaseKernel), 19.0);  // a phase inside a section records
  EXPECT_GE(profile.sections.at("step"), profile.sections.at("forward") + 9.0);
}

TEST(CallProfile, EachCallNamesWhatRanAndItsPhases) {
  auto q = testing::randn({1, 1, 64, 8}, 1), k = testing::randn({1, 1, 16, 8}, 2), v = testing::randn({1, 1, 16, 4}, 3);
  CallProfile profile;
  {
    const ScopedCallProfile recording(profile);
    attend(DenseOptions{}, q, k, v);
    attend(DenseOptions{}, q, k, v, {.backend = Backend::Reference});
    auto out = attend(SmyrfOptions{.hashes = 2, .q_cluster = 8, .k_cluster = 2}, q.requires_grad_(true), k, v);
    out.sum().backward();
    attend(ClusteredOptions{.clusters = 4}, q, k, v, {.backend = Backend::FusedMath});
    attend(CombinerAxialOptions{}, q, k, v);
  }
  EXPECT_EQ(profile.implementations, (std::vector<std::string>{"sdpa flash (padded to 8)", "aten chunked", "fused cpu_flash",
                                                               "fused math", "aten reference"}));
  for (const auto& phase : {kPhaseHash, kPhaseGather, kPhaseKernel, kPhaseMerge, kPhaseBackwardGather,
                            kPhaseBackwardKernel, kPhaseBackwardMerge}) {
    EXPECT_EQ(profile.milliseconds.count(phase), 1u) << phase;
  }
  EXPECT_EQ(profile.milliseconds.count(kPhaseLayout), 0u);  // the attention block's phase, not the library's
}

}  // namespace
}  // namespace longgan::attention
