package router_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/traffic"
)

// describeVirtualRouter lists a VirtualRouter's routes: name, priority,
// header matches and weighted targets.
func describeVirtualRouter(obj client.Object) []string {
	u := obj.(*unstructured.Unstructured)
	routes, _, _ := unstructured.NestedSlice(u.Object, "spec", "routes")
	var out []string
	for _, r := range routes {
		rm := r.(map[string]any)
		http := rm["httpRoute"].(map[string]any)
		line := fmt.Sprintf("%v", rm["name"])
		if p, ok := rm["priority"]; ok {
			line += fmt.Sprintf(" priority %v", p)
		}
		match := http["match"].(map[string]any)
		line += fmt.Sprintf(" prefix %v", match["prefix"])
		if h, ok := match["headers"]; ok {
			line += fmt.Sprintf(" headers %v", h)
		}
		targets, _, _ := unstructured.NestedSlice(http, "action", "weightedTargets")
		for _, t := range targets {
			name, _, _ := unstructured.NestedString(t.(map[string]any), "virtualNodeRef", "name")
			line += fmt.Sprintf(" %s:%v", name, t.(map[string]any)["weight"])
		}
		out = append(out, line)
	}
	return out
}

func TestAppMeshV1beta2(t *testing.T) {
	ctx := t.Context()
	const ns = "appmesh"
	c := setupCanary(t, ns, func(c *sluicev1beta1.Canary) {
		c.Spec.Provider = "appmesh:v1beta2"
		c.Spec.Service.Backends = []string{"backend1", "arn:aws:appmesh:eu-west-1:000000000000:mesh/global/virtualService/backend2"}
		c.Spec.Service.Timeout = "15s"
		c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{StepWeight: 10, Match: []sluicev1beta1.HTTPMatchRequest{
			{Headers: map[string]sluicev1beta1.StringMatch{"x-canary": {Exact: "insider"}}},
		}}
	})
	r := routerFor(t, "appmesh:v1beta2")
	if err := r.Initialize(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := r.Reconcile(ctx, c); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ node, host, selector string }{
		{"podinfo-primary", "podinfo-primary.appmesh.svc.cluster.local.", "map[app:podinfo-primary component:api-primary]"},
		{"podinfo-canary", "podinfo-canary.appmesh.svc.cluster.local.", "map[app:podinfo component:api]"},
	} {
		u := getUnstructured(t, "appmesh.k8s.aws/v1beta2", "VirtualNode", ns, tt.node)().(*unstructured.Unstructured)
		host, _, _ := unstructured.NestedString(u.Object, "spec", "serviceDiscovery", "dns", "hostname")
		selector, _, _ := unstructured.NestedMap(u.Object, "spec", "podSelector", "matchLabels")
		listeners, _, _ := unstructured.NestedSlice(u.Object, "spec", "listeners")
		backends, _, _ := unstructured.NestedSlice(u.Object, "spec", "backends")
		if host != tt.host || fmt.Sprint(selector) != tt.selector || fmt.Sprint(listeners) != "[map[portMapping:map[port:9898 protocol:http]]]" || len(backends) != 2 {
			t.Fatalf("VirtualNode %s: host %s, selector %v, listeners %v, backends %v", tt.node, host, selector, listeners, backends)
		}
	}
	for _, vs := range []string{"podinfo", "podinfo-canary"} {
		u := getUnstructured(t, "appmesh.k8s.aws/v1beta2", "VirtualService", ns, vs)().(*unstructured.Unstructured)
		if router, _, _ := unstructured.NestedString(u.Object, "spec", "provider", "virtualRouter", "virtualRouterRef", "name"); router != vs {
			t.Fatalf("VirtualService %s routes through %q, want the VirtualRouter of its name", vs, router)
		}
	}
	if got := describeVirtualRouter(getUnstructured(t, "appmesh.k8s.aws/v1beta2", "VirtualRouter", ns, "podinfo-canary")()); !reflect.DeepEqual(got, []string{"podinfo prefix / podinfo-canary:100 podinfo-primary:0"}) {
		t.Fatalf("the canary VirtualRouter has routes %q", got)
	}
	get := getUnstructured(t, "appmesh.k8s.aws/v1beta2", "VirtualRouter", ns, "podinfo")
	step(t, r, c, traffic.Weighted(30), get, describeVirtualRouter, []string{"podinfo prefix / podinfo-canary:30 podinfo-primary:70"})
	step(t, r, c, traffic.Routes{Primary: 100, Match: true}, get, describeVirtualRouter, []string{
		"podinfo-a-0 priority 10 prefix / headers [map[match:map[exact:insider] name:x-canary]] podinfo-canary:100 podinfo-primary:0",
		"podinfo-b priority 20 prefix / podinfo-canary:0 podinfo-primary:100",
	})
	step(t, r, c, traffic.PrimaryOnly(), get, describeVirtualRouter, []string{"podinfo prefix / podinfo-canary:0 podinfo-primary:100"})

	if err := r.Finalize(ctx, c); err != nil {
		t.Fatal(err)
	}
	for _, o := range []struct{ kind, name string }{
		{"VirtualRouter", "podinfo"}, {"VirtualRouter", "podinfo-canary"}, {"VirtualService", "podinfo"},
		{"VirtualService", "podinfo-canary"}, {"VirtualNode", "podinfo-primary"}, {"VirtualNode", "podinfo-canary"},
	} {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("appmesh.k8s.aws/v1beta2")
		u.SetKind(o.kind)
		if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: o.name}, u); !apierrors.IsNotFound(err) {
			t.Errorf("%s %s is still there after Finalize: %v", o.kind, o.name, err)
		}
	}
}

func TestAppMeshRefusesMatchesOtherThanHeaders(t *testing.T) {
	c := setupCanary(t, "appmesh-refuses", func(c *sluicev1beta1.Canary) {
		c.Spec.Provider = "appmesh:v1beta2"
		c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{StepWeight: 10, Match: []sluicev1beta1.HTTPMatchRequest{
			{QueryParams: map[string]sluicev1beta1.StringMatch{"canary": {Exact: "yes"}}},
		}}
	})
	err := routerFor(t, "appmesh:v1beta2").SetRoutes(t.Context(), c, traffic.Routes{Primary: 100, Match: true})
	if err == nil || !strings.Contains(err.Error(), "analysis.match[0]") {
		t.Fatalf("a query match gave %v, want an error naming analysis.match[0]", err)
	}
}
