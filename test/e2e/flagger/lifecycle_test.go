package flagger

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
)

func TestSkipAnalysisPromotesANewRevisionWithoutItsChecksGatesOrMetrics(t *testing.T) {
	t.Parallel()
	// The operator's default metrics server, http://prometheus:9090, does
	// not exist here: the request-success-rate metric could never pass,
	// as when skipAnalysis is used because the metrics are down.
	s := newScenario(t, "skip-analysis", "podinfo")
	s.apply("podinfo-deployment.yaml", "skip-analysis.yaml")
	s.waitPhase(initialized, time.Minute)
	// The history is written from a watch that may lag the read above:
	// the mark must come after Initialized.
	s.caughtUp()

	release := s.history.mark()
	s.release("Deployment", podinfo601)
	s.waitPhase(succeeded, time.Minute)
	// Flagger marks the revision Progressing, then promotes it at the
	// next step: no analysis, no promotion gate.
	s.caughtUp()
	phases := s.history.phasesSince(release.phases)
	if len(phases) == 0 || phases[0] != progressing || phases[len(phases)-1] != succeeded ||
		slices.ContainsFunc(phases, func(p sluicev1beta1.CanaryPhase) bool { return p == waiting || p == waitingPromotion || p == failed }) {
		t.Errorf("the release went through phases %v, want Progressing then Succeeded, never waiting or failing", phases)
	}
	if got := positive(s.history.iterationsSince(release.iterations)); len(got) > 0 {
		t.Errorf("iterations went %v: the analysis ran", got)
	}
	if img := s.image("Deployment", "podinfo-primary"); img != podinfo601 {
		t.Fatalf("the primary runs %s after the skipped analysis", img)
	}
	eventually(t, 30*time.Second, "the canary scaled to zero", func() (bool, string) {
		r := s.replicas("podinfo")
		return r == 0, fmt.Sprintf("%d replicas", r)
	})
	for _, path := range []string{"/", "/gate/halt"} {
		if got := s.loadTester.received(path); len(got) > 0 {
			t.Errorf("the load tester got %d calls to %s: the analysis ran", len(got), path)
		}
	}
	s.waitEventMessage("", "Promotion completed", 10*time.Second)
}

func TestASuspendedCanaryLeavesANewRevisionAloneUntilItIsResumed(t *testing.T) {
	t.Parallel()
	s := newScenario(t, "suspend", "podinfo")
	s.apply("podinfo-deployment.yaml", "suspend.yaml")
	s.waitPhase(initialized, time.Minute)
	suspend := func(on bool) {
		c := &sluicev1beta1.Canary{}
		s.update(c, "podinfo", func() { c.Spec.Suspend = on })
	}

	suspend(true)
	release := s.history.mark()
	s.release("Deployment", podinfo601)
	// Two and a half analysis intervals: time for two steps, had it not
	// been suspended.
	s.stays("the Canary left alone", 25*time.Second, func(c *sluicev1beta1.Canary) bool {
		return c.Status.Phase == initialized && s.replicas("podinfo") == 0 && s.image("Deployment", "podinfo-primary") == podinfo600
	})

	suspend(false)
	s.waitPhase(succeeded, 90*time.Second)
	s.checkPhases(release, promoted)
	if img := s.image("Deployment", "podinfo-primary"); img != podinfo601 {
		t.Fatalf("the primary runs %s after the resumed release", img)
	}
}

func TestRevertOnDeletionGivesTheDeploymentItsReplicasAndTheServiceItsSelector(t *testing.T) {
	t.Parallel()
	s := newScenario(t, "revert-on-deletion", "podinfo")
	s.apply("podinfo-deployment.yaml", "revert-on-deletion.yaml")
	s.waitPhase(initialized, time.Minute)
	// The Service that existed is taken over: it selects the primary.
	if got := s.selector("podinfo"); !maps.Equal(got, map[string]string{"app": "podinfo-primary"}) {
		t.Fatalf("the apex Service selects %v, want the primary's pods", got)
	}
	if r := s.replicas("podinfo"); r != 0 {
		t.Fatalf("the target has %d replicas after initialization", r)
	}
	s.deleteReverting()
	d := &appsv1.Deployment{}
	s.get(d, "podinfo")
	if *d.Spec.Replicas != 2 {
		t.Fatalf("the Deployment has %d replicas after the deletion, want its 2 back", *d.Spec.Replicas)
	}
	eventually(t, 30*time.Second, "the Deployment ready", func() (bool, string) {
		s.get(d, "podinfo")
		return d.Status.ReadyReplicas == 2, fmt.Sprintf("%d ready", d.Status.ReadyReplicas)
	})
	svc := &corev1.Service{}
	s.get(svc, "podinfo")
	if !maps.Equal(svc.Spec.Selector, map[string]string{"app": "podinfo"}) || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 9898 {
		t.Fatalf("the Service after the deletion selects %v on ports %+v, want its own app=podinfo on 9898", svc.Spec.Selector, svc.Spec.Ports)
	}
}
