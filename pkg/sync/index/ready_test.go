package index

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	syncv1 "sluice.dev/sluice/api/sync/v1"
	"sluice.dev/sluice/pkg/sync/celexpr"
)

// dependency is the Kustomization backend of ns at a version, Ready or
// not.
func dependency(version string, ready bool) func(ns string) *syncv1.Kustomization {
	return func(ns string) *syncv1.Kustomization {
		status := metav1.ConditionFalse
		if ready {
			status = metav1.ConditionTrue
		}
		return &syncv1.Kustomization{
			ObjectMeta: metav1.ObjectMeta{Name: "backend", Namespace: ns, Labels: map[string]string{"app/version": version}},
			Spec: syncv1.KustomizationSpec{
				Interval:  metav1.Duration{Duration: time.Hour},
				SourceRef: syncv1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: "repo"},
			},
			Status: syncv1.KustomizationStatus{Conditions: []metav1.Condition{{Type: "Ready", Status: status, ObservedGeneration: 1, Reason: "R", LastTransitionTime: metav1.Now()}}},
		}
	}
}

// create makes the dependency on the API server, with its status.
func create(t *testing.T, ns string, dep *syncv1.Kustomization) {
	t.Helper()
	if err := cp.Client.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	if dep == nil {
		return
	}
	status := dep.Status
	if err := cp.Client.Create(t.Context(), dep); err != nil {
		t.Fatal(err)
	}
	dep.Status = status
	if err := cp.Client.Status().Update(t.Context(), dep); err != nil {
		t.Fatal(err)
	}
}

