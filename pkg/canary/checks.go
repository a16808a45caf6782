package canary

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/canary/plan"
)

// inflight runs the checks a step needs in the background, so that a slow
// webhook or metric never holds a reconcile worker, and wakes the Canary's
// reconcile when they are answered. It keeps the answers of one step per
// Canary; a new step forgets the old answers.
type inflight struct {
	mu   sync.Mutex
	jobs map[types.NamespacedName]*job
	// done receives the Canary whose checks were answered.
	done chan event.GenericEvent
	// base is the context the checks run under; cancelled on shutdown.
	base context.Context
}

type job struct {
	step    string
	results plan.Checks
	running bool
}

func newInflight() *inflight {
	return &inflight{jobs: map[types.NamespacedName]*job{}, done: make(chan event.GenericEvent, 1024), base: context.Background()}
}

// checks returns the answers to want for the step when they are all in.
// Otherwise it starts run for the missing ones, unless a run is under way,
// and reports false; the Canary is reconciled again when the run ends.
func (f *inflight) checks(c *sluicev1beta1.Canary, step string, want []plan.Check, timeout time.Duration, run func(context.Context, []plan.Check) plan.Checks) (plan.Checks, bool) {
	key := client.ObjectKeyFromObject(c)
	f.mu.Lock()
	defer f.mu.Unlock()
	j := f.jobs[key]
	if j == nil || j.step != step {
		j = &job{step: step, results: plan.Checks{}}
		f.jobs[key] = j
	}
	var missing []plan.Check
	for _, w := range want {
		if _, ok := j.results[w]; !ok {
			missing = append(missing, w)
		}
	}
	if len(missing) == 0 {
		return maps.Clone(j.results), true
	}
	if j.running {
		return nil, false
	}
	j.running = true
	obj := c.DeepCopy()
	go func() {
		ctx, cancel := context.WithTimeout(f.base, timeout)
		defer cancel()
		results := run(ctx, missing)
		f.mu.Lock()
		if f.jobs[key] == j {
			maps.Copy(j.results, results)
			j.running = false
		}
		f.mu.Unlock()
		select {
		case f.done <- event.GenericEvent{Object: obj}:
		case <-f.base.Done():
		}
	}()
	return nil, false
}

// forget drops what is kept for a Canary that is gone.
func (f *inflight) forget(key types.NamespacedName) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.jobs, key)
}

// runChecks answers checks: webhooks by type, and the metrics.
func (r *Reconciler) runChecks(ctx context.Context, c *sluicev1beta1.Canary, checks []plan.Check) plan.Checks {
	out := plan.Checks{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, check := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var res plan.Result
			if check == plan.CheckMetrics {
				res = r.metricsCheck(ctx, c)
			} else {
				res = r.hookCheck(ctx, c, check)
			}
			mu.Lock()
			out[check] = res
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

func (r *Reconciler) metricsCheck(ctx context.Context, c *sluicev1beta1.Canary) plan.Result {
	if r.Metrics == nil {
		// Blocked before any rollout starts; never promote on missing data.
		return plan.Result{Outcome: plan.Fail, Message: "no metric provider is available"}
	}
	return r.Metrics.Check(ctx, c)
}

// hookCheck calls the hooks of a check's type. A gate or test passes when
// every hook answers 2xx; a rollback check fails when any rollback hook
// does.
func (r *Reconciler) hookCheck(ctx context.Context, c *sluicev1beta1.Canary, check plan.Check) plan.Result {
	hooks := hooksOfType(c, sluicev1beta1.HookType(check))
	results := r.Hooks.Call(ctx, hooks, payload(c, nil))
	if check == plan.CheckRollback {
		for _, res := range results {
			if res.OK() {
				return plan.Result{Outcome: plan.Fail, Message: fmt.Sprintf("rollback hook %s answered %d", res.Hook, res.StatusCode)}
			}
		}
		return plan.Result{Outcome: plan.Pass}
	}
	var failed []string
	muted := true
	for i, res := range results {
		if !res.OK() {
			failed = append(failed, fmt.Sprintf("%s hook %s (%s): %v", check, res.Hook, webhookField(c, hooks[i]), res.Err))
			muted = muted && hooks[i].MuteAlert
		}
	}
	if len(failed) > 0 {
		return plan.Result{Outcome: plan.Fail, Message: strings.Join(failed, "; "), Muted: muted}
	}
	return plan.Result{Outcome: plan.Pass}
}

// webhookField is the path of h in the Canary's spec, for messages that
// must say which entry to fix.
func webhookField(c *sluicev1beta1.Canary, h sluicev1beta1.CanaryWebhook) string {
	for i, w := range c.Spec.Analysis.Webhooks {
		if w.Name == h.Name && w.Type == h.Type && w.URL == h.URL {
			return fmt.Sprintf("spec.analysis.webhooks[%d]", i)
		}
	}
	return "spec.analysis.webhooks"
}

func hooksOfType(c *sluicev1beta1.Canary, t sluicev1beta1.HookType) []sluicev1beta1.CanaryWebhook {
	var out []sluicev1beta1.CanaryWebhook
	if c.Spec.Analysis == nil {
		return nil
	}
	for _, h := range c.Spec.Analysis.Webhooks {
		ht := h.Type
		if ht == "" {
			ht = sluicev1beta1.RolloutHook
		}
		if ht == t {
			out = append(out, h)
		}
	}
	return out
}

// payload is the body posted to a Canary's webhooks. Its checksum names
// the revision under analysis.
func payload(c *sluicev1beta1.Canary, metadata map[string]string) sluicev1beta1.CanaryWebhookPayload {
	return sluicev1beta1.CanaryWebhookPayload{
		Name:      c.Name,
		Namespace: c.Namespace,
		Phase:     c.Status.Phase,
		Checksum:  c.Status.LastTrackedRevision,
		Metadata:  metadata,
	}
}
