package cli_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	syncv1 "sluice.dev/sluice/api/sync/v1"
	syncv2 "sluice.dev/sluice/api/sync/v2"
	"sluice.dev/sluice/pkg/cli"
)

func gitRepository(t *testing.T, ns, name string) *sourcev1.GitRepository {
	t.Helper()
	r := &sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       sourcev1.GitRepositorySpec{URL: "https://git.example.com/app.git", Interval: metav1.Duration{Duration: time.Minute}},
	}
	create(t, r)
	return r
}

func helmRepository(t *testing.T, ns, name string) *sourcev1.HelmRepository {
	t.Helper()
	r := &sourcev1.HelmRepository{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       sourcev1.HelmRepositorySpec{URL: "https://charts.example.com", Interval: metav1.Duration{Duration: time.Minute}},
	}
	create(t, r)
	return r
}

func helmChart(t *testing.T, ns, name string) *sourcev1.HelmChart {
	t.Helper()
	c := &sourcev1.HelmChart{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: sourcev1.HelmChartSpec{
			Chart:     "podinfo",
			SourceRef: sourcev1.LocalHelmChartSourceReference{Kind: "HelmRepository", Name: "charts"},
			Interval:  metav1.Duration{Duration: time.Minute},
		},
	}
	create(t, c)
	return c
}

func kustomization(t *testing.T, ns, name string, suspend bool) *syncv1.Kustomization {
	t.Helper()
	k := &syncv1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: syncv1.KustomizationSpec{
			SourceRef: syncv1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: "app"},
			Interval:  metav1.Duration{Duration: time.Minute},
			Prune:     true,
			Suspend:   suspend,
		},
	}
	create(t, k)
	return k
}

func helmRelease(t *testing.T, ns, name string) *syncv2.HelmRelease {
	t.Helper()
	r := &syncv2.HelmRelease{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: syncv2.HelmReleaseSpec{
			Chart: &syncv2.HelmChartTemplate{Spec: syncv2.HelmChartTemplateSpec{
				Chart:     "podinfo",
				SourceRef: syncv2.HelmChartSourceReference{Kind: "HelmRepository", Name: "charts"},
			}},
			Interval: metav1.Duration{Duration: time.Minute},
		},
	}
	create(t, r)
	return r
}

func artifact(revision string) *sourcev1.Artifact {
	return &sourcev1.Artifact{Revision: revision, Digest: "sha256:" + strings.Repeat("0", 64), LastUpdateTime: metav1.Now()}
}

// ready returns a status change that sets the Ready condition.
func ready[T client.Object](status metav1.ConditionStatus, reason, message string) func(T) {
	return func(obj T) {
		setCondition(conditionsOf(obj), "Ready", status, reason, message)
	}
}

// conditionsOf points at the conditions of a sync-core object.
func conditionsOf(obj client.Object) *[]metav1.Condition {
	switch o := obj.(type) {
	case *sourcev1.GitRepository:
		return &o.Status.Conditions
	case *sourcev1.HelmRepository:
		return &o.Status.Conditions
	case *sourcev1.HelmChart:
		return &o.Status.Conditions
	case *syncv1.Kustomization:
		return &o.Status.Conditions
	case *syncv2.HelmRelease:
		return &o.Status.Conditions
	}
	panic("no conditions on " + obj.GetName())
}

// setLastHandled echoes a reconcile request in the object's status.
func setLastHandled(obj client.Object, requested string) {
	switch o := obj.(type) {
	case *sourcev1.GitRepository:
		o.Status.LastHandledReconcileAt = requested
	case *sourcev1.HelmRepository:
		o.Status.LastHandledReconcileAt = requested
	case *sourcev1.HelmChart:
		o.Status.LastHandledReconcileAt = requested
	case *syncv1.Kustomization:
		o.Status.LastHandledReconcileAt = requested
	case *syncv2.HelmRelease:
		o.Status.LastHandledReconcileAt = requested
	}
}

