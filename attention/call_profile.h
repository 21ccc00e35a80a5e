#pragma once
// Where the time of attention calls goes, for benchmarks: phases (hashing, gathering, the kernel,
// merging, ...) and the implementation each call actually ran. Recording is off unless a
// ScopedCallProfile is active; then every PhaseTimer adds its wall time to its phase, and every
// SectionTimer (the caller's own parts of the work around the attention calls, e.g. a training
// step's forward and backward passes) to its section.
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace longgan::attention {

struct CallProfile {
  // Called at the start and end of every phase when set: a device synchronize on CUDA, so that a
  // phase's time is the work it queued. Unset on the CPU.
  std::function<void()> synchronize;
  std::map<std::string, double> milliseconds;  // phase -> total wall time
  std::map<std::string, double> sections;      // section -> total wall time (SectionTimer)
  std::vector<std::string> implementations;    // what computed each call, in call order
};

// Phase names, in the order a forward and a backward run them.
inline constexpr const char* kPhaseLayout = "layout";  // projections and token layout (the attention block)
inline constexpr const char* kPhaseHash = "hash";      // hashing and sorting, or clustering
inline constexpr const char* kPhaseGather = "gather";  // rows gathered into per-cluster problems
inline constexpr const char* kPhaseKernel = "kernel";  // the fused attention kernel
inline constexpr const char* kPhaseMerge = "merge";    // merging rounds / clusters and un-permuting
inline constexpr const char* kPhaseBackwardGather = "backward gather";
inline constexpr const char* kPhaseBackwardKernel = "backward kernel";
inline constexpr const char* kPhaseBackwardMerge = "backward merge";
// Every phase above in that order (for reports).
const std::vector<std::string>& phase_names();

// Makes `profile` the one recorded into for the scope (one at a time, process-wide rather than per
// thread: the autograd engine runs CUDA backward passes on a thread of its own).
class ScopedCallProfile {
 public:
  explicit ScopedCallProfile(CallProfile& profile);
  ~ScopedCallProfile();
  ScopedCallProfile(const ScopedCallProfile&) = delete;
  ScopedCallProfile& operator=(const ScopedCallProfile&) = delete;

 private:
  CallProfile* previous_;
};

// Adds the wall time of its scope to `phase` of the active profile; nothing without one. A timer
// started inside another one on the same thread records nothing (phases do not nest).
class PhaseTimer {
 public:
  explicit PhaseTimer(const char* phase);
  ~PhaseTimer();
  PhaseTimer(const PhaseTimer&) = delete;
  PhaseTimer& operator=(const PhaseTimer&) = delete;

 private:
  const char* phase_;
  CallProfile* profile_;
  bool nested_ = false;
  double start_ms_ = 0;
};

// Adds the wall time of its scope to section `name` of the active profile; nothing without one.
// Sections may nest (each counts its whole scope) and never stop phases inside them from recording.
class SectionTimer {
 public:
  explicit SectionTimer(const char* name);
  ~SectionTimer();
  SectionTimer(const SectionTimer&) = delete;
  SectionTimer& operator=(const SectionTimer&) = delete;

 private:
  const char* name_;
  CallProfile* profile_;
  double start_ms_ = 0;
};

// Appends `name` to the active profile's implementations (nothing without one).
void record_implementation(const std::string& name);

}  // namespace longgan::attention
