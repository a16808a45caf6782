package router_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/traffic"
)

// describeHTTPProxy lists an HTTPProxy's routes: conditions, then each
// Service with its weight, a mirror marked, and the timeout and retries.
func describeHTTPProxy(obj client.Object) []string {
	u := obj.(*unstructured.Unstructured)
	routes, _, _ := unstructured.NestedSlice(u.Object, "spec", "routes")
	var out []string
	for _, r := range routes {
		rm := r.(map[string]any)
		var parts []string
		conditions, _, _ := unstructured.NestedSlice(rm, "conditions")
		for _, c := range conditions {
			parts = append(parts, fmt.Sprint(c))
		}
		services, _, _ := unstructured.NestedSlice(rm, "services")
		for _, s := range services {
			sm := s.(map[string]any)
			line := fmt.Sprintf("%v:%v", sm["name"], sm["weight"])
			if sm["mirror"] == true {
				line += "(mirror)"
			}
			if set, ok, _ := unstructured.NestedSlice(sm, "requestHeadersPolicy", "set"); ok {
				line += fmt.Sprint(set)
			}
			parts = append(parts, line)
		}
		if t, ok := rm["timeoutPolicy"]; ok {
			parts = append(parts, fmt.Sprint("timeout ", t))
		}
		if t, ok := rm["retryPolicy"]; ok {
			parts = append(parts, fmt.Sprint("retry ", t))
		}
		out = append(out, strings.Join(parts, " "))
	}
	return out
}

func TestContourHTTPProxy(t *testing.T) {
	ctx := t.Context()
	c := setupCanary(t, "contour", func(c *sluicev1beta1.Canary) {
		c.Spec.Provider = "contour"
		c.Spec.Service.Timeout = "15s"
		c.Spec.Service.Retries = &sluicev1beta1.HTTPRetry{Attempts: 3, PerTryTimeout: "5s"}
		c.Spec.Service.Match = []sluicev1beta1.HTTPMatchRequest{{URI: &sluicev1beta1.StringMatch{Prefix: "/api"}}}
		c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{StepWeight: 10, Match: []sluicev1beta1.HTTPMatchRequest{
			{Headers: map[string]sluicev1beta1.StringMatch{"x-canary": {Exact: "insider"}, "cookie": {Regex: "^(.*?;)?(canary=always)(;.*)?$"}}},
			{QueryParams: map[string]sluicev1beta1.StringMatch{"canary": {Prefix: "yes"}}},
		}}
	})
	r := routerFor(t, "contour")
	if err := r.Reconcile(ctx, c); err != nil {
		t.Fatal(err)
	}
	get := getUnstructured(t, "projectcontour.io/v1", "HTTPProxy", c.Namespace, "podinfo")
	const (
		primaryHeader = "[map[name:l5d-dst-override value:podinfo-primary.contour.svc.cluster.local:9898]]"
		canaryHeader  = "[map[name:l5d-dst-override value:podinfo-canary.contour.svc.cluster.local:9898]]"
		policies      = " timeout map[idle:5m response:15s] retry map[count:3 perTryTimeout:5s]"
	)
	if got, want := describeHTTPProxy(get()), []string{"map[prefix:/api] podinfo-primary:100" + primaryHeader + " podinfo-canary:0" + canaryHeader + policies}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after Reconcile\n got %q\nwant %q", got, want)
	}
	step(t, r, c, traffic.Weighted(30), get, describeHTTPProxy, []string{
		"map[prefix:/api] podinfo-primary:70" + primaryHeader + " podinfo-canary:30" + canaryHeader + policies})
	step(t, r, c, traffic.Routes{Primary: 100, Mirror: true, MirrorWeight: 25}, get, describeHTTPProxy, []string{
		"map[prefix:/api] podinfo-primary:100" + primaryHeader + " podinfo-canary:25(mirror)" + canaryHeader + policies})
	step(t, r, c, traffic.Routes{Primary: 100, Match: true}, get, describeHTTPProxy, []string{
		"map[prefix:/api] map[header:map[name:cookie regex:^(.*?;)?(canary=always)(;.*)?$]] map[header:map[exact:insider name:x-canary]] podinfo-primary:0" + primaryHeader + " podinfo-canary:100" + canaryHeader + policies,
		"map[prefix:/api] map[queryParameter:map[name:canary prefix:yes]] podinfo-primary:0" + primaryHeader + " podinfo-canary:100" + canaryHeader + policies,
		"map[prefix:/api] podinfo-primary:100" + primaryHeader + " podinfo-canary:0" + canaryHeader + policies,
	})
	step(t, r, c, traffic.PrimaryOnly(), get, describeHTTPProxy, []string{
		"map[prefix:/api] podinfo-primary:100" + primaryHeader + " podinfo-canary:0" + canaryHeader + policies})
	if err := r.Finalize(ctx, c); err != nil {
		t.Fatal(err)
	}
	if got := describeHTTPProxy(get()); !reflect.DeepEqual(got, []string{"map[prefix:/api] podinfo:<nil>"}) || len(get().GetOwnerReferences()) != 0 {
		t.Fatalf("after finalize %q, owners %v", got, get().GetOwnerReferences())
	}
}

func TestContourRefusesMatchesAnHTTPProxyCannotExpress(t *testing.T) {
	ctx := t.Context()
	c := setupCanary(t, "contour-refuses", func(c *sluicev1beta1.Canary) {
		c.Spec.Provider = "contour"
		c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{StepWeight: 10, Match: []sluicev1beta1.HTTPMatchRequest{
			{Method: &sluicev1beta1.StringMatch{Exact: "POST"}},
		}}
	})
	r := routerFor(t, "contour")
	err := r.SetRoutes(ctx, c, traffic.Routes{Primary: 100, Match: true})
	if err == nil || !strings.Contains(err.Error(), "analysis.match[0]") {
		t.Fatalf("a method match gave %v, want an error naming analysis.match[0]", err)
	}
}
