#pragma once
// Turns autocast off for CUDA and CPU within a scope and restores the previous flags on exit (also
// when unwinding). The attention library runs every call under it: hashing, clustering and the
// merges compute in fp32 whatever autocast the caller has on, and the fused kernels run in the
// inputs' own dtype (under autocast, the dtype the projections produced).
namespace longgan::attention {

class AutocastOff {
 public:
  AutocastOff();
  ~AutocastOff();
  AutocastOff(const AutocastOff&) = delete;
  AutocastOff& operator=(const AutocastOff&) = delete;

 private:
  bool cuda_was_enabled_;
  bool cpu_was_enabled_;
};

}  // namespace longgan::attention
