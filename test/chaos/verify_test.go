package chaos_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/test/chaos"
)

// statuses builds a rollout's observations: each step is (phase, weight
// or iterations, seconds of its step time).
func statuses(weighted bool, steps ...any) []chaos.Observation {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var obs []chaos.Observation
	for i := 0; i+2 < len(steps); i += 3 {
		o := chaos.Observation{
			At:           base.Add(time.Duration(i) * time.Second),
			Phase:        steps[i].(sluicev1beta1.CanaryPhase),
			LastStepTime: base.Add(time.Duration(steps[i+2].(int)) * time.Second),
		}
		if weighted {
			o.Weight = steps[i+1].(int)
		} else {
			o.Iterations = steps[i+1].(int)
		}
		obs = append(obs, o)
	}
	return obs
}

const (
	progressing = sluicev1beta1.CanaryPhaseProgressing
	promoting   = sluicev1beta1.CanaryPhasePromoting
	finalising  = sluicev1beta1.CanaryPhaseFinalising
	succeeded   = sluicev1beta1.CanaryPhaseSucceeded
	failed      = sluicev1beta1.CanaryPhaseFailed
)

func TestTheChecksOfARolloutFindEachWayItCanGoWrong(t *testing.T) {
	weightedSpec := chaos.Expectation{StepWeights: []int{20, 40, 60}, Interval: 10 * time.Second, Healthy: true}
	iterations := chaos.Expectation{Iterations: 2, Interval: 10 * time.Second, Healthy: true}
	failing := weightedSpec
	failing.Healthy = false
	tests := []struct {
		name       string
		expect     chaos.Expectation
		obs        []chaos.Observation
		promotions int
		want       string // empty: no problem
	}{
		{"every step once, an interval apart, then one promotion is right", weightedSpec,
			statuses(true, progressing, 0, 0, progressing, 0, 10, progressing, 20, 20, progressing, 40, 30, progressing, 60, 40, promoting, 60, 50, finalising, 0, 51, succeeded, 0, 61), 1, ""},
		{"a skipped weight is found", weightedSpec,
			statuses(true, progressing, 0, 10, progressing, 20, 20, progressing, 60, 30, promoting, 60, 40, succeeded, 0, 50), 1, "skipped from step 1 to step 3"},
		{"a weight taken back is found", weightedSpec,
			statuses(true, progressing, 20, 20, progressing, 40, 30, progressing, 20, 40, progressing, 40, 50, progressing, 60, 60, succeeded, 0, 70), 1, "went back from step 2 to step 1"},
		{"two steps closer than the interval are a step run twice", weightedSpec,
			statuses(true, progressing, 0, 0, progressing, 0, 10, progressing, 20, 20, progressing, 40, 22, progressing, 60, 32, succeeded, 0, 42), 1, "under the interval"},
		{"a promotion made twice is found", weightedSpec,
			statuses(true, progressing, 0, 10, progressing, 20, 20, progressing, 40, 30, progressing, 60, 40, succeeded, 0, 50), 2, "2 promotions of the primary, want 1"},
		{"a promotion before the last step is found", weightedSpec,
			statuses(true, progressing, 0, 10, progressing, 20, 20, promoting, 20, 30, succeeded, 0, 40), 1, "promoted after step 1 of 3"},
		{"a healthy version rolled back is wrong", weightedSpec,
			statuses(true, progressing, 0, 10, progressing, 20, 20, failed, 0, 30), 0, "ended Failed, want Succeeded"},
		{"a failing version rolled back with no promotion is right", failing,
			statuses(true, progressing, 0, 10, progressing, 0, 20, failed, 0, 30), 0, ""},
		{"a failing version promoted is wrong", failing,
			statuses(true, progressing, 0, 10, progressing, 20, 20, progressing, 40, 30, progressing, 60, 40, succeeded, 0, 50), 1, "ended Succeeded, want Failed"},
		{"a rolled back version whose primary changed is a promotion too many", failing,
			statuses(true, progressing, 0, 10, failed, 0, 20), 1, "Failed with 1 promotions of the primary, want 0"},
		{"iterations counted one by one are right", iterations,
			statuses(false, progressing, 0, 0, progressing, 0, 10, progressing, 1, 20, progressing, 2, 30, succeeded, 0, 40), 1, ""},
		{"an iteration counted twice is found", iterations,
			statuses(false, progressing, 0, 0, progressing, 0, 10, progressing, 2, 20, succeeded, 0, 30), 1, "skipped from step 0 to step 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.Join(chaos.Check(tt.expect, tt.obs, tt.promotions), "; ")
			if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
				t.Fatalf("problems %q, want %q", got, tt.want)
			}
		})
	}
}

