package sharding

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notificationv1 "sluice.dev/sluice/api/notification/v1"
	notificationv1beta3 "sluice.dev/sluice/api/notification/v1beta3"
	sourcev1 "sluice.dev/sluice/api/source/v1"
	syncv1 "sluice.dev/sluice/api/sync/v1"
	syncv2 "sluice.dev/sluice/api/sync/v2"
	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/cli"
	"sluice.dev/sluice/pkg/operator"
	"sluice.dev/sluice/pkg/sharding"
	"sluice.dev/sluice/test/chaos"
	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/gitserver"
	"sluice.dev/sluice/test/helmrepo"
	"sluice.dev/sluice/test/inprocess"
)

const (
	ns      = "shards"
	leaseNS = "sluice-system"
	// orphan is the shard no replica runs.
	orphan = "c"
)

// startReplica runs one operator replica through operator.New, as the
// binary does, with leader election on and the given watch selector,
// until the test ends. A receiver address other than "0" serves the
// Receivers' webhook paths.
func startReplica(t *testing.T, selector, receiver string) {
	t.Helper()
	opts := operator.DefaultOptions()
	opts.WatchLabelSelector = selector
	opts.LeaderElectionNamespace = leaseNS
	opts.LeaseDuration, opts.RenewDeadline, opts.RetryPeriod = 4*time.Second, 3*time.Second, time.Second
	opts.MetricsBindAddress, opts.HealthProbeBindAddress, opts.ReceiverBindAddress = "0", "0", receiver
	opts.GracefulShutdownTimeout = 5 * time.Second
	ctx, cancel := context.WithCancel(context.Background())
	mgr, err := operator.New(ctx, cp.Config, opts, inprocess.ErrorLogger())
	if err != nil {
		cancel()
		t.Fatalf("build the replica for %q: %v", selector, err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("replica for %q: %v", selector, err)
		}
	})
}

// shardLabels labels an object for the shard key; none for "".
func shardLabels(key string) string {
	if key == "" {
		return "{}"
	}
	return fmt.Sprintf("{%s: %s}", sharding.KeyLabel, key)
}

// workload is a Deployment and its blue/green Canary, the Canary in the
// shard key; the Deployment, a child, carries no shard label.
func workload(name, key string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s, namespace: %[2]s}
spec:
  replicas: 1
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s}}
    spec:
      containers: [{name: app, image: "app:1", ports: [{name: http, containerPort: 8080}]}]
---
apiVersion: sluice.dev/v1beta1
kind: Canary
metadata: {name: %[1]s, namespace: %[2]s, labels: %[3]s}
spec:
  provider: kubernetes
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: %[1]s}
  service: {port: 8080}
  analysis: {interval: 10s, iterations: 1, threshold: 1}
