package governance

import (
	"context"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
)

func TestStopTheLineHoldsEveryCanaryAcrossAnOperatorRestartUntilUnfreeze(t *testing.T) {
	ns := namespace(t, "stop")
	app(t, ns, "app", nil)
	app(t, ns, "other", nil)
	stop := operator(t, ns)
	waitCanary(t, ns, "app", "initialized", time.Minute, phaseIs(sluicev1beta1.CanaryPhaseInitialized))
	waitCanary(t, ns, "other", "initialized", time.Minute, phaseIs(sluicev1beta1.CanaryPhaseInitialized))

	alice, err := cp.KubeconfigFor("alice", []string{"system:masters"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		rp := &sluicev1beta1.ReleasePolicy{}
		rp.Name = sluicev1beta1.StopTheLinePolicy
		_ = cp.Client.Delete(context.Background(), rp)
	})

	t.Run("freeze --all stops the line and every Canary shows who and why", func(t *testing.T) {
		out, err := sluicectl(t, alice, "freeze", "--all", "--reason", "incident 123")
		if err != nil {
			t.Fatalf("freeze: %v\n%s", err, out)
		}
		if !strings.Contains(out, "Stopped the line as alice") {
			t.Errorf("freeze said %q", out)
		}
		for _, name := range []string{"app", "other"} {
			waitCanary(t, ns, name, "Frozen by the stop", 10*time.Second, frozenBy(sluicev1beta1.ReasonStopTheLine, "ReleasePolicy sluice-stop-the-line stops the line", "set by alice", "incident 123"))
		}
	})

	stop()
	release(t, ns, "app", "app:2")
	release(t, ns, "other", "app:2")
	operator(t, ns)

	t.Run("after a restart, new revisions wait with the reason and who set it", func(t *testing.T) {
		for _, name := range []string{"app", "other"} {
			c := waitCanary(t, ns, name, "waiting for the stop", 30*time.Second, func(c *sluicev1beta1.Canary) bool {
				return c.Status.Phase == sluicev1beta1.CanaryPhaseWaiting && ready(c).Reason == sluicev1beta1.ReasonFrozen
			})
			if msg := ready(c).Message; !strings.Contains(msg, "stops the line") || !strings.Contains(msg, "set by alice") || !strings.Contains(msg, "incident 123") {
				t.Fatalf("%s: Ready says %q", name, msg)
			}
		}
	})

	t.Run("they are still waiting after an analysis interval", func(t *testing.T) {
		time.Sleep(12 * time.Second)
		if c := canary(t, ns, "app"); c.Status.Phase != sluicev1beta1.CanaryPhaseWaiting {
			t.Fatalf("the stop let it go: %s", describe(c))
		}
	})

	t.Run("abort still rolls back a revision the stop holds", func(t *testing.T) {
		out, err := sluicectl(t, alice, "abort", "other", "-n", ns)
		if err != nil {
			t.Fatalf("abort: %v\n%s", err, out)
		}
		c := waitCanary(t, ns, "other", "rolled back", 10*time.Second, phaseIs(sluicev1beta1.CanaryPhaseFailed))
		if r := c.Status.LastRequest; r == nil || r.Outcome != sluicev1beta1.RequestAccepted || r.By != "alice" {
			t.Fatalf("lastRequest %+v", r)
		}
	})

	t.Run("promote is refused while the line is stopped, saying why", func(t *testing.T) {
		out, err := sluicectl(t, alice, "promote", "app", "-n", ns, "--full")
		if err == nil || !strings.Contains(out+err.Error(), "stops the line") {
			t.Fatalf("promote --full: %v\n%s", err, out)
		}
	})

	t.Run("unfreeze --all lifts the stop and the held revision is released", func(t *testing.T) {
		out, err := sluicectl(t, alice, "unfreeze", "--all")
		if err != nil {
			t.Fatalf("unfreeze: %v\n%s", err, out)
		}
		if !strings.Contains(out, "Lifted the stop set by alice (incident 123)") {
			t.Errorf("unfreeze said %q", out)
		}
		waitCanary(t, ns, "app", "promoted", 2*time.Minute, phaseIs(sluicev1beta1.CanaryPhaseSucceeded))
		if image := primaryImage(t, ns, "app"); image != "app:2" {
			t.Fatalf("primary runs %s", image)
		}
		c := canary(t, ns, "app")
		if f := meta.FindStatusCondition(c.Status.Conditions, sluicev1beta1.FrozenCondition); f != nil {
			t.Fatalf("Frozen %+v after unfreeze", f)
		}
		rp := &sluicev1beta1.ReleasePolicy{}
		if err := cp.Client.Get(t.Context(), client.ObjectKey{Name: sluicev1beta1.StopTheLinePolicy}, rp); err != nil || rp.Spec.Stop != nil {
			t.Fatalf("spec.stop %+v, %v", rp.Spec.Stop, err)
		}
	})
}
