package router_test

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/traffic"
	"sluice.dev/sluice/router"
)

// describeApisixRoute lists an ApisixRoute's rules: name, priority and
// each backend with its weight.
func describeApisixRoute(obj client.Object) []string {
	u := obj.(*unstructured.Unstructured)
	rules, _, _ := unstructured.NestedSlice(u.Object, "spec", "http")
	var out []string
	for _, r := range rules {
		rm := r.(map[string]any)
		line := fmt.Sprintf("%v priority %v:", rm["name"], rm["priority"])
		backends, _, _ := unstructured.NestedSlice(rm, "backends")
		for _, b := range backends {
			bm := b.(map[string]any)
			line += fmt.Sprintf(" %v:%v@%v", bm["serviceName"], bm["weight"], bm["servicePort"])
		}
		out = append(out, line)
	}
	return out
}

func TestAPISIXClonesTheUsersRouteWithWeights(t *testing.T) {
	ctx := t.Context()
	const ns = "apisix"
	c := setupCanary(t, ns, func(c *sluicev1beta1.Canary) {
		c.Spec.Provider = "apisix"
		c.Spec.RouteRef = &sluicev1beta1.LocalObjectReference{APIVersion: "apisix.apache.org/v2", Kind: "ApisixRoute", Name: "web"}
		c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{StepWeight: 10}
	})
	user := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apisix.apache.org/v2", "kind": "ApisixRoute",
		"metadata": map[string]any{"name": "web", "namespace": ns},
		"spec": map[string]any{"http": []any{
			map[string]any{"name": "app", "match": map[string]any{"hosts": []any{"app.example.com"}, "paths": []any{"/*"}},
				"backends": []any{map[string]any{"serviceName": "podinfo", "servicePort": int64(9898), "resolveGranularity": "service"}}},
			map[string]any{"name": "docs", "match": map[string]any{"paths": []any{"/docs/*"}},
				"backends": []any{map[string]any{"serviceName": "docs", "servicePort": int64(80)}}},
		}},
	}}
	if err := cp.Client.Create(ctx, user); err != nil {
		t.Fatal(err)
	}
	userBefore := describeApisixRoute(getUnstructured(t, "apisix.apache.org/v2", "ApisixRoute", ns, "web")())
	r := routerFor(t, "apisix")
	if err := r.Reconcile(ctx, c); err != nil {
		t.Fatal(err)
	}
	get := getUnstructured(t, "apisix.apache.org/v2", "ApisixRoute", ns, "web-podinfo-canary")
	step(t, r, c, traffic.Weighted(30), get, describeApisixRoute, []string{"app priority 10000: podinfo-primary:70@9898 podinfo-canary:30@9898"})
	step(t, r, c, traffic.PrimaryOnly(), get, describeApisixRoute, []string{"app priority 10000: podinfo-primary:100@9898 podinfo-canary:0@9898"})
	if got := describeApisixRoute(getUnstructured(t, "apisix.apache.org/v2", "ApisixRoute", ns, "web")()); !reflect.DeepEqual(got, userBefore) {
		t.Fatalf("the user's route changed: %q, was %q", got, userBefore)
	}
	if err := r.Finalize(ctx, c); err != nil {
		t.Fatal(err)
	}
	clone := &unstructured.Unstructured{}
	clone.SetAPIVersion("apisix.apache.org/v2")
	clone.SetKind("ApisixRoute")
	if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web-podinfo-canary"}, clone); !apierrors.IsNotFound(err) {
		t.Fatalf("the canary route is still there after Finalize: %v", err)
	}
}

func TestAPISIXNamesAMissingRoute(t *testing.T) {
	// The CRD already refuses provider apisix without spec.routeRef.
	c := setupCanary(t, "apisix-missing", func(c *sluicev1beta1.Canary) {
		c.Spec.Provider = "apisix"
		c.Spec.RouteRef = &sluicev1beta1.LocalObjectReference{APIVersion: "apisix.apache.org/v2", Kind: "ApisixRoute", Name: "absent"}
	})
	err := routerFor(t, "apisix").Reconcile(t.Context(), c)
	var spec *router.SpecError
	if !errors.As(err, &spec) || spec.Field != "spec.routeRef" || err.Error() != "spec.routeRef: ApisixRoute absent not found" {
		t.Fatalf("got %v, want a SpecError naming spec.routeRef", err)
	}
}
