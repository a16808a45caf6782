package flagger

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
)

// checkServices checks the three Services of the kubernetes provider:
// the apex and -primary select the primary's pods, -canary the target's.
func (s *scenario) checkServices(apex, target string) {
	s.T.Helper()
	want := map[string]string{apex: target + "-primary", apex + "-primary": target + "-primary", apex + "-canary": target}
	for svc, app := range want {
		if got := s.selector(svc); !maps.Equal(got, map[string]string{"app": app}) {
			s.T.Fatalf("Service %s selects %v, want app=%s", svc, got, app)
		}
	}
}

func TestBlueGreenOnKubernetesServicesWaitsForTheLoadTestersGatesAndRollsBackWhenAsked(t *testing.T) {
	t.Parallel()
	s := newScenario(t, "bluegreen-gates", "podinfo")
	lt := s.loadTester
	s.apply("podinfo-deployment.yaml", "kubernetes-blue-green.yaml")
	s.waitPhase(initialized, time.Minute)
	s.checkServices("podinfo", "podinfo")
	primary := &appsv1.Deployment{}
	s.get(primary, "podinfo-primary")
	if got := primary.Spec.Selector.MatchLabels; !maps.Equal(got, map[string]string{"app": "podinfo-primary"}) {
		t.Fatalf("podinfo-primary selects %v, want app=podinfo-primary", got)
	}
	if r := s.replicas("podinfo"); r != 0 {
		t.Fatalf("the target has %d replicas after initialization, want 0", r)
	}

	// The confirm-rollout gate is closed until opened: the new revision
	// waits, and the canary stays at zero.
	release := s.history.mark()
	s.release("Deployment", podinfo601)
	s.waitPhase(waiting, 30*time.Second)
	s.waitEventMessage("", "waiting for approval", 30*time.Second)
	eventually(t, 30*time.Second, "the gate refused", func() (bool, string) {
		calls := lt.received("/gate/check")
		return len(calls) > 0 && calls[len(calls)-1].Status == http.StatusForbidden, lt.paths()
	})
	if r := s.replicas("podinfo"); r != 0 {
		t.Fatalf("the canary was scaled to %d before the gate opened", r)
	}

	// Opened, the rollout starts; closed again, it holds the promotion
	// once the iterations are done (the two gates are one at the load
	// tester, as in Flagger's manual gating docs).
	lt.post("/gate/open", s.Name, "podinfo")
	s.waitPhase(progressing, 30*time.Second)
	lt.post("/gate/close", s.Name, "podinfo")
	eventually(t, 30*time.Second, "the canary scaled up", func() (bool, string) {
		r := s.replicas("podinfo")
		return r == 2, fmt.Sprintf("%d replicas", r)
	})
	s.waitPhase(waitingPromotion, 90*time.Second)
	if img := s.image("Deployment", "podinfo-primary"); img != podinfo600 {
		t.Fatalf("the primary runs %s while the promotion waits", img)
	}
	lt.post("/gate/open", s.Name, "podinfo")
	s.checkPromoted(s.waitPhase(succeeded, 90*time.Second), metav1.ConditionTrue)
	s.checkPhases(release, []sluicev1beta1.CanaryPhase{waiting, progressing, waitingPromotion, promoting, finalising, succeeded})
	if got := positive(s.history.iterationsSince(release.iterations)); len(got) < 2 || !slices.Equal(got[:2], []int{1, 2}) {
		t.Fatalf("iterations went %v, want one a step up to 2", got)
	}
	if img := s.image("Deployment", "podinfo-primary"); img != podinfo601 {
		t.Fatalf("the primary runs %s after the promotion", img)
	}
	eventually(t, 30*time.Second, "the canary scaled to zero", func() (bool, string) {
		r := s.replicas("podinfo")
		return r == 0, fmt.Sprintf("%d replicas", r)
	})
	// The kubernetes provider switches traffic by promotion alone.
	s.checkServices("podinfo", "podinfo")

	// What the load tester was asked: the acceptance test once, before the
	// analysis; the load test at each step; the rollback gate, closed.
	if got := lt.tasks("bash"); !slices.Equal(got, []string{"curl -sd 'test' http://podinfo-canary/token | grep token"}) {
		t.Errorf("acceptance tests %q, want the manifest's once", got)
	}
	if got := lt.tasks("cmd"); len(got) < 2 || got[0] != "hey -z 1m -q 10 -c 2 http://podinfo-canary.test/" {
		t.Errorf("load tests %q, want the manifest's at each iteration", got)
	}
	for _, c := range lt.received("/rollback/check") {
		if c.Status != http.StatusForbidden || c.Payload.Name != "podinfo" || c.Payload.Namespace != s.Name {
			t.Errorf("rollback check %+v", c)
		}
	}
	if len(lt.received("/rollback/check")) == 0 {
		t.Error("the rollback gate was never checked")
	}
	s.waitEventMessage("", "New revision", 10*time.Second)
	s.waitEventMessage("", "Promotion completed", 10*time.Second)

	// The next revision starts at once (the gate is open) and is rolled
	// back when rollback is opened.
	release = s.history.mark()
	s.release("Deployment", podinfo602)
	s.waitPhase(progressing, 30*time.Second)
	lt.post("/rollback/open", s.Name, "podinfo")
	s.checkPromoted(s.waitPhase(failed, time.Minute), metav1.ConditionFalse)
	s.checkPhases(release, []sluicev1beta1.CanaryPhase{progressing, failed})
	if img := s.image("Deployment", "podinfo-primary"); img != podinfo601 {
		t.Fatalf("the primary runs %s after the rollback", img)
	}
	eventually(t, 30*time.Second, "the canary scaled to zero", func() (bool, string) {
		r := s.replicas("podinfo")
		return r == 0, fmt.Sprintf("%d replicas", r)
	})
	s.waitEventMessage("Warning", "Rolling back", 10*time.Second)
}
