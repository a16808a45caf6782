package imagebench

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	imagev1 "sluice.dev/sluice/api/image/v1"
	notificationv1 "sluice.dev/sluice/api/notification/v1"
	"sluice.dev/sluice/test/binary"
	"sluice.dev/sluice/test/gitserver"
	"sluice.dev/sluice/test/imageregistry"
)

// operator starts the sluice binary for namespace ns, with its receiver
// on a free loopback port, and returns the process and that address.
func operator(b *testing.B, ns string) (*binary.Operator, string) {
	b.Helper()
	bin, err := binary.Build(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	op := binary.Start(b, bin, "--kubeconfig="+cp.Kubeconfig, "--namespace="+ns, "--leader-elect=false",
		"--metrics-bind-address=0", "--health-probe-bind-address=0", "--receiver-bind-address="+addr, "--log-level=error")
	return op, addr
}

func create(b *testing.B, objs ...client.Object) {
	b.Helper()
	for _, o := range objs {
		if err := cp.Client.Create(b.Context(), o); err != nil {
			b.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
}

// BenchmarkNewTagToCommit measures the time from a Receiver call about a
// new tag to the automation's commit in Git: the scan, the policy's
// choice, the clone, the setters, the commit and the push. Each
// iteration pushes the next tag.
func BenchmarkNewTagToCommit(b *testing.B) {
	const ns = "image-latency"
	reg, git := imageregistry.New(b), gitserver.New(b)
	git.AllowPush()
	reg.Push(b, "app", "1.0.0")
	git.Commit(map[string]string{"deploy.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app}\nspec:\n  template:\n    spec:\n      containers:\n      - name: app\n        image: " +
		reg.Image("app") + `:1.0.0 # {"$imagepolicy": "` + ns + `:app"}` + "\n"})
	secret, repo := git.Source(ns, "repo", time.Hour)
	create(b, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, secret, repo,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "hook", Namespace: ns}, StringData: map[string]string{"token": "t0ken"}},
		&notificationv1.Receiver{ObjectMeta: metav1.ObjectMeta{Name: "registry", Namespace: ns}, Spec: notificationv1.ReceiverSpec{
			Type: notificationv1.GenericReceiver, SecretRef: &notificationv1.LocalObjectReference{Name: "hook"},
			Resources: []notificationv1.CrossNamespaceObjectReference{{Kind: "ImageRepository", Name: "app"}},
		}},
		&imagev1.ImageRepository{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns}, Spec: imagev1.ImageRepositorySpec{
			Image: reg.Image("app"), Interval: metav1.Duration{Duration: time.Hour}, Insecure: true,
		}},
		&imagev1.ImagePolicy{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns}, Spec: imagev1.ImagePolicySpec{
			ImageRepositoryRef: imagev1.NamespacedObjectReference{Name: "app"},
			Policy:             imagev1.ImagePolicyChoice{SemVer: &imagev1.SemVerPolicy{Range: ">=1.0.0"}},
		}},
		&imagev1.ImageUpdateAutomation{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns}, Spec: imagev1.ImageUpdateAutomationSpec{
			SourceRef: imagev1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: "repo"},
			Interval:  metav1.Duration{Duration: time.Hour},
			GitSpec: &imagev1.GitSpec{
				Commit: imagev1.CommitSpec{Author: imagev1.CommitUser{Name: "Sluice", Email: "sluice@example.com"}, MessageTemplate: "{{ range .Changed.Changes }}{{ .NewValue }}{{ end }}"},
				Push:   &imagev1.PushSpec{Branch: "main"},
			},
		}},
	)
	op, addr := operator(b, ns)
	hook := receiverURL(b, ns, "registry", addr)
	// The first run finds Git at the chosen tag already.
	waitFor(b, op, "the automation's first run", func() bool {
		a := &imagev1.ImageUpdateAutomation{}
		return cp.Client.Get(b.Context(), client.ObjectKey{Namespace: ns, Name: "app"}, a) == nil && meta.IsStatusConditionTrue(a.Status.Conditions, "Ready")
	})
	var latencies []time.Duration
	minor := 1
	for b.Loop() {
		tag := fmt.Sprintf("1.%d.0", minor)
		minor++
		reg.Push(b, "app", tag)
		began := time.Now()
		resp, err := http.Post(hook, "application/json", bytes.NewReader([]byte(`{}`)))
		if err != nil {
			b.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("the receiver answered %s", resp.Status)
		}
		waitFor(b, op, "the commit of "+tag, func() bool { return strings.Contains(git.Git("log", "--format=%s", "main"), reg.Image("app")+":"+tag) })
		latencies = append(latencies, time.Since(began))
	}
	slices.Sort(latencies)
	b.ReportMetric(latencies[len(latencies)/2].Seconds(), "s-median/tag-to-commit")
	b.ReportMetric(latencies[len(latencies)-1].Seconds(), "s-max/tag-to-commit")
}

