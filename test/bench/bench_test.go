// Package bench measures the canary engine on a real control plane: how
// fast a change becomes a rollout, and what each Canary costs the API
// server. Run with `make bench`.
package bench

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/inprocess"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	flag.Parse()
	if flag.Lookup("test.bench").Value.String() == "" {
		// `go test ./...` without -bench: nothing here runs.
		os.Exit(m.Run())
	}
	ctrl.SetLogger(inprocess.ErrorLogger())
	os.Exit(controlplane.RunTests(m, controlplane.Options{}, &cp))
}

// requestCounter counts the operator's API requests by kind.
type requestCounter struct {
	mu     sync.Mutex
	counts map[string]int
}

// counting sends requests on through next, counted.
type counting struct {
	*requestCounter
	next http.RoundTripper
}

func (c counting) RoundTrip(req *http.Request) (*http.Response, error) {
	kind := "write"
	switch req.Method {
	case http.MethodGet:
		kind = "read"
		if req.URL.Query().Get("watch") == "true" {
			kind = "watch"
		}
	}
	// Events are written by the event recorder, apart from the reconcile.
	if strings.Contains(req.URL.Path, "/events") {
		kind = "event " + kind
	}
	c.mu.Lock()
	c.counts[kind]++
	c.mu.Unlock()
	return c.next.RoundTrip(req)
}

func (c *requestCounter) reset() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.counts
	c.counts = map[string]int{}
	return out
}

// start runs the operator for one namespace and returns its request
// counter.
func start(b *testing.B, ns string) *requestCounter {
	b.Helper()
	counter := &requestCounter{counts: map[string]int{}}
	cfg := rest.CopyConfig(cp.Config)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return counting{counter, rt} })
	inprocess.Start(b, cfg, ns, inprocess.ErrorLogger())
	return counter
}

// deploy creates n Deployments with blue/green Canaries, named app-0.., and
// waits for them all to be initialized.
func deploy(b *testing.B, ns string, n int, interval string, iterations int) {
	b.Helper()
	ctx := b.Context()
	if err := cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		b.Fatal(err)
	}
	for i := range n {
		name := fmt.Sprintf("app-%d", i)
		labels := map[string]string{"app": name}
		d := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To[int32](1),
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:0"}}},
				},
			},
		}
		c := &sluicev1beta1.Canary{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: sluicev1beta1.CanarySpec{
				Provider:  "kubernetes",
				TargetRef: sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
				Service:   sluicev1beta1.CanaryService{Port: 80},
				Analysis:  &sluicev1beta1.CanaryAnalysis{Interval: interval, Threshold: 1, Iterations: iterations},
			},
		}
		for _, o := range []client.Object{d, c} {
			if err := cp.Client.Create(ctx, o); err != nil {
				b.Fatal(err)
			}
		}
	}
	controlplane.Eventually(b, 5*time.Minute, "all Canaries initialized", func(ctx context.Context) (bool, string) {
		var list sluicev1beta1.CanaryList
		if err := cp.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return false, err.Error()
		}
		ready := 0
		for _, c := range list.Items {
			if c.Status.Phase == sluicev1beta1.CanaryPhaseInitialized {
				ready++
			}
		}
		return ready == n, fmt.Sprintf("%d of %d initialized", ready, n)
	})
}

func setImage(b *testing.B, ns, name, image string) {
	b.Helper()
	d := &appsv1.Deployment{}
	if err := cp.Client.Get(b.Context(), client.ObjectKey{Namespace: ns, Name: name}, d); err != nil {
		b.Fatal(err)
	}
	patch := client.MergeFrom(d.DeepCopy())
	d.Spec.Template.Spec.Containers[0].Image = image
	if err := cp.Client.Patch(b.Context(), d, patch); err != nil {
		b.Fatal(err)
	}
}

// waitPhase polls the API server directly, every millisecond, so that the
// measurement is the operator's reaction and not a poll interval.
func waitPhase(b *testing.B, ns, name string, phase sluicev1beta1.CanaryPhase) {
	b.Helper()
	deadline := time.Now().Add(time.Minute)
	c := &sluicev1beta1.Canary{}
	for time.Now().Before(deadline) {
		if err := cp.Client.Get(b.Context(), client.ObjectKey{Namespace: ns, Name: name}, c); err == nil && c.Status.Phase == phase {
			return
		}
		time.Sleep(time.Millisecond)
	}
	b.Fatalf("%s/%s did not reach %s: %s", ns, name, phase, c.Status.Phase)
}

