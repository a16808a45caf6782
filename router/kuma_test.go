package router_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/traffic"
	"sluice.dev/sluice/router"
)

// describeTrafficRoute gives a TrafficRoute's mesh, destinations and
// split.
func describeTrafficRoute(obj client.Object) []string {
	u := obj.(*unstructured.Unstructured)
	destinations, _, _ := unstructured.NestedSlice(u.Object, "spec", "destinations")
	out := []string{fmt.Sprintf("mesh %v to %v", u.Object["mesh"], destinations)}
	splits, _, _ := unstructured.NestedSlice(u.Object, "spec", "conf", "split")
	for _, s := range splits {
		sm := s.(map[string]any)
		service, _, _ := unstructured.NestedString(sm, "destination", "kuma.io/service")
		out = append(out, fmt.Sprintf("%s:%v", service, sm["weight"]))
	}
	return out
}

func TestKumaTrafficRoute(t *testing.T) {
	ctx := t.Context()
	c := setupCanary(t, "kuma", func(c *sluicev1beta1.Canary) {
		c.Spec.Provider = "kuma"
		c.Annotations = map[string]string{"kuma.io/mesh": "payments"}
		c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{StepWeight: 10}
	})
	r := routerFor(t, "kuma")
	if err := r.Reconcile(ctx, c); err != nil {
		t.Fatal(err)
	}
	get := getUnstructured(t, "kuma.io/v1alpha1", "TrafficRoute", "", "podinfo")
	mesh := "mesh payments to [map[match:map[kuma.io/service:podinfo_kuma_svc_9898]]]"
	step(t, r, c, traffic.Weighted(40), get, describeTrafficRoute, []string{mesh, "podinfo-primary_kuma_svc_9898:60", "podinfo-canary_kuma_svc_9898:40"})
	step(t, r, c, traffic.PrimaryOnly(), get, describeTrafficRoute, []string{mesh, "podinfo-primary_kuma_svc_9898:100", "podinfo-canary_kuma_svc_9898:0"})
	if labels := get().GetLabels(); labels["sluice.dev/canary"] != "podinfo" || labels["sluice.dev/canary-namespace"] != "kuma" || len(get().GetOwnerReferences()) != 0 {
		t.Fatalf("the cluster-scoped TrafficRoute has labels %v and owners %v", labels, get().GetOwnerReferences())
	}

	// A Canary of the same name in another namespace must not take it
	// over, nor delete it.
	other := setupCanary(t, "kuma-other", func(c *sluicev1beta1.Canary) {
		c.Spec.Provider = "kuma"
		c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{StepWeight: 10}
	})
	var spec *router.SpecError
	if err := r.Reconcile(ctx, other); !errors.As(err, &spec) || !strings.Contains(err.Error(), "belongs to Canary kuma/podinfo") {
		t.Fatalf("another namespace's Canary took the TrafficRoute: %v", err)
	}
	if err := r.Finalize(ctx, other); err != nil {
		t.Fatal(err)
	}
	if got := describeTrafficRoute(get()); !reflect.DeepEqual(got[1:], []string{"podinfo-primary_kuma_svc_9898:100", "podinfo-canary_kuma_svc_9898:0"}) {
		t.Fatalf("another Canary's Finalize changed the TrafficRoute: %q", got)
	}

	if err := r.Finalize(ctx, c); err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("kuma.io/v1alpha1")
	u.SetKind("TrafficRoute")
	if err := cp.Client.Get(ctx, client.ObjectKey{Name: "podinfo"}, u); !apierrors.IsNotFound(err) {
		t.Fatalf("the TrafficRoute is still there after Finalize: %v", err)
	}
}