// receiverURL waits for the Receiver's webhook path and returns its URL on
// the operator's receiver server.
func receiverURL(b *testing.B, ns, name, addr string) string {
	b.Helper()
	var path string
	err := wait.PollUntilContextTimeout(b.Context(), 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		r := &notificationv1.Receiver{}
		if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, r); err != nil {
			return false, nil //nolint:nilerr // a failed read is tried again at the next tick
		}
		path = r.Status.WebhookPath
		return path != "", nil
	})
	if err != nil {
		b.Fatalf("the Receiver's webhook path: %v", err)
	}
	return "http://" + addr + path
}

// waitFor polls cond every 20 ms, failing if the operator exits.
func waitFor(b *testing.B, op *binary.Operator, what string, cond func() bool) {
	b.Helper()
	err := wait.PollUntilContextTimeout(b.Context(), 20*time.Millisecond, 2*time.Minute, true, func(context.Context) (bool, error) {
		select {
		case <-op.Exited():
			return false, fmt.Errorf("the operator exited: %w\n%s", op.Err(), op.Output)
		default:
		}
		return cond(), nil
	})
	if err != nil {
		b.Fatalf("%s: %v", what, err)
	}
}

// BenchmarkScan50Repositories scans 50 ImageRepositories of 1,000 tags
// each and reports the wall time until all are Ready with every tag, and
// the operator's peak RSS.
func BenchmarkScan50Repositories(b *testing.B) {
	const ns, repos, tags = "image-scale", 50, 1000
	reg := imageregistry.New(b)
	// One image, many tags: the registry stores the blobs once, and a tag
	// is one manifest upload.
	img, err := random.Image(256, 1)
	if err != nil {
		b.Fatal(err)
	}
	for r := range repos {
		for t := range tags {
			ref, err := name.NewTag(fmt.Sprintf("%s/app-%d:1.%d.0", reg.Host, r, t), name.Insecure)
			if err != nil {
				b.Fatal(err)
			}
			if err := remote.Write(ref, img); err != nil {
				b.Fatalf("push %s: %v", ref, err)
			}
		}
	}
	create(b, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	for b.Loop() {
		op, _ := operator(b, ns)
		began := time.Now()
		for r := range repos {
			create(b, &imagev1.ImageRepository{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("app-%d", r), Namespace: ns}, Spec: imagev1.ImageRepositorySpec{
				Image: reg.Image(fmt.Sprintf("app-%d", r)), Interval: metav1.Duration{Duration: time.Hour}, Insecure: true,
			}})
		}
		var scanned int
		waitFor(b, op, "50 repositories scanned", func() bool {
			var list imagev1.ImageRepositoryList
			if err := cp.Client.List(b.Context(), &list, client.InNamespace(ns)); err != nil {
				return false
			}
			scanned = 0
			for _, r := range list.Items {
				if meta.IsStatusConditionTrue(r.Status.Conditions, "Ready") && r.Status.LastScanResult != nil && r.Status.LastScanResult.TagCount == tags {
					scanned++
				}
			}
			return scanned == repos
		})
		wall := time.Since(began)
		rss, err := op.PeakRSS()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(wall.Seconds(), "s/50-repositories")
		b.ReportMetric(float64(rss)/(1<<20), "operator-peak-RSS-MiB")
		b.StopTimer()
		if err := cp.Client.DeleteAllOf(b.Context(), &imagev1.ImageRepository{}, client.InNamespace(ns)); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
