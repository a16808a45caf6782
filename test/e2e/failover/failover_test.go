package failover

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/leaderelection"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/test/binary"
	"sluice.dev/sluice/test/chaos"
	"sluice.dev/sluice/test/controlplane"
)

const ns = "failover"

// The lease timings of both replicas: short, so that a takeover is quick.
const (
	leaseDuration = 4 * time.Second
	renewDeadline = 3 * time.Second
	retryPeriod   = time.Second
)

// replica is one operator process with its metrics address, which says
// whether it leads.
type replica struct {
	*chaos.Process
	metrics string
}

func (r replica) leads() bool {
	resp, err := http.Get("http://" + r.metrics + "/metrics")
	if err != nil {
		return false
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	return err == nil && strings.Contains(string(body), `leader_election_master_status{name="`+chaos.LeaseName+`"} 1`)
}

func manifest(metricURL, hooksURL string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata: {name: %[1]s}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: app, namespace: %[1]s}
spec:
  replicas: 1
  selector: {matchLabels: {app: app}}
  template:
    metadata: {labels: {app: app}}
    spec:
      containers: [{name: app, image: "app:1", ports: [{name: http, containerPort: 8080}]}]
---
apiVersion: sluice.dev/v1beta1
kind: MetricTemplate
metadata: {name: error-ratio, namespace: %[1]s}
spec:
  provider: {type: web, address: %[2]q, jsonPath: "{.value}"}
  query: "?canary={{ name }}"
---
apiVersion: sluice.dev/v1beta1
kind: Canary
metadata: {name: app, namespace: %[1]s}
spec:
  provider: gatewayapi:v1
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: app}
  service:
    port: 8080
    gatewayRefs: [{name: public, namespace: gateways}]
  analysis:
    interval: 10s
    threshold: 2
    stepWeights: [10, 20, 30, 40, 50]
    metrics:
      - name: error-ratio
        templateRef: {name: error-ratio}
        thresholdRange: {max: 0.5}
        interval: 10s
    webhooks:
      - {name: done, type: post-rollout, url: %[3]q}
