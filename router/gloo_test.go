package router_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/traffic"
	"sluice.dev/sluice/router"
)

// describeRouteTable lists a RouteTable's routes: matchers, then each
// destination Upstream with its weight.
func describeRouteTable(obj client.Object) []string {
	u := obj.(*unstructured.Unstructured)
	routes, _, _ := unstructured.NestedSlice(u.Object, "spec", "routes")
	var out []string
	for _, r := range routes {
		rm := r.(map[string]any)
		var parts []string
		if m, ok := rm["matchers"]; ok {
			parts = append(parts, fmt.Sprint(m))
		}
		destinations, _, _ := unstructured.NestedSlice(rm, "routeAction", "multi", "destinations")
		for _, d := range destinations {
			name, _, _ := unstructured.NestedString(d.(map[string]any), "destination", "upstream", "name")
			parts = append(parts, fmt.Sprintf("%s:%v", name, d.(map[string]any)["weight"]))
		}
		out = append(out, strings.Join(parts, " "))
	}
	return out
}

func TestGlooRouteTableAndUpstreams(t *testing.T) {
	ctx := t.Context()
	const ns = "gloo"
	// The Upstream whose settings the generated ones copy.
	setupCanary(t, ns, func(c *sluicev1beta1.Canary) {
		c.Spec.Provider = "gloo"
		c.Spec.UpstreamRef = &sluicev1beta1.CrossNamespaceObjectReference{Kind: "Upstream", Name: "defaults"}
		c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{StepWeight: 10, Match: []sluicev1beta1.HTTPMatchRequest{
			{Headers: map[string]sluicev1beta1.StringMatch{"x-canary": {Exact: "insider"}}, Method: &sluicev1beta1.StringMatch{Exact: "GET"}},
			{QueryParams: map[string]sluicev1beta1.StringMatch{"canary": {Prefix: "yes"}}},
		}}
	})
	defaults := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "gloo.solo.io/v1", "kind": "Upstream",
		"metadata": map[string]any{"name": "defaults", "namespace": ns},
		"spec": map[string]any{
			"static":           map[string]any{"hosts": []any{map[string]any{"addr": "example.com", "port": int64(80)}}},
			"connectionConfig": map[string]any{"maxRequestsPerConnection": int64(7)},
		},
	}}
	if err := cp.Client.Create(ctx, defaults); err != nil {
		t.Fatal(err)
	}
	c := &sluicev1beta1.Canary{}
	if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "podinfo"}, c); err != nil {
		t.Fatal(err)
	}
	r := routerFor(t, "gloo")
	if err := r.Initialize(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := r.Reconcile(ctx, c); err != nil {
		t.Fatal(err)
	}
	for _, role := range []string{"primary", "canary"} {
		up := getUnstructured(t, "gloo.solo.io/v1", "Upstream", ns, "gloo-podinfo-"+role+"upstream-9898")()
		spec := up.(*unstructured.Unstructured).Object["spec"]
		want := map[string]any{
			"connectionConfig": map[string]any{"maxRequestsPerConnection": int64(7)},
			"kube":             map[string]any{"serviceName": "podinfo-" + role, "serviceNamespace": ns, "servicePort": int64(9898)},
		}
		if !reflect.DeepEqual(spec, want) {
			t.Fatalf("the %s Upstream's spec is %v, want %v", role, spec, want)
		}
		if len(up.GetOwnerReferences()) != 1 {
			t.Fatalf("the %s Upstream has owners %v, want the Canary", role, up.GetOwnerReferences())
		}
	}
	get := getUnstructured(t, "gateway.solo.io/v1", "RouteTable", ns, "podinfo")
	const primary, canary = "gloo-podinfo-primaryupstream-9898", "gloo-podinfo-canaryupstream-9898"
	step(t, r, c, traffic.Weighted(30), get, describeRouteTable, []string{primary + ":70 " + canary + ":30"})
	step(t, r, c, traffic.Routes{Primary: 100, Match: true}, get, describeRouteTable, []string{
		"[map[headers:[map[name:x-canary value:insider]] methods:[GET]]] " + primary + ":0 " + canary + ":100",
		"[map[queryParameters:[map[name:canary regex:true value:^yes.*]]]] " + primary + ":0 " + canary + ":100",
		primary + ":100 " + canary + ":0",
	})
	step(t, r, c, traffic.PrimaryOnly(), get, describeRouteTable, []string{primary + ":100 " + canary + ":0"})
	if err := r.Finalize(ctx, c); err != nil {
		t.Fatal(err)
	}
	if got := describeRouteTable(get()); !reflect.DeepEqual(got, []string{"gloo-podinfo-upstream-9898:100"}) || len(get().GetOwnerReferences()) != 0 {
		t.Fatalf("after finalize %q, owners %v", got, get().GetOwnerReferences())
	}
	apexUpstream := getUnstructured(t, "gloo.solo.io/v1", "Upstream", ns, "gloo-podinfo-upstream-9898")()
	if len(apexUpstream.GetOwnerReferences()) != 0 {
		t.Fatalf("the apex Upstream left behind has owners %v", apexUpstream.GetOwnerReferences())
	}
}

func TestGlooNamesAMissingUpstreamRef(t *testing.T) {
	c := setupCanary(t, "gloo-missing", func(c *sluicev1beta1.Canary) {
		c.Spec.Provider = "gloo"
		c.Spec.UpstreamRef = &sluicev1beta1.CrossNamespaceObjectReference{Kind: "Upstream", Name: "absent"}
	})
	err := routerFor(t, "gloo").Initialize(t.Context(), c)
	var spec *router.SpecError
	if !errors.As(err, &spec) || spec.Field != "spec.upstreamRef" || err.Error() != "spec.upstreamRef: Upstream gloo-missing/absent not found" {
		t.Fatalf("a missing upstreamRef gave %v, want a SpecError naming spec.upstreamRef", err)
	}
}