// answerReconciles plays the operator for obj until the test ends: it
// answers each new reconcile request by echoing it in
// lastHandledReconcileAt, with the Ready condition given.
func answerReconciles(t *testing.T, obj client.Object, status metav1.ConditionStatus, reason, message string) {
	ctx := t.Context()
	done := make(chan struct{})
	// t.Context is cancelled before the cleanups run, which stops the
	// loop; waiting for it keeps it from outliving the test.
	t.Cleanup(func() { <-done })
	go func() {
		defer close(done)
		var answered string
		for ctx.Err() == nil {
			time.Sleep(20 * time.Millisecond)
			current, ok := obj.DeepCopyObject().(client.Object)
			if !ok || cp.Client.Get(ctx, client.ObjectKeyFromObject(obj), current) != nil {
				continue
			}
			requested := current.GetAnnotations()[sourcev1.ReconcileRequestAnnotation]
			if requested == "" || requested == answered {
				continue
			}
			setLastHandled(current, requested)
			setCondition(conditionsOf(current), "Ready", status, reason, message)
			// A conflict is retried at the next round.
			if cp.Client.Status().Update(ctx, current) == nil {
				answered = requested
			}
		}
	}()
}

// field reads obj again and returns the field at path, as a string.
func field(t *testing.T, obj client.Object, path ...string) string {
	t.Helper()
	if err := cp.Client.Get(t.Context(), client.ObjectKeyFromObject(obj), obj); err != nil {
		t.Fatal(err)
	}
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	v, _, err := unstructured.NestedFieldNoCopy(u, path...)
	if err != nil {
		t.Fatalf("read %v of %s: %v", path, obj.GetName(), err)
	}
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

func TestGetSyncObjects(t *testing.T) {
	ns := newNamespace(t)
	updateStatus(t, gitRepository(t, ns, "app"), func(r *sourcev1.GitRepository) {
		r.Status.Artifact = artifact("main@sha1:1111")
		ready[*sourcev1.GitRepository](metav1.ConditionTrue, "Succeeded", "stored artifact for revision 'main@sha1:1111'")(r)
	})
	updateStatus(t, helmRepository(t, ns, "charts"), ready[*sourcev1.HelmRepository](metav1.ConditionFalse, "IndexationFailed", "failed to fetch index: 404 Not Found"))
	updateStatus(t, helmChart(t, ns, ns+"-podinfo"), func(c *sourcev1.HelmChart) {
		c.Status.Artifact = artifact("6.5.0")
		ready[*sourcev1.HelmChart](metav1.ConditionTrue, "ChartPullSucceeded", "pulled 'podinfo' chart with version '6.5.0'")(c)
	})
	updateStatus(t, kustomization(t, ns, "apps", false), func(k *syncv1.Kustomization) {
		k.Status.LastAppliedRevision = "main@sha1:1111"
		ready[*syncv1.Kustomization](metav1.ConditionTrue, "ReconciliationSucceeded", "Applied revision: main@sha1:1111")(k)
	})
	kustomization(t, ns, "infra", true)
	hr := helmRelease(t, ns, "podinfo")
	updateStatus(t, hr, func(r *syncv2.HelmRelease) {
		r.Status.History = []syncv2.Snapshot{
			{Name: "podinfo", Namespace: ns, Version: 2, Status: "deployed", ChartName: "podinfo", ChartVersion: "6.5.1"},
			{Name: "podinfo", Namespace: ns, Version: 1, Status: "superseded", ChartName: "podinfo", ChartVersion: "6.5.0"},
		}
		ready[*syncv2.HelmRelease](metav1.ConditionTrue, "UpgradeSucceeded", "Helm upgrade succeeded for release podinfo.v2")(r)
	})

	header := []string{"NAME", "READY", "SUSPENDED", "REVISION", "MESSAGE"}
	tables := []struct {
		name string
		args []string
		want [][]string
	}{
		{
			name: "sources lists every kind of source with its artifact revision",
			args: []string{"get", "sources"},
			want: [][]string{
				header,
				{"GitRepository/app", "True", "false", "main@sha1:1111", "stored artifact for revision 'main@sha1:1111'"},
				{"HelmRepository/charts", "False", "false", "-", "failed to fetch index: 404 Not Found"},
				{"HelmChart/" + ns + "-podinfo", "True", "false", "6.5.0", "pulled 'podinfo' chart with version '6.5.0'"},
			},
		},
		{
			name: "kustomizations shows the last applied revision",
			args: []string{"get", "kustomizations"},
			want: [][]string{
				header,
				{"apps", "True", "false", "main@sha1:1111", "Applied revision: main@sha1:1111"},
				{"infra", "Unknown", "true", "-", "-"},
			},
		},
		{
			name: "ks is short for kustomizations",
			args: []string{"get", "ks", "infra"},
			want: [][]string{header, {"infra", "Unknown", "true", "-", "-"}},
		},
		{
			name: "helmreleases shows the chart version of the latest release",
			args: []string{"get", "hr"},
			want: [][]string{header, {"podinfo", "True", "false", "6.5.1", "Helm upgrade succeeded for release podinfo.v2"}},
		},
	}
	for _, tt := range tables {
		t.Run(tt.name, func(t *testing.T) {
			got := rows(run(t, append(tt.args, "-n", ns)...).mustSucceed(t).out)
			if !slices.EqualFunc(got, tt.want, slices.Equal) {
				t.Errorf("got rows %q, want %q", got, tt.want)
			}
		})
	}

	t.Run("sources in json is a List of the three kinds", func(t *testing.T) {
		r := run(t, "get", "sources", "-n", ns, "-o", "json").mustSucceed(t)
		var list struct {
			Kind  string `json:"kind"`
			Items []metav1.TypeMeta
		}
		if err := json.Unmarshal([]byte(r.out), &list); err != nil {
			t.Fatalf("parse %s: %v", r.out, err)
		}
		var kinds []string
		for _, item := range list.Items {
			kinds = append(kinds, item.APIVersion+" "+item.Kind)
		}
		want := []string{"source.sluice.dev/v1 GitRepository", "source.sluice.dev/v1 HelmRepository", "source.sluice.dev/v1 HelmChart"}
		if list.Kind != "List" || !slices.Equal(kinds, want) {
			t.Errorf("got a %s of %q, want a List of %q", list.Kind, kinds, want)
		}
	})
	t.Run("a HelmRelease in yaml parses", func(t *testing.T) {
		r := run(t, "get", "helmrelease", "podinfo", "-n", ns, "-o", "yaml").mustSucceed(t)
		var got syncv2.HelmRelease
		if err := yaml.UnmarshalStrict([]byte(r.out), &got); err != nil {
			t.Fatalf("parse %s: %v", r.out, err)
		}
		if got.Kind != "HelmRelease" || got.Name != "podinfo" || len(got.Status.History) != 2 {
			t.Errorf("got %s %s with %d releases, want HelmRelease podinfo with 2", got.Kind, got.Name, len(got.Status.History))
		}
	})
}

func TestReconcileWaitsForTheOperator(t *testing.T) {
	tests := []struct {
		name string
		// setup creates the object and, unless the case is about its
		// absence, an operator that answers.
		setup func(t *testing.T, ns string) client.Object
		args  []string
		code  int
		out   string
		err   string
	}{
		{
			name: "a Kustomization that turns Ready prints its message",
			setup: func(t *testing.T, ns string) client.Object {
				k := kustomization(t, ns, "apps", false)
				answerReconciles(t, k, metav1.ConditionTrue, "ReconciliationSucceeded", "Applied revision: main@sha1:2222")
				return k
			},
			args: []string{"reconcile", "kustomization", "apps"},
			out:  "reconciled: Ready=True: Applied revision: main@sha1:2222",
		},
		{
			name: "a Kustomization that is not Ready after its reconcile exits 1",
			setup: func(t *testing.T, ns string) client.Object {
				k := kustomization(t, ns, "apps", false)
				answerReconciles(t, k, metav1.ConditionFalse, "BuildFailed", "kustomization path not found: ./deploy")
				return k
			},
			args: []string{"reconcile", "ks", "apps"},
			code: cli.ExitFailure,
			out:  "reconciled: Ready=False: kustomization path not found: ./deploy",
			err:  "is not ready (BuildFailed): kustomization path not found",
		},
		{
			name: "a GitRepository is reconciled as a source",
			setup: func(t *testing.T, ns string) client.Object {
				r := gitRepository(t, ns, "app")
				answerReconciles(t, r, metav1.ConditionTrue, "Succeeded", "stored artifact for revision 'main@sha1:3333'")
				return r
			},
			args: []string{"reconcile", "source", "git", "app"},
			out:  "GitRepository",
		},
		{
			name: "a HelmRelease is reconciled by its short name",
			setup: func(t *testing.T, ns string) client.Object {
				r := helmRelease(t, ns, "podinfo")
				answerReconciles(t, r, metav1.ConditionTrue, "UpgradeSucceeded", "Helm upgrade succeeded")
				return r
			},
			args: []string{"reconcile", "hr", "podinfo"},
			out:  "Helm upgrade succeeded",
		},
		{
			name: "a suspended Kustomization is refused",
			setup: func(t *testing.T, ns string) client.Object {
				return kustomization(t, ns, "apps", true)
			},
			args: []string{"reconcile", "kustomization", "apps"},
			code: cli.ExitFailure,
			err:  "is suspended; resume it",
		},
		{
			name: "without an operator the wait times out with exit code 2",
			setup: func(t *testing.T, ns string) client.Object {
				return kustomization(t, ns, "apps", false)
			},
			args: []string{"reconcile", "kustomization", "apps", "--timeout", "1s"},
			code: cli.ExitTimeout,
			err:  "timed out after 1s waiting for the operator to reconcile Kustomization",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ns := newNamespace(t)
			obj := tt.setup(t, ns)
			r := run(t, append(tt.args, "-n", ns)...)
			if r.code != tt.code {
				t.Errorf("exit code %d (%v), want %d", r.code, r.error, tt.code)
			}
			if !strings.Contains(r.out, tt.out) {
				t.Errorf("got output %q, want it to have %q", r.out, tt.out)
			}
			if tt.err != "" && (r.error == nil || !strings.Contains(r.error.Error(), tt.err)) {
				t.Errorf("got error %v, want one with %q", r.error, tt.err)
			}
			if tt.out != "" {
				// The request the command waited for is the one it made.
				requested := field(t, obj, "metadata", "annotations", sourcev1.ReconcileRequestAnnotation)
				if _, err := time.Parse(time.RFC3339Nano, requested); err != nil {
					t.Errorf("the request %q is not an RFC 3339 time: %v", requested, err)
				}
				if handled := field(t, obj, "status", "lastHandledReconcileAt"); handled != requested {
					t.Errorf("the operator handled %q, the request is %q", handled, requested)
				}
			}
		})
	}
}

