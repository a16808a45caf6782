package syncbench

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	syncv1 "sluice.dev/sluice/api/sync/v1"
	"sluice.dev/sluice/test/binary"
	"sluice.dev/sluice/test/gitserver"
)

// app is one small app: a Deployment, its Service and a ConfigMap.
const app = `apiVersion: v1
kind: ConfigMap
metadata: {name: APP}
data: {greeting: hello}
---
apiVersion: v1
kind: Service
metadata: {name: APP}
spec:
  selector: {app: APP}
  ports: [{port: 80}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: APP}
spec:
  replicas: 1
  selector: {matchLabels: {app: APP}}
  template:
    metadata: {labels: {app: APP}}
    spec: {containers: [{name: app, image: "app:1"}]}
`

// BenchmarkSync1000Apps applies 1000 small apps from one Git repository,
// one Kustomization each with wait: true, and reports the wall time until
// all are Ready, every object healthy by kstatus, and the peak RSS and
// CPU time of the operator. The operator is the sluice binary, out of
// process, as users run it. Flux publishes 1000 Kustomizations (without
// wait) in 4m16s and 175 MiB on a 16-core runner (fluxcd/flux-benchmark
// RESULTS.md).
func BenchmarkSync1000Apps(b *testing.B) {
	const n, ns = 1000, "sync-bench"
	bin, err := binary.Build(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		git := gitserver.New(b)
		files := map[string]string{}
		for i := range n {
			name := fmt.Sprintf("app-%d", i)
			files[name+"/app.yaml"] = strings.ReplaceAll(app, "APP", name)
		}
		head := git.Commit(files)
		secret, repo := git.Source(ns, "apps", time.Hour)
		create(b, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, secret, repo)
		began := time.Now()
		op := binary.Start(b, bin, "--kubeconfig="+cp.Kubeconfig, "--namespace="+ns, "--leader-elect=false",
			"--metrics-bind-address=0", "--health-probe-bind-address=0", "--receiver-bind-address=0", "--log-level=error")
		for i := range n {
			name := fmt.Sprintf("app-%d", i)
			create(b, &syncv1.Kustomization{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
				Spec: syncv1.KustomizationSpec{
					SourceRef: syncv1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: "apps"},
					Path:      name, Prune: true, TargetNamespace: ns, Wait: true,
					Interval: metav1.Duration{Duration: time.Hour},
					Timeout:  &metav1.Duration{Duration: 10 * time.Minute},
				},
			})
		}
		revision := "main@sha1:" + head
		// A look a second: listing 1000 Kustomizations more often would
		// load the API server the operator shares.
		var ready int
		err := wait.PollUntilContextTimeout(b.Context(), time.Second, 30*time.Minute, true, func(ctx context.Context) (bool, error) {
			select {
			case <-op.Exited():
				return false, fmt.Errorf("the operator exited: %w\n%s", op.Err(), op.Output)
			default:
			}
			var list syncv1.KustomizationList
			if err := cp.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
				return false, nil //nolint:nilerr // a failed list is tried again at the next tick
			}
			ready = 0
			for _, ks := range list.Items {
				if ks.Status.LastAppliedRevision == revision && meta.IsStatusConditionTrue(ks.Status.Conditions, "Ready") {
					ready++
				}
			}
			return ready == n, nil
		})
		if err != nil {
			b.Fatalf("all Kustomizations Ready: %d of %d: %v", ready, n, err)
		}
		wall := time.Since(began)
		rss, err := op.PeakRSS()
		if err != nil {
			b.Fatal(err)
		}
		cpu, err := op.CPU()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(wall.Seconds(), "s/1000-apps")
		b.ReportMetric(float64(rss)/(1<<20), "operator-peak-RSS-MiB")
		b.ReportMetric(cpu.Seconds(), "operator-CPU-s")
	}
}

func create(b *testing.B, objs ...client.Object) {
	b.Helper()
	for _, o := range objs {
		if err := cp.Client.Create(b.Context(), o); err != nil {
			b.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
}

// resetPeakRSS restarts the kernel's peak RSS count for this process, so
// that earlier benchmarks do not count.
func resetPeakRSS(b *testing.B) {
	b.Helper()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Fatalf("reset peak RSS: %v", err)
	}
}

// peakRSS reads VmHWM, the peak resident set, in bytes.
func peakRSS(b *testing.B) int64 {
	b.Helper()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				b.Fatalf("VmHWM %q: %v", v, err)
			}
			return kb << 10
		}
	}
	b.Fatal("no VmHWM in /proc/self/status")
	return 0
}
