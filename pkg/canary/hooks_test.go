package canary_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/test/controlplane"
)

// newRevision changes the target's image, which starts a rollout.
func (f *fixture) newRevision(img string) {
	f.t.Helper()
	target := &appsv1.Deployment{}
	f.update(target, "podinfo", func() { target.Spec.Template.Spec.Containers[0].Image = img })
}

func TestAConfirmRolloutGateHoldsTheRolloutUntilItOpens(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "confirm-rollout")
	hooks := newHookServer(t)
	hooks.answer("/gate", http.StatusForbidden)
	startOperator(t, f.ns)
	f.create(f.deployment("podinfo:6.0.0"), f.canary("Deployment", sluicev1beta1.CanaryAnalysis{
		Interval: "10s", Iterations: 1,
		Webhooks: []sluicev1beta1.CanaryWebhook{hooks.hook("gate", sluicev1beta1.ConfirmRolloutHook)},
	}))
	f.initialized()
	f.newRevision("podinfo:6.0.1")
	f.waitPhase(sluicev1beta1.CanaryPhaseWaiting, 30*time.Second)
	// The gate runs in the background: Ready names it once its answer
	// is in, a status write after the one that entered Waiting.
	controlplane.Eventually(t, 30*time.Second, "Ready naming the gate", func(context.Context) (bool, string) {
		c := &sluicev1beta1.Canary{}
		f.get(c, "podinfo")
		ready := meta.FindStatusCondition(c.Status.Conditions, sluicev1beta1.ReadyCondition)
		return ready != nil && strings.Contains(ready.Message, "gate"), fmt.Sprintf("Ready %+v", ready)
	})
	target := &appsv1.Deployment{}
	f.get(target, "podinfo")
	if *target.Spec.Replicas != 0 {
		t.Fatalf("the canary was scaled to %d before the gate opened", *target.Spec.Replicas)
	}
	f.waitEvent("WaitingForApproval")
	// The gate is asked again each interval; it opens.
	asked := len(hooks.calls("/gate"))
	hooks.answer("/gate", http.StatusOK)
	f.waitPhase(sluicev1beta1.CanaryPhaseSucceeded, 60*time.Second)
	if got := len(hooks.calls("/gate")); got <= asked {
		t.Fatalf("the gate was asked %d times, no more after it opened", got)
	}
	if p := hooks.calls("/gate"); p[0].Phase != sluicev1beta1.CanaryPhaseInitialized || p[0].Checksum == "" {
		t.Errorf("gate payload %+v", p[0])
	}
}

func TestARollbackHookThatAnswers2xxRollsBack(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "rollback-hook")
	hooks := newHookServer(t)
	// Not yet: a rollback hook that fails asks for nothing.
	hooks.answer("/abort", http.StatusNotFound)
	startOperator(t, f.ns)
	f.create(f.deployment("podinfo:6.0.0"), f.canary("Deployment", sluicev1beta1.CanaryAnalysis{
		Interval: "10s", Iterations: 10, Threshold: 5,
		Webhooks: []sluicev1beta1.CanaryWebhook{hooks.hook("abort", sluicev1beta1.RollbackHook)},
	}))
	f.initialized()
	f.newRevision("podinfo:6.0.1")
	controlplane.Eventually(t, 60*time.Second, "two iterations with the rollback hook asked", func(ctx context.Context) (bool, string) {
		c := &sluicev1beta1.Canary{}
		f.get(c, "podinfo")
		return c.Status.Iterations >= 2 && len(hooks.calls("/abort")) >= 2, fmt.Sprintf("iterations %d, phase %s", c.Status.Iterations, c.Status.Phase)
	})
	hooks.answer("/abort", http.StatusOK)
	c := f.waitPhase(sluicev1beta1.CanaryPhaseFailed, 30*time.Second)
	ready := meta.FindStatusCondition(c.Status.Conditions, sluicev1beta1.ReadyCondition)
	if ready == nil || !strings.Contains(ready.Message, "Rolled back: rollback hook abort answered 200") {
		t.Fatalf("Ready %+v, want the rollback hook named", ready)
	}
	if c.Status.FailedChecks != 0 {
		t.Errorf("%d failed checks: a rollback hook is not a failed check", c.Status.FailedChecks)
	}
	primary := &appsv1.Deployment{}
	f.get(primary, "podinfo-primary")
	if image(primary) != "podinfo:6.0.0" {
		t.Fatalf("primary runs %s after the rollback", image(primary))
	}
}

