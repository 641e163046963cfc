// lg_absl.cc - turns off Abseil's mutex deadlock detection in herald-loadgen.
//
// Debian builds Abseil without NDEBUG, so absl::Mutex runs its deadlock
// detector (a lock graph, GraphCycles) on every Lock/Unlock; gRPC core takes
// ~30 absl mutexes per call. Measured with callgrind on heraldd's
// Health/Check (bench/README.md, "Profiles"): 62.3k -> 50.8k instructions
// per call with the detector off. The load generator shares 2 cores with the
// server under test, so its own cost is kept down.
#include <absl/synchronization/mutex.h>

extern "C" void lg_absl_fast_mutex(void)
{
    absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}