// BenchmarkChangeToProgressing measures the time from a change of a
// target's pod template to its Canary in Progressing, at interval 1m, with
// other idle Canaries beside it. Flagger waits up to one interval.
func BenchmarkChangeToProgressing(b *testing.B) {
	for _, idle := range []int{0, 100} {
		b.Run(fmt.Sprintf("idle=%d", idle), func(b *testing.B) {
			ns := fmt.Sprintf("latency-%d", idle)
			start(b, ns)
			deploy(b, ns, idle+1, "1m", 10)
			var latencies []time.Duration
			i := 0
			for b.Loop() {
				i++
				began := time.Now()
				setImage(b, ns, "app-0", fmt.Sprintf("app:%d", i))
				waitPhase(b, ns, "app-0", sluicev1beta1.CanaryPhaseProgressing)
				latencies = append(latencies, time.Since(began))
				// Back to the promoted image: the analysis ends and the
				// Canary is idle for the next change.
				setImage(b, ns, "app-0", "app:0")
				waitPhase(b, ns, "app-0", sluicev1beta1.CanaryPhaseInitialized)
			}
			slices.Sort(latencies)
			b.ReportMetric(float64(latencies[len(latencies)/2].Microseconds())/1000, "ms-median-to-progressing")
			b.ReportMetric(float64(latencies[len(latencies)-1].Microseconds())/1000, "ms-max-to-progressing")
		})
	}
}

// BenchmarkAPIRequestsPerStep runs blue/green rollouts of one Canary at the
// shortest interval. It reports the operator's API requests per analysis
// step, counted between two steps of a running analysis: reads that
// bypass the informer cache, and writes (status and event). It also
// reports the writes of a whole rollout, and what an idle Canary costs per
// minute.
func BenchmarkAPIRequestsPerStep(b *testing.B) {
	const ns, iterations = "requests", 4
	counter := start(b, ns)
	deploy(b, ns, 1, "10s", iterations)
	var reads, writes, steps, rolloutWrites, rollouts, idle int
	var idleFor time.Duration
	round := 0
	// settle lets the event of the step just seen reach the API server,
	// well before the next step, an interval later.
	const settle = 2 * time.Second
	for b.Loop() {
		round++
		counter.reset()
		setImage(b, ns, "app-0", fmt.Sprintf("app:%d", round))
		waitIterations(b, ns, "app-0", 1)
		time.Sleep(settle)
		before := counter.reset()
		waitIterations(b, ns, "app-0", iterations)
		time.Sleep(settle)
		during := counter.reset()
		steps += iterations - 1
		reads += during["read"]
		writes += during["write"] + during["event write"]
		waitPhase(b, ns, "app-0", sluicev1beta1.CanaryPhaseSucceeded)
		// The promotion's events are sent apart from the status write; a
		// late one belongs to the rollout, not to the idle minute.
		time.Sleep(settle)
		after := counter.reset()
		for _, c := range []map[string]int{before, during, after} {
			rolloutWrites += c["write"] + c["event write"]
		}
		rollouts++

		quiet := 20 * time.Second
		time.Sleep(quiet)
		c := counter.reset()
		idle += c["read"] + c["write"] + c["event write"]
		idleFor += quiet
	}
	b.ReportMetric(float64(reads)/float64(steps), "uncached-reads/step")
	b.ReportMetric(float64(writes)/float64(steps), "writes/step")
	b.ReportMetric(float64(rolloutWrites)/float64(rollouts), "writes/rollout")
	b.ReportMetric(float64(idle)/idleFor.Minutes(), "requests/idle-canary/min")
}

func waitIterations(b *testing.B, ns, name string, n int) {
	b.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	c := &sluicev1beta1.Canary{}
	for time.Now().Before(deadline) {
		if err := cp.Client.Get(b.Context(), client.ObjectKey{Namespace: ns, Name: name}, c); err == nil && c.Status.Iterations >= n {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.Fatalf("%s/%s did not reach iteration %d: %d", ns, name, n, c.Status.Iterations)
}
