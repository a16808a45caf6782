package cli_test

import (
	"context"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
)

func stopTheLine(t *testing.T) *sluicev1beta1.ReleasePolicy {
	t.Helper()
	rp := &sluicev1beta1.ReleasePolicy{}
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Name: sluicev1beta1.StopTheLinePolicy}, rp); err != nil {
		t.Fatal(err)
	}
	return rp
}

// TestFreezeAndUnfreeze runs its steps in order: each starts from where
// the one before left the stop-the-line policy.
func TestFreezeAndUnfreeze(t *testing.T) {
	alice, err := cp.KubeconfigFor("alice", []string{"system:masters"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cp.Client.Delete(context.Background(), &sluicev1beta1.ReleasePolicy{ObjectMeta: metav1.ObjectMeta{Name: sluicev1beta1.StopTheLinePolicy}})
	})

	t.Run("freeze needs --all", func(t *testing.T) {
		r := run(t, "freeze", "--reason", "incident 123")
		if r.error == nil || !strings.Contains(r.error.Error(), "--all") {
			t.Fatalf("freeze without --all: %v", r.error)
		}
	})

	t.Run("freeze needs a reason", func(t *testing.T) {
		r := run(t, "freeze", "--all")
		if r.error == nil || !strings.Contains(r.error.Error(), "--reason is required") {
			t.Fatalf("freeze without --reason: %v", r.error)
		}
	})

	t.Run("unfreeze with nothing stopped says so", func(t *testing.T) {
		r := runWithKubeconfig(t, alice, "unfreeze", "--all").mustSucceed(t)
		if !strings.Contains(r.out, "The line is not stopped") {
			t.Fatalf("unfreeze said %q", r.out)
		}
	})

	t.Run("freeze --all creates the stop-the-line policy with the reason, who and when", func(t *testing.T) {
		r := runWithKubeconfig(t, alice, "freeze", "--all", "--reason", "incident 123").mustSucceed(t)
		if !strings.Contains(r.out, "Stopped the line as alice") || !strings.Contains(r.out, "incident 123") {
			t.Errorf("freeze said %q", r.out)
		}
		rp := stopTheLine(t)
		s := rp.Spec.Stop
		if s == nil || s.Reason != "incident 123" || s.SetBy != "alice" || s.SetAt == nil {
			t.Fatalf("spec.stop %+v", s)
		}
		if rp.Spec.NamespaceSelector != nil || rp.Spec.CanarySelector != nil {
			t.Fatalf("selectors %+v %+v: the stop must match every Canary", rp.Spec.NamespaceSelector, rp.Spec.CanarySelector)
		}
	})

	t.Run("a second freeze replaces the reason and who", func(t *testing.T) {
		runWithKubeconfig(t, cp.Kubeconfig, "freeze", "--all", "--reason", "incident 124").mustSucceed(t)
		if s := stopTheLine(t).Spec.Stop; s == nil || s.Reason != "incident 124" || s.SetBy == "alice" {
			t.Fatalf("spec.stop %+v", s)
		}
	})

	t.Run("unfreeze --all clears the stop and says whose it was", func(t *testing.T) {
		runWithKubeconfig(t, alice, "freeze", "--all", "--reason", "incident 125").mustSucceed(t)
		r := runWithKubeconfig(t, alice, "unfreeze", "--all").mustSucceed(t)
		if !strings.Contains(r.out, "Lifted the stop set by alice (incident 125)") {
			t.Errorf("unfreeze said %q", r.out)
		}
		if s := stopTheLine(t).Spec.Stop; s != nil {
			t.Fatalf("spec.stop %+v left", s)
		}
	})
}

func TestGetAndStatusShowWhatAReleasePolicyHolds(t *testing.T) {
	ns := newNamespace(t)
	deployment(t, ns, "queued", "app:2")
	deployment(t, ns, "frozen", "app:2")
	queued := newCanary(t, ns, "queued", "Deployment", "queued")
	frozen := newCanary(t, ns, "frozen", "Deployment", "frozen")
	updateStatus(t, queued, func(c *sluicev1beta1.Canary) {
		c.Status.Phase = sluicev1beta1.CanaryPhaseWaiting
		meta.SetStatusCondition(&c.Status.Conditions, metav1.Condition{Type: sluicev1beta1.ReadyCondition, Status: metav1.ConditionUnknown, Reason: sluicev1beta1.ReasonQueued,
			Message: "New revision abc waits for a slot in ReleasePolicy team-a: 2 of 2 running, 1st in the queue"})
	})
	updateStatus(t, frozen, func(c *sluicev1beta1.Canary) {
		c.Status.Phase = sluicev1beta1.CanaryPhaseWaiting
		meta.SetStatusCondition(&c.Status.Conditions, metav1.Condition{Type: sluicev1beta1.ReadyCondition, Status: metav1.ConditionUnknown, Reason: sluicev1beta1.ReasonFrozen, Message: "New revision abc waits"})
		meta.SetStatusCondition(&c.Status.Conditions, metav1.Condition{Type: sluicev1beta1.FrozenCondition, Status: metav1.ConditionTrue, Reason: sluicev1beta1.ReasonStopTheLine,
			Message: "ReleasePolicy sluice-stop-the-line stops the line (spec.stop, set by alice): incident 123"})
	})

	t.Run("get canaries marks the queued and the frozen", func(t *testing.T) {
		r := run(t, "get", "canaries", "-n", ns).mustSucceed(t)
		phases := map[string]string{}
		for _, row := range rows(r.out)[1:] {
			phases[row[0]] = row[1]
		}
		if phases["queued"] != "Waiting (queued)" || phases["frozen"] != "Waiting (frozen)" {
			t.Fatalf("phases %v\n%s", phases, r.out)
		}
	})

	t.Run("status shows the freeze with who set it and why", func(t *testing.T) {
		r := run(t, "status", "frozen", "-n", ns).mustSucceed(t)
		if !strings.Contains(r.out, "Frozen:") || !strings.Contains(r.out, "set by alice): incident 123") {
			t.Fatalf("status:\n%s", r.out)
		}
	})
}