`, ns, metricURL, hooksURL+"/post-rollout")
}

func TestTheStandbyTakesOverAKilledLeaderMidReleaseWithNoStepSkippedOrRepeated(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	bin, err := binary.Build(dir)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := chaos.InstallOperatorRBAC(ctx, cp)
	if err != nil {
		t.Fatal(err)
	}
	metric := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{"value": 0}`)
	}))
	t.Cleanup(metric.Close)
	hooks, closeHooks := chaos.StartHooks()
	t.Cleanup(closeHooks)
	recorder, err := chaos.StartRecorder(ctx, cp.Config, cp.Scheme)
	if err != nil {
		t.Fatal(err)
	}
	if err := chaos.Apply(ctx, cp.Client, manifest(metric.URL+"/ratio", hooks.URL)); err != nil {
		t.Fatal(err)
	}

	replicas := make([]replica, 2)
	for i := range replicas {
		metrics := chaos.FreeAddr(t)
		p, err := chaos.StartProcess(bin, dir, fmt.Sprintf("replica-%d", i),
			"--kubeconfig="+kubeconfig,
			"--leader-election-namespace="+chaos.OperatorNamespace,
			"--leader-election-lease-duration="+leaseDuration.String(),
			"--leader-election-renew-deadline="+renewDeadline.String(),
			"--leader-election-retry-period="+retryPeriod.String(),
			"--metrics-bind-address="+metrics,
			"--health-probe-bind-address="+chaos.FreeAddr(t),
			"--receiver-bind-address=0",
			"--log-encoding=console")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			p.Kill()
			if t.Failed() {
				t.Logf("%s:\n%s", p.Name, p.Tail(20000))
			}
		})
		replicas[i] = replica{Process: p, metrics: metrics}
	}

	key := client.ObjectKey{Namespace: ns, Name: "app"}
	waitPhase(t, recorder, key, time.Minute, "the Canary initialized", func(o chaos.Observation) bool {
		return o.Phase == sluicev1beta1.CanaryPhaseInitialized
	})
	var leader, standby replica
	controlplane.Eventually(t, 30*time.Second, "one replica leads", func(context.Context) (bool, string) {
		a, b := replicas[0].leads(), replicas[1].leads()
		switch {
		case a && !b:
			leader, standby = replicas[0], replicas[1]
		case b && !a:
			leader, standby = replicas[1], replicas[0]
		}
		return a != b, fmt.Sprintf("replica-0 leads: %v, replica-1 leads: %v", a, b)
	})
	oldHolder, err := chaos.LeaseHolder(ctx, cp.Client)
	if err != nil {
		t.Fatal(err)
	}

	started := time.Now()
	if err := chaos.SetImage(ctx, cp.Client, key, "app:2"); err != nil {
		t.Fatal(err)
	}
	// Mid-release: right after the second traffic step was written.
	waitPhase(t, recorder, key, 2*time.Minute, "the canary at weight 20", func(o chaos.Observation) bool {
		return o.Phase == sluicev1beta1.CanaryPhaseProgressing && o.Weight == 20
	})
	leader.Kill()
	killed := time.Now()
	t.Logf("killed the leader %s at weight 20", leader.Name)

	holder, at, err := chaos.WaitNewHolder(ctx, cp.Client, oldHolder)
	if err != nil {
		t.Fatal(err)
	}
	takeover := at.Sub(killed)
	t.Logf("takeover: %s, from the kill until %s held the lease (lease %s, renew deadline %s, retry period %s)",
		takeover.Round(10*time.Millisecond), holder, leaseDuration, renewDeadline, retryPeriod)
	// The standby takes the lease once a lease duration has passed since
	// it last saw it renewed. It looks once a retry period stretched by
	// client-go's jitter (up to 2.2 periods): it may see the leader's last
	// renewal up to that long after the kill, and take the lease up to
	// that long after it runs out.
	if limit := leaseDuration + 2*time.Duration((1+leaderelection.JitterFactor)*float64(retryPeriod)); takeover > limit {
		t.Errorf("the standby took the lease %s after the kill, over %s", takeover, limit)
	}
	if !standby.leads() {
		controlplane.Eventually(t, 10*time.Second, "the standby reports that it leads", func(context.Context) (bool, string) {
			return standby.leads(), "leader_election_master_status is not 1"
		})
	}

	var obs []chaos.Observation
	controlplane.Eventually(t, 3*time.Minute, "the release ends", func(context.Context) (bool, string) {
		var ended bool
		obs, ended = chaos.Cut(recorder.History(key), started)
		return ended, fmt.Sprintf("%d observations", len(obs))
	})
	end := obs[len(obs)-1]
	// The primary's template change may reach the recorder just after the
	// Canary's status.
	time.Sleep(2 * time.Second)
	promotions := chaos.Promotions(recorder.Templates(key), started, time.Now())
	var lines []string
	for _, o := range obs {
		lines = append(lines, o.String())
	}
	t.Logf("statuses of the release:\n%s", strings.Join(lines, "\n"))
	for _, p := range chaos.Check(chaos.Expectation{StepWeights: []int{10, 20, 30, 40, 50}, Interval: 10 * time.Second, Healthy: true}, obs, promotions) {
		t.Error(p)
	}
	if end.Phase != sluicev1beta1.CanaryPhaseSucceeded {
		t.Fatalf("the release ended %s", end.Phase)
	}
	if calls := hooks.Calls(key, sluicev1beta1.PostRolloutHook); len(calls) != 1 {
		t.Errorf("the post-rollout hook was called %d times, want once: %+v", len(calls), calls)
	}
	route := &gatewayv1.HTTPRoute{}
	if err := cp.Client.Get(ctx, key, route); err != nil {
		t.Fatal(err)
	}
	if split := chaos.RouteSplit(route, "app"); split != "" {
		t.Errorf("the HTTPRoute is left split after the release: %s", split)
	}
	t.Logf("the standby finished the release %s after the kill", end.At.Sub(killed).Round(time.Second))
}

// waitPhase waits until the recorder has seen an observation of the
// Canary that cond accepts.
func waitPhase(t *testing.T, r *chaos.Recorder, key client.ObjectKey, timeout time.Duration, what string, cond func(chaos.Observation) bool) {
	t.Helper()
	controlplane.Eventually(t, timeout, what, func(context.Context) (bool, string) {
		h := r.History(key)
		for _, o := range h {
			if cond(o) {
				return true, ""
			}
		}
		if len(h) == 0 {
			return false, "no status yet"
		}
		return false, h[len(h)-1].String()
	})
}
