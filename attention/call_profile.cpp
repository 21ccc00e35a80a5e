#include "attention/call_profile.h"

#include <atomic>
#include <chrono>

namespace longgan::attention {
namespace {

std::atomic<CallProfile*> active_profile{nullptr};
thread_local int open_timers = 0;

double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

const std::vector<std::string>& phase_names() {
  static const std::vector<std::string> names = {kPhaseLayout,         kPhaseHash,           kPhaseGather,
                                                 kPhaseKernel,         kPhaseMerge,          kPhaseBackwardGather,
                                                 kPhaseBackwardKernel, kPhaseBackwardMerge};
  return names;
}

ScopedCallProfile::ScopedCallProfile(CallProfile& profile) : previous_(active_profile.exchange(&profile)) {}

ScopedCallProfile::~ScopedCallProfile() { active_profile.store(previous_); }

PhaseTimer::PhaseTimer(const char* phase) : phase_(phase), profile_(active_profile.load()) {
  if (profile_ == nullptr) return;
  nested_ = open_timers++ > 0;  // the outer phase counts a nested one's time
  if (nested_) return;
  if (profile_->synchronize) profile_->synchronize();
  start_ms_ = now_ms();
}

PhaseTimer::~PhaseTimer() {
  if (profile_ == nullptr) return;
  --open_timers;
  if (nested_) return;
  if (profile_->synchronize) profile_->synchronize();
  profile_->milliseconds[phase_] += now_ms() - start_ms_;
}

SectionTimer::SectionTimer(const char* name) : name_(name), profile_(active_profile.load()) {
  if (profile_ == nullptr) return;
  if (profile_->synchronize) profile_->synchronize();
  start_ms_ = now_ms();
}

SectionTimer::~SectionTimer() {
  if (profile_ == nullptr) return;
  if (profile_->synchronize) profile_->synchronize();
  profile_->sections[name_] += now_ms() - start_ms_;
}

void record_implementation(const std::string& name) {
  if (auto* profile = active_profile.load()) profile->implementations.push_back(name);
}

}  // namespace longgan::attention