func TestARolloutIsCutFromItsFirstStatusUnderWayToItsEnd(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h := []chaos.Observation{
		{At: base, Phase: succeeded},
		{At: base.Add(2 * time.Second), Phase: sluicev1beta1.CanaryPhaseWaiting},
		{At: base.Add(3 * time.Second), Phase: progressing},
		{At: base.Add(4 * time.Second), Phase: failed},
		{At: base.Add(5 * time.Second), Phase: progressing},
	}
	obs, ended := chaos.Cut(h, base.Add(time.Second))
	if !ended || len(obs) != 3 || obs[0].Phase != sluicev1beta1.CanaryPhaseWaiting || obs[2].Phase != failed {
		t.Fatalf("cut %v (ended %v), want Waiting to Failed", obs, ended)
	}
	if _, ended := chaos.Cut(h, base.Add(4500*time.Millisecond)); ended {
		t.Fatal("a rollout still under way was cut as ended")
	}
}

func TestHungHooksOutlastTheirCallersAndDecideNothing(t *testing.T) {
	hooks, closeHooks := chaos.StartHooks()
	t.Cleanup(closeHooks)
	key := client.ObjectKey{Namespace: "ns", Name: "app"}
	hooks.SetFailing(key, true)
	call := func(hook sluicev1beta1.HookType) (int, error) {
		body := `{"name": "app", "namespace": "ns", "phase": "Progressing", "checksum": "c1"}`
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, hooks.URL+"/"+string(hook), strings.NewReader(body))
		if err != nil {
			return 0, err
		}
		c := &http.Client{Timeout: 300 * time.Millisecond}
		resp, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		_ = resp.Body.Close()
		return resp.StatusCode, nil
	}
	tests := []struct {
		hook     sluicev1beta1.HookType
		hang     bool
		want     int // 0: no answer
		wantHung int
	}{
		{sluicev1beta1.RolloutHook, false, http.StatusInternalServerError, 0},
		{sluicev1beta1.RollbackHook, false, http.StatusOK, 0},
		{sluicev1beta1.ConfirmRolloutHook, true, 0, 1},
		{sluicev1beta1.RollbackHook, true, 0, 2},
		{sluicev1beta1.RolloutHook, true, 0, 3},
		{sluicev1beta1.PostRolloutHook, true, http.StatusOK, 3},
	}
	for _, tt := range tests {
		if tt.hang {
			hooks.Hang(2 * time.Second)
		}
		got, err := call(tt.hook)
		if got != tt.want || (tt.want != 0 && err != nil) {
			t.Errorf("%s (hang %v): status %d, %v; want %d", tt.hook, tt.hang, got, err, tt.want)
		}
		if hooks.Hung() != tt.wantHung {
			t.Errorf("%s (hang %v): %d calls hung, want %d", tt.hook, tt.hang, hooks.Hung(), tt.wantHung)
		}
	}
	if n := len(hooks.Calls(key, sluicev1beta1.RollbackHook)); n != 2 {
		t.Errorf("%d rollback calls recorded, want 2", n)
	}
}