func TestSuspendAndResumeFlipSpecSuspend(t *testing.T) {
	tests := []struct {
		name   string
		create func(t *testing.T, ns string) client.Object
		args   []string
	}{
		{"a GitRepository", func(t *testing.T, ns string) client.Object { return gitRepository(t, ns, "app") }, []string{"source", "git", "app"}},
		{"a HelmRepository", func(t *testing.T, ns string) client.Object { return helmRepository(t, ns, "charts") }, []string{"source", "helm", "charts"}},
		{"a HelmChart", func(t *testing.T, ns string) client.Object { return helmChart(t, ns, "podinfo") }, []string{"source", "chart", "podinfo"}},
		{"a Kustomization", func(t *testing.T, ns string) client.Object { return kustomization(t, ns, "apps", false) }, []string{"kustomization", "apps"}},
		{"a HelmRelease", func(t *testing.T, ns string) client.Object { return helmRelease(t, ns, "podinfo") }, []string{"hr", "podinfo"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ns := newNamespace(t)
			obj := tt.create(t, ns)
			suspended := func() bool {
				t.Helper()
				return field(t, obj, "spec", "suspend") == "true"
			}

			r := run(t, append(append([]string{"suspend"}, tt.args...), "-n", ns)...).mustSucceed(t)
			if !strings.HasSuffix(r.out, "/"+obj.GetName()+" suspended\n") || !suspended() {
				t.Fatalf("after suspend: output %q, spec.suspend %t; want it suspended", r.out, suspended())
			}

			answerReconciles(t, obj, metav1.ConditionTrue, "Succeeded", "resumed and reconciled")
			r = run(t, append(append([]string{"resume"}, tt.args...), "-n", ns)...).mustSucceed(t)
			if !strings.Contains(r.out, "/"+obj.GetName()+" resumed\n") || !strings.Contains(r.out, "resumed and reconciled") || suspended() {
				t.Errorf("after resume: output %q, spec.suspend %t; want it resumed and reconciled", r.out, suspended())
			}
		})
	}
}
