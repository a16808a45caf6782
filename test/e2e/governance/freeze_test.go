package governance

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/canary/plan"
	"sluice.dev/sluice/test/controlplane"
)

// frozenBy waits until the Canary's Frozen condition has the reason and
// says each of says.
func frozenBy(reason string, says ...string) func(*sluicev1beta1.Canary) bool {
	return func(c *sluicev1beta1.Canary) bool {
		f := meta.FindStatusCondition(c.Status.Conditions, sluicev1beta1.FrozenCondition)
		return f != nil && f.Status == metav1.ConditionTrue && f.Reason == reason && containsAll(f.Message, says)
	}
}

func TestAOneOffFreezeHoldsANewRevisionAndLetsItStartWhenTheWindowCloses(t *testing.T) {
	ns := namespace(t, "window")
	// A one-minute interval: the only look due within seconds of the
	// window's end is the one the window's end asked for.
	app(t, ns, "app", func(c *sluicev1beta1.Canary) { c.Spec.Analysis.Interval = "1m" })
	operator(t, ns)
	waitCanary(t, ns, "app", "initialized", time.Minute, phaseIs(sluicev1beta1.CanaryPhaseInitialized))

	end := time.Now().Add(25 * time.Second).Truncate(time.Second)
	policy(t, "release-train", ns, sluicev1beta1.ReleasePolicySpec{Freeze: &sluicev1beta1.ReleaseFreeze{
		OneOff: []sluicev1beta1.OneOffFreeze{{Start: metav1.NewTime(end.Add(-time.Hour)), End: metav1.NewTime(end), Reason: "release train"}},
	}})

	t.Run("the policy's status shows the freeze in force", func(t *testing.T) {
		controlplane.Eventually(t, 10*time.Second, "status.activeFreeze", func(ctx context.Context) (bool, string) {
			rp := &sluicev1beta1.ReleasePolicy{}
			if err := cp.Client.Get(ctx, client.ObjectKey{Name: "release-train"}, rp); err != nil {
				return false, err.Error()
			}
			a := rp.Status.ActiveFreeze
			return a != nil && a.Field == "spec.freeze.oneOff[0]" && a.Reason == "release train" && a.Until != nil && a.Until.Time.Equal(end), fmt.Sprintf("%+v", rp.Status)
		})
	})

	t.Run("an idle Canary shows the freeze as soon as the policy exists", func(t *testing.T) {
		waitCanary(t, ns, "app", "Frozen", 10*time.Second, frozenBy(sluicev1beta1.ReasonFreezeWindow, "ReleasePolicy release-train freezes releases until", "(spec.freeze.oneOff[0]): release train"))
	})

	release(t, ns, "app", "app:2")

	t.Run("the new revision waits before its first step, saying until when and why", func(t *testing.T) {
		c := waitCanary(t, ns, "app", "waiting for the freeze", 10*time.Second, func(c *sluicev1beta1.Canary) bool {
			return c.Status.Phase == sluicev1beta1.CanaryPhaseWaiting && ready(c).Reason == sluicev1beta1.ReasonFrozen
		})
		if msg := ready(c).Message; !strings.Contains(msg, "New revision") || !strings.Contains(msg, end.UTC().Format("2006-01-02 15:04:05 MST")) || !strings.Contains(msg, "release train") {
			t.Fatalf("Ready says %q", msg)
		}
		if image := primaryImage(t, ns, "app"); image != "app:1" {
			t.Fatalf("primary runs %s during the freeze", image)
		}
	})

	t.Run("it starts within seconds of the window's end, not at the next interval", func(t *testing.T) {
		c := waitCanary(t, ns, "app", "progressing", 40*time.Second, phaseIs(sluicev1beta1.CanaryPhaseProgressing))
		a := c.Status.Admission
		if a == nil || a.AdmittedAt == nil {
			t.Fatalf("admission %+v", a)
		}
		if started := a.AdmittedAt.Time; started.Before(end) || started.After(end.Add(5*time.Second)) {
			t.Fatalf("started at %s, want within 5s after the window's end %s", started, end)
		}
		if !a.ArrivedAt.Time.Before(end) {
			t.Fatalf("arrived at %s, want before the window's end %s", a.ArrivedAt.Time, end)
		}
		if f := meta.FindStatusCondition(c.Status.Conditions, sluicev1beta1.FrozenCondition); f != nil {
			t.Fatalf("Frozen %+v after the window", f)
		}
	})
}

