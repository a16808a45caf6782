package scale

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/manifests"
)

// The tests of this file check how the benchmark computes its figures;
// they need no control plane and run with every `go test ./...`.

func TestPercentile(t *testing.T) {
	twenty := make([]time.Duration, 20)
	for i := range twenty {
		twenty[i] = time.Duration(i+1) * time.Millisecond
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"the median of 20 is the 10th", twenty, 0.5, 10 * time.Millisecond},
		{"the 99th percentile of 20 is the largest", twenty, 0.99, 20 * time.Millisecond},
		{"the 95th percentile of 20 is the 19th", twenty, 0.95, 19 * time.Millisecond},
		{"one sample is every percentile", []time.Duration{time.Second}, 0.99, time.Second},
		{"no samples is zero", nil, 0.5, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.sorted, tt.p); got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
}

const metricsText = `# HELP apiserver_request_total Counter of apiserver requests.
# TYPE apiserver_request_total counter
apiserver_request_total{code="200",component="apiserver",dry_run="",group="coordination.k8s.io",resource="leases",scope="resource",subresource="",verb="PUT",version="v1"} 30
apiserver_request_total{code="409",component="apiserver",dry_run="",group="coordination.k8s.io",resource="leases",scope="resource",subresource="",verb="PUT",version="v1"} 2
apiserver_request_total{code="200",component="apiserver",dry_run="",group="sluice.dev",resource="canaries",scope="resource",subresource="status",verb="PUT",version="v1beta1"} 7
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="",scope="",subresource="",verb="GET",version=""} 3
# HELP apiserver_flowcontrol_dispatched_requests_total Number of requests executed.
# TYPE apiserver_flowcontrol_dispatched_requests_total counter
apiserver_flowcontrol_dispatched_requests_total{flow_schema="sluice-operator",priority_level="workload-low"} 41
apiserver_flowcontrol_dispatched_requests_total{flow_schema="service-accounts",priority_level="workload-low"} 5
apiserver_flowcontrol_dispatched_requests_total{flow_schema="exempt",priority_level="exempt"} 900
`

func TestParseCountsSumsRequestsByVerbAndResourceAndCountsTheOperatorsFlowSchemaAlone(t *testing.T) {
	c, err := parseCounts(strings.NewReader(metricsText))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"PUT leases": 32, "PUT canaries/status": 7, "GET (non-resource)": 3}
	for k, v := range want {
		if c.requests[k] != v {
			t.Errorf("%s: got %g, want %g (all: %v)", k, c.requests[k], v, c.requests)
		}
	}
	if len(c.requests) != len(want) {
		t.Errorf("got %d keys, want %d: %v", len(c.requests), len(want), c.requests)
	}
	if c.total() != 42 {
		t.Errorf("total: got %g, want 42", c.total())
	}
	if c.operator != 41 {
		t.Errorf("operator: got %g, want 41", c.operator)
	}
}

