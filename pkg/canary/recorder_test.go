package canary

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/canary/plan"
)

func TestRecorderExportsCanaryStateAndReleases(t *testing.T) {
	reg := prometheus.NewRegistry()
	r, err := NewRecorder(reg)
	if err != nil {
		t.Fatal(err)
	}
	c := &sluicev1beta1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "test"},
		Status: sluicev1beta1.CanaryStatus{Phase: sluicev1beta1.CanaryPhaseFailed, CanaryWeight: 30, FailedChecks: 2}}
	r.observe(c)
	r.release(c, plan.Canary, plan.ReleaseFailed, 90*time.Second)
	want := `
# HELP sluice_canary_failed_checks Failed checks of the current analysis.
# TYPE sluice_canary_failed_checks gauge
sluice_canary_failed_checks{name="podinfo",namespace="test"} 2
# HELP sluice_canary_releases_total Finished releases by strategy and result (succeeded, skipped, failed).
# TYPE sluice_canary_releases_total counter
sluice_canary_releases_total{name="podinfo",namespace="test",result="failed",strategy="canary"} 1
# HELP sluice_canary_status Canary status: 0 rolling out, 1 promoted or idle, 2 failed.
# TYPE sluice_canary_status gauge
sluice_canary_status{name="podinfo",namespace="test"} 2
# HELP sluice_canary_weight Percentage of traffic on the primary and on the canary.
# TYPE sluice_canary_weight gauge
sluice_canary_weight{name="podinfo",namespace="test",workload="canary"} 30
sluice_canary_weight{name="podinfo",namespace="test",workload="primary"} 70
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "sluice_canary_failed_checks", "sluice_canary_releases_total", "sluice_canary_status", "sluice_canary_weight"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(r.duration); n != 1 {
		t.Fatalf("%d release duration series, want 1", n)
	}

	r.forget(types.NamespacedName{Namespace: "test", Name: "podinfo"})
	if n := testutil.CollectAndCount(r.status) + testutil.CollectAndCount(r.weight); n != 0 {
		t.Fatalf("%d series left after the Canary's deletion", n)
	}
	if _, err := NewRecorder(reg); err != nil {
		t.Fatalf("a second recorder on the same registry: %v", err)
	}
}