func TestAFailingCheckRollsBackAReleaseThatAFreezeHolds(t *testing.T) {
	ns := namespace(t, "rollback")
	// The load test fails: the first step after the pre-rollout one
	// rolls back.
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "error rate 12%", http.StatusInternalServerError)
	}))
	t.Cleanup(hook.Close)
	app(t, ns, "app", func(c *sluicev1beta1.Canary) {
		c.Spec.Analysis.Iterations = 2
		c.Spec.Analysis.Webhooks = []sluicev1beta1.CanaryWebhook{{Name: "load-test", Type: sluicev1beta1.RolloutHook, URL: hook.URL}}
	})
	operator(t, ns)
	waitCanary(t, ns, "app", "initialized", time.Minute, phaseIs(sluicev1beta1.CanaryPhaseInitialized))
	release(t, ns, "app", "app:2")
	waitCanary(t, ns, "app", "progressing", 30*time.Second, phaseIs(sluicev1beta1.CanaryPhaseProgressing))

	// The freeze opens while the release is in flight.
	now := time.Now()
	policy(t, "incident-freeze", ns, sluicev1beta1.ReleasePolicySpec{Freeze: &sluicev1beta1.ReleaseFreeze{
		OneOff: []sluicev1beta1.OneOffFreeze{{Start: metav1.NewTime(now.Add(-time.Minute)), End: metav1.NewTime(now.Add(time.Hour)), Reason: "incident 77"}},
	}})

	t.Run("the release in flight holds where it is: its step passes and nothing advances", func(t *testing.T) {
		c := waitCanary(t, ns, "app", "a step held", 30*time.Second, func(c *sluicev1beta1.Canary) bool {
			return c.Status.Phase == sluicev1beta1.CanaryPhaseProgressing && ready(c).Reason == sluicev1beta1.ReasonFrozen && c.Status.FrozenSince != nil
		})
		if c.Status.Iterations != 0 {
			t.Fatalf("iterations %d: the held step advanced", c.Status.Iterations)
		}
		if msg := ready(c).Message; !strings.Contains(msg, "Holding at iteration 0 of 2") || !strings.Contains(msg, "incident 77") {
			t.Fatalf("Ready says %q", msg)
		}
	})

	t.Run("the failing check still rolls it back, frozen as it is", func(t *testing.T) {
		c := waitCanary(t, ns, "app", "rolled back", 40*time.Second, phaseIs(sluicev1beta1.CanaryPhaseFailed))
		if c.Status.Iterations != 0 {
			t.Errorf("iterations %d: the freeze let a step advance", c.Status.Iterations)
		}
		if !frozenBy(sluicev1beta1.ReasonFreezeWindow, "incident 77")(c) {
			t.Errorf("not frozen while it rolled back: %s", describe(c))
		}
		if msg := ready(c).Message; !strings.Contains(msg, "load-test") {
			t.Errorf("Ready says %q, not the failed hook", msg)
		}
		if image := primaryImage(t, ns, "app"); image != "app:1" {
			t.Errorf("primary runs %s", image)
		}
		controlplane.Eventually(t, 10*time.Second, "the RolledBack event", func(context.Context) (bool, string) {
			reasons := eventReasons(t, ns, "app")
			return slices.Contains(reasons, plan.ReasonRolledBack) && !slices.Contains(reasons, plan.ReasonIterationPassed), strings.Join(reasons, ", ")
		})
	})
}

func TestANamespaceLabelledIntoAPolicysReachIsFrozenAtOnceAndReleasedWhenTheLabelGoes(t *testing.T) {
	ns := namespace(t, "relabel")
	// A one-hour interval: only the namespace's change can wake the
	// Canary within the test.
	app(t, ns, "app", func(c *sluicev1beta1.Canary) { c.Spec.Analysis.Interval = "1h" })
	operator(t, ns)
	waitCanary(t, ns, "app", "initialized", time.Minute, phaseIs(sluicev1beta1.CanaryPhaseInitialized))

	now := time.Now()
	rp := &sluicev1beta1.ReleasePolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "frozen-teams"},
		Spec: sluicev1beta1.ReleasePolicySpec{
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"freeze": "yes"}},
			Freeze: &sluicev1beta1.ReleaseFreeze{OneOff: []sluicev1beta1.OneOffFreeze{{
				Start: metav1.NewTime(now.Add(-time.Minute)), End: metav1.NewTime(now.Add(time.Hour)), Reason: "quarter close",
			}}},
		},
	}
	create(t, rp)
	t.Cleanup(func() { _ = cp.Client.Delete(context.Background(), rp) })
	labelNamespace := func(t *testing.T, value *string) {
		t.Helper()
		patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]any{"freeze": value}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := cp.Client.Patch(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, client.RawPatch(types.MergePatchType, patch)); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("a Canary whose namespace the policy does not select is not frozen", func(t *testing.T) {
		time.Sleep(2 * time.Second)
		if f := meta.FindStatusCondition(canary(t, ns, "app").Status.Conditions, sluicev1beta1.FrozenCondition); f != nil {
			t.Fatalf("Frozen %+v", f)
		}
	})

	t.Run("labelling the namespace freezes the Canary within seconds", func(t *testing.T) {
		yes := "yes"
		labelNamespace(t, &yes)
		waitCanary(t, ns, "app", "Frozen", 10*time.Second, frozenBy(sluicev1beta1.ReasonFreezeWindow, "ReleasePolicy frozen-teams", "quarter close"))
	})

	t.Run("removing the label lifts the freeze within seconds", func(t *testing.T) {
		labelNamespace(t, nil)
		waitCanary(t, ns, "app", "not frozen", 10*time.Second, func(c *sluicev1beta1.Canary) bool {
			return meta.FindStatusCondition(c.Status.Conditions, sluicev1beta1.FrozenCondition) == nil
		})
	})
}