func TestDifferenceIsTheWindowsRateLessTheBaselinesByVerbAndResource(t *testing.T) {
	idle := windowCounts{minutes: 2, counts: counts{requests: map[string]float64{"PUT leases": 80, "GET (non-resource)": 2, "LIST pods": 0.1}}}
	baseline := windowCounts{minutes: 4, counts: counts{requests: map[string]float64{"PUT leases": 40, "GET (non-resource)": 4, "PATCH nodes": 4}}}
	got := difference(idle, baseline)
	want := []rate{{"PUT leases", 30}, {"PATCH nodes", -1}}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestTheOperatorRunsWithThePodsArgsAndLoopbackAddresses(t *testing.T) {
	objs, err := manifests.KustomizeBuild(filepath.Join(controlplane.RepoRoot(), "kustomize"))
	if err != nil {
		t.Fatal(err)
	}
	pod, err := containerArgs(manifests.Select(objs, "Deployment"), "sluice")
	if err != nil {
		t.Fatal(err)
	}
	e := endpoints{metrics: "127.0.0.1:1", probes: "127.0.0.1:2", receiver: "127.0.0.1:3", pprof: "127.0.0.1:4"}
	got := withAddresses(pod, "/tmp/kubeconfig", e)
	for _, want := range []string{
		"--kubeconfig=/tmp/kubeconfig", "--leader-election-namespace=sluice-system", "--pprof-bind-address=127.0.0.1:4",
		"--metrics-bind-address=127.0.0.1:1", "--health-probe-bind-address=127.0.0.1:2", "--receiver-bind-address=127.0.0.1:3",
		"--leader-elect=true", "--default-provider=kubernetes",
	} {
		if !slices.Contains(got, want) {
			t.Errorf("no %s in %v", want, got)
		}
	}
	if len(got) != len(pod)+3 {
		t.Errorf("got %d args from the pod's %d: %v", len(got), len(pod), got)
	}
	for _, a := range got {
		if strings.Contains(a, "=:") {
			t.Errorf("a pod address is left: %s", a)
		}
	}
}

func TestTheTrackerNotesWhenAllAreSettledAndWhenAnAwaitedStatusArrives(t *testing.T) {
	tr := newTracker(2)
	status := func(i int, phase sluicev1beta1.CanaryPhase, ready metav1.ConditionStatus, applied string) *sluicev1beta1.Canary {
		k := key(i)
		c := canary(k)
		c.Status.Phase, c.Status.LastAppliedSpec = phase, applied
		c.Status.Conditions = []metav1.Condition{{Type: sluicev1beta1.ReadyCondition, Status: ready}}
		return c
	}
	at := func(s int) time.Time { return time.Unix(int64(s), 0) }
	tr.seen(status(0, sluicev1beta1.CanaryPhaseInitializing, metav1.ConditionUnknown, ""), at(1))
	tr.seen(status(0, sluicev1beta1.CanaryPhaseInitialized, metav1.ConditionTrue, "a"), at(2))
	tr.seen(status(1, sluicev1beta1.CanaryPhaseInitialized, metav1.ConditionFalse, "a"), at(3))
	if tr.count() != 1 || !tr.allAt().IsZero() {
		t.Fatalf("a Canary that is not Ready counts as settled: %d, all at %s", tr.count(), tr.allAt())
	}
	tr.seen(status(1, sluicev1beta1.CanaryPhaseInitialized, metav1.ConditionTrue, "a"), at(4))
	if !tr.allAt().Equal(at(4)) {
		t.Fatalf("all settled at %s, want %s", tr.allAt(), at(4))
	}
	// A release later takes one out again; the time all were first
	// settled stays.
	w := tr.await(key(1), func(c *sluicev1beta1.Canary) bool { return c.Status.LastAppliedSpec != "a" })
	tr.seen(status(1, sluicev1beta1.CanaryPhaseProgressing, metav1.ConditionUnknown, "b"), at(5))
	select {
	case <-w.done:
	default:
		t.Fatal("the awaited status arrived but the wait is not done")
	}
	if !w.at.Equal(at(5)) || tr.count() != 1 || !tr.allAt().Equal(at(4)) {
		t.Fatalf("seen at %s, %d settled, all at %s", w.at, tr.count(), tr.allAt())
	}
	if already := tr.await(key(1), func(c *sluicev1beta1.Canary) bool { return c.Status.LastAppliedSpec == "b" }); already.at.IsZero() {
		t.Fatal("a status seen already does not count at once")
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 10000: "10,000", 1234567: "1,234,567", -1000: "-1,000"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestTheWorkOfIdleCanariesLeavesOutLeasesAndWatches(t *testing.T) {
	rates := []rate{{"PUT leases", 29.8}, {"GET leases", 0.5}, {"WATCH deployments", 0.4}, {"LIST services", 2}, {"PATCH nodes", -1}}
	if got := perCanaryWork(rates); got != 1 {
		t.Fatalf("got %g, want 1", got)
	}
}

func TestTheOperatorsOwnRequestsAreSummedByMethodAndPerMinute(t *testing.T) {
	const text = `# TYPE rest_client_requests_total counter
rest_client_requests_total{code="200",host="127.0.0.1:1",method="PUT"} 100
rest_client_requests_total{code="409",host="127.0.0.1:1",method="PUT"} 2
rest_client_requests_total{code="200",host="127.0.0.1:1",method="GET"} 7
`
	after, err := sumByLabel(strings.NewReader(text), "rest_client_requests_total", "method")
	if err != nil {
		t.Fatal(err)
	}
	if after["PUT"] != 102 || after["GET"] != 7 || len(after) != 2 {
		t.Fatalf("got %v", after)
	}
	got := perMinute(map[string]float64{"PUT": 42, "GET": 7}, after, 2)
	if len(got) != 1 || got["PUT"] != 30 {
		t.Fatalf("got %v, want PUT 30 a minute and nothing for GET, which did not grow", got)
	}
	if s := byMethod(got); s != "PUT 30.0 /min" {
		t.Fatalf("printed %q", s)
	}
	if s := byMethod(nil); s != "none" {
		t.Fatalf("printed %q for no requests", s)
	}
}

func TestProcStatLinesGiveTheCommandAndItsCPUTime(t *testing.T) {
	tests := []struct {
		name string
		stat string
		comm string
		cpu  time.Duration
		ok   bool
	}{
		{"a plain name", "123 (kube-apiserver) S 1 123 123 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 12 0 100 0 0", "kube-apiserver", 3 * time.Second, true},
		{"a name with spaces and parentheses", "7 (a (b) c) R 1 7 7 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 5 0 0", "a (b) c", 30 * time.Millisecond, true},
		{"a truncated line", "7 (sluice) R 1 7", "", 0, false},
		{"no name", "garbage", "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			comm, cpu, ok := parseStat(tt.stat)
			if comm != tt.comm || cpu != tt.cpu || ok != tt.ok {
				t.Fatalf("got %q %s %v, want %q %s %v", comm, cpu, ok, tt.comm, tt.cpu, tt.ok)
			}
		})
	}
}

func TestCPUSharesAreTheLargestFirstAndLeaveOutUnderASecond(t *testing.T) {
	before := map[string]time.Duration{"etcd": time.Second, "kube-apiserver": 0, "bash": 0}
	after := map[string]time.Duration{"etcd": 31 * time.Second, "kube-apiserver": 90 * time.Second, "bash": 500 * time.Millisecond, "sluice": 12 * time.Second}
	got := cpuShares(before, after)
	want := []share{{"kube-apiserver", 90 * time.Second}, {"etcd", 30 * time.Second}, {"sluice", 12 * time.Second}}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