func TestEventHooksReceiveEveryEvent(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "event-hook")
	hooks := newHookServer(t)
	startOperator(t, f.ns)
	f.create(f.deployment("podinfo:6.0.0"), f.canary("Deployment", sluicev1beta1.CanaryAnalysis{
		Interval: "10s", Iterations: 1,
		Webhooks: []sluicev1beta1.CanaryWebhook{hooks.hook("events", sluicev1beta1.EventHook)},
	}))
	f.initialized()
	f.newRevision("podinfo:6.0.1")
	f.waitPhase(sluicev1beta1.CanaryPhaseSucceeded, 60*time.Second)
	controlplane.Eventually(t, 10*time.Second, "the promotion posted to the event hook", func(context.Context) (bool, string) {
		var messages []string
		for _, p := range hooks.calls("/events") {
			messages = append(messages, p.Metadata["eventMessage"])
		}
		return slices.ContainsFunc(messages, func(m string) bool { return strings.Contains(m, "Promotion completed") }), fmt.Sprintf("messages %q", messages)
	})
	calls := hooks.calls("/events")
	for _, want := range []string{"Initialization done", "New revision", "Advance podinfo canary iteration 1/1", "Copying podinfo template spec"} {
		if !slices.ContainsFunc(calls, func(p sluicev1beta1.CanaryWebhookPayload) bool {
			return strings.Contains(p.Metadata["eventMessage"], want)
		}) {
			t.Errorf("no event %q posted", want)
		}
	}
	for _, p := range calls {
		if p.Name != "podinfo" || p.Namespace != f.ns || p.Metadata["eventType"] != corev1.EventTypeNormal {
			t.Errorf("event payload %+v", p)
		}
	}
}

func TestAMutedGateRecordsItsWaitWithoutAnAlert(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		muted bool
	}{
		{"a gate that is not muted alerts its wait", false},
		{"a muted gate records its wait as an event only", true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, fmt.Sprintf("mute-alert-%d", i))
			hooks := newHookServer(t)
			hooks.answer("/gate", http.StatusForbidden)
			service := newChat(t, http.StatusOK)
			f.create(slackProvider(f.ns, "chat", "chat-url"),
				&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "chat-url", Namespace: f.ns}, StringData: map[string]string{"address": service.URL}})
			startOperator(t, f.ns)
			gate := hooks.hook("gate", sluicev1beta1.ConfirmRolloutHook)
			gate.MuteAlert = tt.muted
			f.create(f.deployment("podinfo:6.0.0"), f.canary("Deployment", sluicev1beta1.CanaryAnalysis{
				Interval: "10s", Iterations: 1,
				Webhooks: []sluicev1beta1.CanaryWebhook{gate},
				Alerts:   []sluicev1beta1.CanaryAlert{{Name: "chat", Severity: sluicev1beta1.SeverityInfo, ProviderRef: sluicev1beta1.CrossNamespaceObjectReference{Name: "chat"}}},
			}))
			f.initialized()
			f.newRevision("podinfo:6.0.1")
			f.waitPhase(sluicev1beta1.CanaryPhaseWaiting, 30*time.Second)
			f.waitEvent("WaitingForApproval")
			// The gate is open again; the promotion's alert comes after the
			// wait's, so once it is in, the wait's would be too.
			hooks.answer("/gate", http.StatusOK)
			f.waitPhase(sluicev1beta1.CanaryPhaseSucceeded, 60*time.Second)
			controlplane.Eventually(t, 10*time.Second, "the promotion alert", func(context.Context) (bool, string) {
				return service.got("Promotion completed"), "no promotion alert yet"
			})
			if got := service.got("Waiting for approval"); got == tt.muted {
				t.Fatalf("alert for the wait posted: %v, muted: %v", got, tt.muted)
			}
		})
	}
}