func TestADependencyIsReadyByItsConditionOrByItsReadyExpr(t *testing.T) {
	const matching = "dep.metadata.labels['app/version'] == self.metadata.labels['app/version'] && dep.kind == 'Kustomization'"
	tests := []struct {
		name      string
		dep       func(ns string) *syncv1.Kustomization
		readyExpr string
		additive  bool
		want      string // a substring of why it is not ready; "" for ready
	}{
		{name: "a Ready dependency without an expression is ready", dep: dependency("v1", true)},
		{name: "a dependency not Ready without an expression is not", dep: dependency("v2", false), want: "apps/backend is not ready"},
		{name: "a missing dependency is not ready", want: "apps/backend: "},
		{name: "a true readyExpr replaces the Ready check", dep: dependency("v2", false), readyExpr: matching},
		{name: "a false readyExpr holds the dependent", dep: dependency("v1", true), readyExpr: matching, want: "spec.dependsOn[0].readyExpr is false"},
		{name: "an expression that cannot be evaluated holds it with its error", dep: dependency("v2", true), readyExpr: "dep.status.missing == 'x'", want: "spec.dependsOn[0].readyExpr: no such key: missing"},
		{name: "with the additive check a true readyExpr needs Ready too", dep: dependency("v2", false), readyExpr: matching, additive: true, want: "apps/backend is not ready"},
		{name: "with the additive check both passing is ready", dep: dependency("v2", true), readyExpr: matching, additive: true},
	}
	var cache celexpr.Cache
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := fmt.Sprintf("ready-%d", i)
			var dep *syncv1.Kustomization
			if tt.dep != nil {
				dep = tt.dep(ns)
			}
			create(t, ns, dep)
			self := &syncv1.Kustomization{ObjectMeta: metav1.ObjectMeta{Name: "frontend", Namespace: ns, Labels: map[string]string{"app/version": "v2"}}}
			self.Spec.DependsOn = []syncv1.DependencyReference{{Name: "backend", ReadyExpr: tt.readyExpr}}
			exprs, err := ReadyExprs(&cache, self.Spec.DependsOn)
			if err != nil {
				t.Fatal(err)
			}
			r := Readiness[*syncv1.Kustomization]{Client: cp.Client, New: func() *syncv1.Kustomization { return &syncv1.Kustomization{} }, Additive: tt.additive}
			got := r.NotReady(t.Context(), self, self.Spec.DependsOn, exprs)
			want := strings.ReplaceAll(tt.want, "apps/", ns+"/")
			if (want == "") != (got == "") || !strings.Contains(got, want) {
				t.Fatalf("not ready %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAReadyExprThatDoesNotCompileIsNamed(t *testing.T) {
	var cache celexpr.Cache
	_, err := ReadyExprs(&cache, []syncv1.DependencyReference{{Name: "a"}, {Name: "b", ReadyExpr: "self.metadata.name +"}})
	if err == nil || !strings.HasPrefix(err.Error(), "spec.dependsOn[1].readyExpr: invalid CEL expression") {
		t.Fatalf("error %v, want the readyExpr named", err)
	}
}

func TestOnlyAChangeADependentMayReadWakesIt(t *testing.T) {
	base := func() *syncv1.Kustomization {
		ks := dependency("v1", true)("apps")
		ks.ResourceVersion = "1"
		ks.Status.LastAppliedRevision = "main@sha1:a"
		return ks
	}
	tests := []struct {
		name   string
		change func(*syncv1.Kustomization)
		wakes  bool
	}{
		{"a reconcile that only counts itself in the history wakes nothing", func(ks *syncv1.Kustomization) {
			ks.ResourceVersion = "2"
			ks.Status.History.Upsert("sha256:x", time.Now(), time.Second, "ReconciliationSucceeded", nil)
			ks.Status.LastHandledReconcileAt = "now"
		}, false},
		{"a new revision applied wakes the dependents", func(ks *syncv1.Kustomization) { ks.Status.LastAppliedRevision = "main@sha1:b" }, true},
		{"a Ready that turns False wakes them", func(ks *syncv1.Kustomization) { ks.Status.Conditions[0].Status = metav1.ConditionFalse }, true},
		{"a label a readyExpr may read wakes them", func(ks *syncv1.Kustomization) { ks.Labels["app/version"] = "v2" }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old, updated := base(), base()
			tt.change(updated)
			if got := DependencyChanged().Update(event.UpdateEvent{ObjectOld: old, ObjectNew: updated}); got != tt.wakes {
				t.Fatalf("wakes %v, want %v", got, tt.wakes)
			}
		})
	}
}

func TestOnlyANewArtifactOrAReadyChangeOfASourceWakesWhatIsBuiltFromIt(t *testing.T) {
	base := func() *sourcev1.HelmChart {
		return &sourcev1.HelmChart{
			ObjectMeta: metav1.ObjectMeta{Name: "chart", Namespace: "apps", ResourceVersion: "1"},
			Status: sourcev1.HelmChartStatus{
				Artifact:   &sourcev1.Artifact{Revision: "1.0.0", Digest: "sha256:a"},
				Conditions: []metav1.Condition{{Type: "Ready", Status: metav1.ConditionTrue, Reason: "Succeeded", Message: "pulled 1.0.0"}},
			},
		}
	}
	tests := []struct {
		name   string
		change func(*sourcev1.HelmChart)
		wakes  bool
	}{
		{"a reconcile request handled wakes nothing", func(c *sourcev1.HelmChart) {
			c.ResourceVersion = "2"
			c.Status.LastHandledReconcileAt = "now"
		}, false},
		{"a new message on the same Ready wakes nothing", func(c *sourcev1.HelmChart) { c.Status.Conditions[0].Message = "checked 1.0.0" }, false},
		{"a new revision wakes", func(c *sourcev1.HelmChart) { c.Status.Artifact.Revision = "1.0.1" }, true},
		{"a new digest of the same revision wakes", func(c *sourcev1.HelmChart) { c.Status.Artifact.Digest = "sha256:b" }, true},
		{"the first artifact wakes", func(c *sourcev1.HelmChart) { c.Status.Artifact = nil }, true},
		{"a Ready that turns False wakes", func(c *sourcev1.HelmChart) { c.Status.Conditions[0].Status = metav1.ConditionFalse }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old, updated := base(), base()
			tt.change(updated)
			// The first artifact is a change from none.
			if updated.Status.Artifact == nil {
				old, updated = updated, base()
			}
			if got := SourceChanged().Update(event.UpdateEvent{ObjectOld: old, ObjectNew: updated}); got != tt.wakes {
				t.Fatalf("wakes %v, want %v", got, tt.wakes)
			}
		})
	}
}
