package plan

import "testing"

// BenchmarkStep is the cost of one decision of the state machine.
func BenchmarkStep(b *testing.B) {
	in := withChecks(canary(), Checks{CheckRollout: pass(), CheckMetrics: pass()})
	in.Spec.Metrics = 1
	in = withHooks(in, "rollout")
	for b.Loop() {
		Step(in)
	}
}