---
apiVersion: notification.sluice.dev/v1beta3
kind: Provider
metadata: {name: %[1]s, namespace: %[2]s, labels: %[3]s}
spec: {type: generic, address: "https://hooks.example.com/%[1]s"}
`, name, ns, shardLabels(key))
}

// nameOf is the objects' name in the shard key.
func nameOf(key string) string {
	if key == "" {
		return "main"
	}
	return key
}

func TestShardsReconcileOnlyTheirOwnObjects(t *testing.T) {
	ctx := t.Context()
	for _, o := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: leaseNS}},
	} {
		if err := cp.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	// Shards a and b, and the unsharded replica beside them; shard c has
	// objects but no replica.
	keys := []string{"a", "b", "", orphan}
	git := gitserver.New(t)
	files := map[string]string{}
	for _, key := range keys {
		files[nameOf(key)+"/cm.yaml"] = fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: synced-%s}\ndata: {shard: %q}\n", nameOf(key), key)
	}
	head := git.Commit(files)
	for _, key := range keys {
		name := nameOf(key)
		if err := chaos.Apply(ctx, cp.Client, workload("web-"+name, key)); err != nil {
			t.Fatal(err)
		}
		secret, repo := git.Source(ns, "repo-"+name, time.Hour)
		ks := &syncv1.Kustomization{
			ObjectMeta: metav1.ObjectMeta{Name: "app-" + name, Namespace: ns},
			Spec: syncv1.KustomizationSpec{
				SourceRef: syncv1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: repo.Name},
				Path:      name, Prune: true, TargetNamespace: ns, Interval: metav1.Duration{Duration: time.Hour},
			},
		}
		if key != "" {
			repo.Labels = map[string]string{sharding.KeyLabel: key}
			ks.Labels = map[string]string{sharding.KeyLabel: key}
		} else {
			// A health check may judge an object of another shard, which
			// this replica's cache does not hold.
			ks.Spec.HealthChecks = []syncv1.NamespacedObjectKindReference{{APIVersion: syncv1.GroupVersion.String(), Kind: "Kustomization", Name: "app-a", Namespace: ns}}
			ks.Spec.Timeout = &metav1.Duration{Duration: 2 * time.Minute}
		}
		for _, o := range []client.Object{secret, repo, ks} {
			if err := cp.Client.Create(ctx, o); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A HelmRelease of shard a: the HelmChart it makes must be in shard a
	// too, which loads the chart the HelmRelease reads.
	charts := helmrepo.NewHTTP(t)
	charts.Add(t, helmrepo.NewChart("settings", "1.0.0", map[string]string{"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: released}\ndata: {a: b}\n"}, map[string]any{}))
	inA := map[string]string{sharding.KeyLabel: "a"}
	hr := &syncv2.HelmRelease{
		ObjectMeta: metav1.ObjectMeta{Name: "rel", Namespace: ns, Labels: inA},
		Spec: syncv2.HelmReleaseSpec{
			Interval: metav1.Duration{Duration: time.Hour},
			Chart: &syncv2.HelmChartTemplate{Spec: syncv2.HelmChartTemplateSpec{
				Chart: "settings", SourceRef: syncv2.HelmChartSourceReference{Kind: "HelmRepository", Name: "charts"},
			}},
		},
	}
	helmRepo := &sourcev1.HelmRepository{ObjectMeta: metav1.ObjectMeta{Name: "charts", Namespace: ns, Labels: inA}, Spec: sourcev1.HelmRepositorySpec{URL: charts.URL, Interval: metav1.Duration{Duration: time.Hour}}}
	// A Receiver of the unsharded replica that names the GitRepositories
	// of shard a.
	receiver := &notificationv1.Receiver{
		ObjectMeta: metav1.ObjectMeta{Name: "push", Namespace: ns},
		Spec: notificationv1.ReceiverSpec{
			Type: notificationv1.GenericReceiver, SecretRef: &notificationv1.LocalObjectReference{Name: "receiver-token"},
			Resources: []notificationv1.CrossNamespaceObjectReference{{Kind: "GitRepository", Name: "*", MatchLabels: inA}},
		},
	}
	token := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "receiver-token", Namespace: ns}, StringData: map[string]string{"token": "shards-token"}}
	for _, o := range []client.Object{helmRepo, hr, token, receiver} {
		if err := cp.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}

	shardA, err := sharding.ForKey("a")
	if err != nil {
		t.Fatal(err)
	}
	// --shard-key=a and --watch-label-selector=sharding.sluice.dev/key=b
	// are the same kind of replica.
	hooksB, err := controlplane.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	startReplica(t, shardA.String(), "0")
	startReplica(t, "sharding.sluice.dev/key=b", hooksB)
	startReplica(t, sharding.Unsharded, "0")

	for _, key := range []string{"a", "b", ""} {
		name := nameOf(key)
		// The unsharded replica's Kustomization health-checks app-a, of
		// shard a.
		t.Run("the replica of "+name+" releases its Canary, syncs its Kustomization and writes its Provider's status", func(t *testing.T) {
			waitInitialized(t, "web-"+name)
			controlplane.Eventually(t, 2*time.Minute, "Kustomization app-"+name+" applied", func(ctx context.Context) (bool, string) {
				ks := &syncv1.Kustomization{}
				if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app-" + name}, ks); err != nil {
					return false, err.Error()
				}
				return meta.IsStatusConditionTrue(ks.Status.Conditions, "Ready") && ks.Status.LastAppliedRevision == "main@sha1:"+head && ks.Status.ObservedGeneration == ks.Generation,
					fmt.Sprintf("conditions %+v", ks.Status.Conditions)
			})
			if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "synced-" + name}, &corev1.ConfigMap{}); err != nil {
				t.Fatalf("the ConfigMap of app-%s: %v", name, err)
			}
			controlplane.Eventually(t, time.Minute, "Provider web-"+name+" has a Ready condition", func(ctx context.Context) (bool, string) {
				p := &notificationv1beta3.Provider{}
				if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web-" + name}, p); err != nil {
					return false, err.Error()
				}
				return meta.FindStatusCondition(p.Status.Conditions, "Ready") != nil, fmt.Sprintf("status %+v", p.Status)
			})
		})
	}

	t.Run("a HelmRelease's HelmChart takes the HelmRelease's shard, which releases it", func(t *testing.T) {
		waitHelmRelease(t, "the HelmRelease of shard a released", func(*syncv2.HelmRelease) bool { return true })
		chart := &sourcev1.HelmChart{}
		if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: ns + "-rel"}, chart); err != nil {
			t.Fatal(err)
		}
		if got := chart.Labels[sharding.KeyLabel]; got != "a" {
			t.Fatalf("the HelmChart's %s is %q, want a", sharding.KeyLabel, got)
		}
	})

	t.Run("a replica answers a Receiver of another shard for the objects of a third", func(t *testing.T) {
		var path string
		controlplane.Eventually(t, time.Minute, "the Receiver's path", func(ctx context.Context) (bool, string) {
			if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(receiver), receiver); err != nil {
				return false, err.Error()
			}
			path = receiver.Status.WebhookPath
			return path != "", fmt.Sprintf("status %+v", receiver.Status)
		})
		resp, err := http.Post("http://"+hooksB+path, "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST to shard b's receiver: %d", resp.StatusCode)
		}
		controlplane.Eventually(t, time.Minute, "shard a handles the reconcile request on repo-a", func(ctx context.Context) (bool, string) {
			repo := &sourcev1.GitRepository{}
			if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "repo-a"}, repo); err != nil {
				return false, err.Error()
			}
			requested := repo.Annotations[sourcev1.ReconcileRequestAnnotation]
			return requested != "" && repo.Status.LastHandledReconcileAt == requested,
				fmt.Sprintf("requested %q, handled %q", requested, repo.Status.LastHandledReconcileAt)
		})
	})

	t.Run("each shard holds its own lease at the same time", func(t *testing.T) {
		unsharded, err := sharding.Parse(sharding.Unsharded)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{
			"sluice-leader-election-a":                    "sharding.sluice.dev/key=a",
			"sluice-leader-election-b":                    "sharding.sluice.dev/key=b",
			unsharded.LeaseName("sluice-leader-election"): sharding.Unsharded,
		}
		controlplane.Eventually(t, 30*time.Second, "three leases held", func(ctx context.Context) (bool, string) {
			var leases coordinationv1.LeaseList
			if err := cp.Client.List(ctx, &leases, client.InNamespace(leaseNS)); err != nil {
				return false, err.Error()
			}
			now := time.Now()
			holders := map[string]bool{}
			var got []string
			for i := range leases.Items {
				l := &leases.Items[i]
				r, live, ok, err := sharding.FromLease(l, now)
				if err != nil || !ok || !live || want[l.Name] != r.Selector.String() {
					continue
				}
				holders[r.Holder] = true
				got = append(got, l.Name)
			}
			return len(got) == len(want) && len(holders) == len(want), fmt.Sprintf("live leases with their selector: %v, holders %v", got, holders)
		})
	})

	t.Run("the objects of the shard that does not run stay untouched", func(t *testing.T) {
		name := nameOf(orphan)
		c := &sluicev1beta1.Canary{}
		if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web-" + name}, c); err != nil {
			t.Fatal(err)
		}
		if c.Status.Phase != "" || len(c.Status.Conditions) > 0 {
			t.Errorf("Canary web-%s has a status: %+v", name, c.Status)
		}
		for what, key := range map[client.Object]string{
			&appsv1.Deployment{}: "web-" + name + "-primary",
			&corev1.ConfigMap{}:  "synced-" + name,
		} {
			if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: key}, what); !apierrors.IsNotFound(err) {
				t.Errorf("%T %s: %v, want not found", what, key, err)
			}
		}
		ks := &syncv1.Kustomization{}
		if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app-" + name}, ks); err != nil || len(ks.Status.Conditions) > 0 {
			t.Errorf("Kustomization app-%s: %v, status %+v", name, err, ks.Status)
		}
		repo := &sourcev1.GitRepository{}
		if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "repo-" + name}, repo); err != nil || repo.Status.Artifact != nil {
			t.Errorf("GitRepository repo-%s: %v, artifact %+v", name, err, repo.Status.Artifact)
		}
		p := &notificationv1beta3.Provider{}
		if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web-" + name}, p); err != nil || len(p.Status.Conditions) > 0 {
			t.Errorf("Provider web-%s: %v, status %+v: a replica of another shard wrote it", name, err, p.Status)
		}
	})

	t.Run("sluicectl check names the objects of the shard that does not run", func(t *testing.T) {
		out, err := check(t)
		if cli.ExitCode(err) != cli.ExitFailure {
			t.Errorf("exit code %d (%v), want %d", cli.ExitCode(err), err, cli.ExitFailure)
		}
		for _, line := range []string{
			"owns shard a (sharding.sluice.dev/key=a) (Lease sluice-system/sluice-leader-election-a)\n",
			"owns shard b (sharding.sluice.dev/key=b) (Lease sluice-system/sluice-leader-election-b)\n",
			"owns the objects matching !sharding.sluice.dev/key (Lease sluice-system/sluice-leader-election-",
			"✗ 4 objects labelled sharding.sluice.dev/key=c are owned by no running replica: Canary shards/web-c, GitRepository shards/repo-c, Kustomization shards/app-c, Provider shards/web-c\n",
		} {
			if !strings.Contains(out, line) {
				t.Errorf("the output lacks %q:\n%s", line, out)
			}
		}
		for _, other := range []string{"web-a", "web-b", "web-main", "app-a", "shards/rel", "with no sharding.sluice.dev/key label", "running replicas"} {
			if strings.Contains(out, other) {
				t.Errorf("the output names %s, which one replica owns:\n%s", other, out)
			}
		}
	})

	t.Run("a Canary labelled for a running shard is taken over by it", func(t *testing.T) {
		name := nameOf(orphan)
		relabel(t, &sluicev1beta1.Canary{}, "web-"+name, "a")
		waitInitialized(t, "web-"+name)
		out, _ := check(t)
		if want := "✗ 3 objects labelled sharding.sluice.dev/key=c are owned by no running replica: GitRepository shards/repo-c, Kustomization shards/app-c, Provider shards/web-c\n"; !strings.Contains(out, want) {
			t.Errorf("the output lacks %q:\n%s", want, out)
		}
	})

	t.Run("a HelmRelease moved to another shard with its repository takes its HelmChart along", func(t *testing.T) {
		relabel(t, &sourcev1.HelmRepository{}, "charts", "b")
		relabel(t, &syncv2.HelmRelease{}, "rel", "b")
		controlplane.Eventually(t, time.Minute, "the HelmChart in shard b", func(ctx context.Context) (bool, string) {
			chart := &sourcev1.HelmChart{}
			if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: ns + "-rel"}, chart); err != nil {
				return false, err.Error()
			}
			return chart.Labels[sharding.KeyLabel] == "b", fmt.Sprintf("labels %v", chart.Labels)
		})
		// Shard b releases it: a new value is installed.
		if err := cp.Client.Patch(ctx, &syncv2.HelmRelease{ObjectMeta: metav1.ObjectMeta{Name: "rel", Namespace: ns}},
			client.RawPatch("application/merge-patch+json", []byte(`{"spec":{"values":{"moved":true}}}`))); err != nil {
			t.Fatal(err)
		}
		waitHelmRelease(t, "the HelmRelease upgraded by shard b", func(hr *syncv2.HelmRelease) bool {
			return len(hr.Status.History) > 0 && hr.Status.History[0].Version == 2
		})
	})

	t.Run("a stop of the line holds the Canaries of every shard, and only the replica of the policy's shard writes its status", func(t *testing.T) {
		stop := &sluicev1beta1.ReleasePolicy{
			// In shard c, which no replica runs: every replica reads it,
			// none writes its status.
			ObjectMeta: metav1.ObjectMeta{Name: "shards-stop", Labels: map[string]string{sharding.KeyLabel: orphan}},
			Spec:       sluicev1beta1.ReleasePolicySpec{Stop: &sluicev1beta1.StopTheLine{Reason: "incident 9", SetBy: "oncall"}},
		}
		if err := cp.Client.Create(ctx, stop); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cp.Client.Delete(context.Background(), stop) })
		for _, name := range []string{"web-a", "web-b", "web-main"} {
			controlplane.Eventually(t, 30*time.Second, "Canary "+name+" frozen", func(ctx context.Context) (bool, string) {
				c := &sluicev1beta1.Canary{}
				if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, c); err != nil {
					return false, err.Error()
				}
				f := meta.FindStatusCondition(c.Status.Conditions, sluicev1beta1.FrozenCondition)
				return f != nil && f.Reason == sluicev1beta1.ReasonStopTheLine && strings.Contains(f.Message, "incident 9"), fmt.Sprintf("conditions %+v", c.Status.Conditions)
			})
		}
		rp := &sluicev1beta1.ReleasePolicy{}
		if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(stop), rp); err != nil {
			t.Fatal(err)
		}
		if rp.Status.ObservedGeneration != 0 || len(rp.Status.Conditions) > 0 {
			t.Fatalf("a replica of another shard wrote the status of a policy of shard %s: %+v", orphan, rp.Status)
		}
		// Unlabelled, it is the unsharded replica's.
		if err := cp.Client.Patch(ctx, stop, client.RawPatch("application/merge-patch+json", fmt.Appendf(nil, `{"metadata":{"labels":{%q:null}}}`, sharding.KeyLabel))); err != nil {
			t.Fatal(err)
		}
		controlplane.Eventually(t, 30*time.Second, "the policy's status", func(ctx context.Context) (bool, string) {
			rp := &sluicev1beta1.ReleasePolicy{}
			if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(stop), rp); err != nil {
				return false, err.Error()
			}
			return rp.Status.ObservedGeneration == rp.Generation && rp.Status.ActiveFreeze != nil && rp.Status.ActiveFreeze.Field == "spec.stop", fmt.Sprintf("status %+v", rp.Status)
		})
	})

	t.Run("a limit counts the Canaries of each shard apart: one of shard a and one of shard b release at once under a limit of 1", func(t *testing.T) {
		limit := int32(1)
		one := &sluicev1beta1.ReleasePolicy{
			ObjectMeta: metav1.ObjectMeta{Name: "shards-one-at-a-time"},
			Spec: sluicev1beta1.ReleasePolicySpec{
				NamespaceSelector:     &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: ns}},
				MaxConcurrentCanaries: &limit,
			},
		}
		if err := cp.Client.Create(ctx, one); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cp.Client.Delete(context.Background(), one) })
		for _, name := range []string{"web-a", "web-b"} {
			patch := []byte(`{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"app:2"}]}}}}`)
			if err := cp.Client.Patch(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}, client.RawPatch("application/strategic-merge-patch+json", patch)); err != nil {
				t.Fatal(err)
			}
		}
		for _, name := range []string{"web-a", "web-b"} {
			controlplane.Eventually(t, time.Minute, "Canary "+name+" admitted", func(ctx context.Context) (bool, string) {
				c := &sluicev1beta1.Canary{}
				if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, c); err != nil {
					return false, err.Error()
				}
				a := c.Status.Admission
				return a != nil && a.AdmittedAt != nil, fmt.Sprintf("phase %q admission %+v conditions %+v", c.Status.Phase, a, c.Status.Conditions)
			})
			c := &sluicev1beta1.Canary{}
			if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, c); err != nil {
				t.Fatal(err)
			}
			// Under one limit across shards, the second would wait for the
			// first to finish, 10 s or more.
			if a := c.Status.Admission; a.AdmittedAt.Sub(a.ArrivedAt.Time) > 5*time.Second {
				t.Errorf("Canary %s waited from %s to %s for a slot", name, a.ArrivedAt, a.AdmittedAt)
			}
		}
	})
}

// waitInitialized waits for the Canary's primary to take all traffic.
func waitInitialized(t *testing.T, name string) {
	t.Helper()
	controlplane.Eventually(t, 2*time.Minute, "Canary "+name+" initialized", func(ctx context.Context) (bool, string) {
		c := &sluicev1beta1.Canary{}
		if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, c); err != nil {
			return false, err.Error()
		}
		return c.Status.Phase == sluicev1beta1.CanaryPhaseInitialized && c.Status.ObservedGeneration == c.Generation,
			fmt.Sprintf("phase %q conditions %+v", c.Status.Phase, c.Status.Conditions)
	})
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name + "-primary"}, &appsv1.Deployment{}); err != nil {
		t.Fatalf("the primary of Canary %s: %v", name, err)
	}
}

// waitHelmRelease waits until the HelmRelease rel is Ready at its
// generation and cond holds.
func waitHelmRelease(t *testing.T, what string, cond func(*syncv2.HelmRelease) bool) {
	t.Helper()
	controlplane.Eventually(t, 2*time.Minute, what, func(ctx context.Context) (bool, string) {
		hr := &syncv2.HelmRelease{}
		if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "rel"}, hr); err != nil {
			return false, err.Error()
		}
		return meta.IsStatusConditionTrue(hr.Status.Conditions, "Ready") && hr.Status.ObservedGeneration == hr.Generation && cond(hr),
			fmt.Sprintf("conditions %+v", hr.Status.Conditions)
	})
}

// relabel moves the object named name to the shard key.
func relabel(t *testing.T, obj client.Object, name, key string) {
	t.Helper()
	obj.SetName(name)
	obj.SetNamespace(ns)
	patch := fmt.Appendf(nil, `{"metadata":{"labels":{%q:%q}}}`, sharding.KeyLabel, key)
	if err := cp.Client.Patch(t.Context(), obj, client.RawPatch("application/merge-patch+json", patch)); err != nil {
		t.Fatal(err)
	}
}

// check runs sluicectl check against the leases of leaseNS.
func check(t *testing.T) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := cli.NewRoot(cli.Streams{Out: &out, Err: &errOut})
	root.SetArgs([]string{"--kubeconfig", cp.Kubeconfig, "check", "-n", leaseNS})
	err := root.ExecuteContext(t.Context())
	return out.String(), err
}
