// Package appmeshlegacy tests provider appmesh, which writes the legacy
// App Mesh controller's v1beta1 kinds. Their CRDs have the names of the
// v1beta2 ones the other router tests install, so this package runs its
// own control plane.
package appmeshlegacy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/traffic"
	"sluice.dev/sluice/router"
	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/e2e/fixture"
	"sluice.dev/sluice/test/inprocess"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	crds := []string{controlplane.SluiceCRDs(), filepath.Join(controlplane.RepoRoot(), "test", "fixtures", "crds", "appmesh", "v1beta1", "appmesh.k8s.aws_v1beta1.yaml")}
	os.Exit(controlplane.RunTests(m, controlplane.Options{CRDDirectoryPaths: crds}, &cp))
}

func get(t *testing.T, kind, ns, name string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("appmesh.k8s.aws/v1beta1")
	u.SetKind(kind)
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
		t.Fatal(err)
	}
	return u
}

// targets lists a VirtualService's weighted targets.
func targets(u *unstructured.Unstructured) string {
	routes, _, _ := unstructured.NestedSlice(u.Object, "spec", "routes")
	var out string
	for _, r := range routes {
		ts, _, _ := unstructured.NestedSlice(r.(map[string]any), "http", "action", "weightedTargets")
		for _, tt := range ts {
			out += fmt.Sprintf("%v:%v ", tt.(map[string]any)["virtualNodeName"], tt.(map[string]any)["weight"])
		}
	}
	return out
}

func canary(ns string) *sluicev1beta1.Canary {
	return &sluicev1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: ns},
		Spec: sluicev1beta1.CanarySpec{
			Provider:  "appmesh",
			TargetRef: sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"},
			Service:   sluicev1beta1.CanaryService{Port: 9898, TargetPort: intstr.FromString("http"), MeshName: "global", Backends: []string{"backend.test"}},
		},
	}
}

func TestTheLegacyRouterWritesV1beta1NodesAndServices(t *testing.T) {
	ctx := t.Context()
	f := fixture.New(t, cp.Client, "legacy-objects")
	c := canary(f.Name)
	c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{StepWeight: 10}
	f.Create(c)
	r, err := router.New("appmesh", router.Deps{Client: cp.Client, Scheme: cp.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Initialize(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := r.Reconcile(ctx, c); err != nil {
		t.Fatal(err)
	}
	for node, host := range map[string]string{"podinfo": "podinfo-primary.legacy-objects", "podinfo-primary": "podinfo-primary.legacy-objects", "podinfo-canary": "podinfo-canary.legacy-objects"} {
		u := get(t, "VirtualNode", f.Name, node)
		got, _, _ := unstructured.NestedString(u.Object, "spec", "serviceDiscovery", "dns", "hostName")
		mesh, _, _ := unstructured.NestedString(u.Object, "spec", "meshName")
		backends, _, _ := unstructured.NestedSlice(u.Object, "spec", "backends")
		if got != host || mesh != "global" || fmt.Sprint(backends) != "[map[virtualService:map[virtualServiceName:backend.test]]]" {
			t.Fatalf("VirtualNode %s: host %s, mesh %s, backends %v", node, got, mesh, backends)
		}
	}
	if got := targets(get(t, "VirtualService", f.Name, "podinfo-canary.legacy-objects")); got != "podinfo-canary:100 podinfo-primary:0 " {
		t.Fatalf("the canary VirtualService routes %q", got)
	}
	for _, w := range []int{30, 0} {
		if err := r.SetRoutes(ctx, c, traffic.Weighted(w)); err != nil {
			t.Fatal(err)
		}
		if got, want := targets(get(t, "VirtualService", f.Name, "podinfo.legacy-objects")), fmt.Sprintf("podinfo-canary:%d podinfo-primary:%d ", w, 100-w); got != want {
			t.Fatalf("at weight %d the VirtualService routes %q, want %q", w, got, want)
		}
		if got, err := r.Routes(ctx, c); err != nil || got != traffic.Weighted(w) {
			t.Fatalf("read back %v (%v), want weight %d", got, err, w)
		}
	}
	if err := r.Finalize(ctx, c); err != nil {
		t.Fatal(err)
	}
	for _, o := range []struct{ kind, name string }{
		{"VirtualService", "podinfo.legacy-objects"}, {"VirtualService", "podinfo-canary.legacy-objects"},
		{"VirtualNode", "podinfo"}, {"VirtualNode", "podinfo-primary"}, {"VirtualNode", "podinfo-canary"},
	} {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("appmesh.k8s.aws/v1beta1")
		u.SetKind(o.kind)
		if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: f.Name, Name: o.name}, u); !apierrors.IsNotFound(err) {
			t.Errorf("%s %s is still there after Finalize: %v", o.kind, o.name, err)
		}
	}
}

func TestTheEnginePromotesAndRollsBackThroughTheLegacyRouter(t *testing.T) {
	f := fixture.New(t, cp.Client, "legacy-engine")
	inprocess.Start(t, cp.Config, f.Name, testr.NewWithOptions(t, testr.Options{Verbosity: 0}))
	c := canary(f.Name)
	c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{Interval: "10s", Threshold: 1, StepWeights: []int{20, 60}}
	f.Create(c)
	f.WaitPhase(sluicev1beta1.CanaryPhaseInitialized, time.Minute)

	follow := func(phase sluicev1beta1.CanaryPhase) []int {
		var seen []int
		controlplane.Eventually(t, 2*time.Minute, "the release reaches "+string(phase), func(context.Context) (bool, string) {
			c := f.Canary()
			if w := c.Status.CanaryWeight; w > 0 && (len(seen) == 0 || seen[len(seen)-1] != w) && c.Status.Phase == sluicev1beta1.CanaryPhaseProgressing {
				seen = append(seen, w)
				if got, want := targets(get(t, "VirtualService", f.Name, "podinfo.legacy-engine")), fmt.Sprintf("podinfo-canary:%d podinfo-primary:%d ", w, 100-w); got != want {
					t.Fatalf("at weight %d the VirtualService routes %q, want %q", w, got, want)
				}
			}
			return c.Status.Phase == phase, fmt.Sprintf("phase %s weights %v", c.Status.Phase, seen)
		})
		return seen
	}
	f.Release("podinfo:2")
	if got := follow(sluicev1beta1.CanaryPhaseSucceeded); !slices.Equal(got, []int{20, 60}) {
		t.Fatalf("the promoted release went through weights %v, want [20 60]", got)
	}
	if got := targets(get(t, "VirtualService", f.Name, "podinfo.legacy-engine")); got != "podinfo-canary:0 podinfo-primary:100 " {
		t.Fatalf("after the promotion the VirtualService routes %q", got)
	}
	// A failing rollout webhook rolls the next release back.
	cur := f.Canary()
	before := cur.DeepCopy()
	cur.Spec.Analysis.Webhooks = []sluicev1beta1.CanaryWebhook{{Name: "fails", Type: sluicev1beta1.RolloutHook, URL: "http://127.0.0.1:1/unreachable"}}
	if err := cp.Client.Patch(t.Context(), cur, client.MergeFrom(before)); err != nil {
		t.Fatal(err)
	}
	f.Release("podinfo:3")
	if got := follow(sluicev1beta1.CanaryPhaseFailed); !slices.Equal(got, []int{20}) {
		t.Fatalf("the rolled back release went through weights %v, want [20]", got)
	}
	if got := targets(get(t, "VirtualService", f.Name, "podinfo.legacy-engine")); got != "podinfo-canary:0 podinfo-primary:100 " {
		t.Fatalf("after the rollback the VirtualService routes %q", got)
	}
}
