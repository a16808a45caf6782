package routing

import (
	"strings"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
)

// apisixRoute is an ApisixRoute named web whose one rule sends everything
// to service.
func apisixRoute(ns, service string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apisix.apache.org/v2", "kind": "ApisixRoute",
		"metadata": map[string]any{"name": "web", "namespace": ns},
		"spec": map[string]any{"http": []any{map[string]any{
			"name": "app", "match": map[string]any{"paths": []any{"/*"}},
			"backends": []any{map[string]any{"serviceName": service, "servicePort": int64(80)}},
		}}},
	}}
}

// TestARouterThatCannotWorkSaysWhichFieldToFix gives each router a spec
// that the API server accepts but the router cannot work with: a
// reference to an object that does not exist, or one that belongs to
// another Canary. The Canary must say which field, in its Ready condition
// and a Warning Event, move no traffic, and go on once the field's object
// is there.
func TestARouterThatCannotWorkSaysWhichFieldToFix(t *testing.T) {
	cases := []struct {
		name     string
		ns       string
		provider sluicev1beta1.Provider
		setup    func(f *routed, c *sluicev1beta1.Canary)
		// want is what Ready's message must hold.
		want string
		// fix, when set, makes the spec work.
		fix func(f *routed)
	}{
		{
			name: "apisix names an ApisixRoute that does not exist", ns: "problem-apisix-missing", provider: "apisix",
			setup: func(_ *routed, c *sluicev1beta1.Canary) {
				c.Spec.RouteRef = &sluicev1beta1.LocalObjectReference{APIVersion: "apisix.apache.org/v2", Kind: "ApisixRoute", Name: "web"}
			},
			want: "spec.routeRef: ApisixRoute web not found",
			fix:  func(f *routed) { f.Create(apisixRoute(f.Name, "podinfo")) },
		},
		{
			name: "apisix names an ApisixRoute that does not send to the apex Service", ns: "problem-apisix-apex", provider: "apisix",
			setup: func(f *routed, c *sluicev1beta1.Canary) {
				f.Create(apisixRoute(f.Name, "elsewhere"))
				c.Spec.RouteRef = &sluicev1beta1.LocalObjectReference{APIVersion: "apisix.apache.org/v2", Kind: "ApisixRoute", Name: "web"}
			},
			want: "spec.routeRef: no rule of ApisixRoute web has the apex Service podinfo",
		},
		{
			name: "gloo names an Upstream that does not exist", ns: "problem-gloo", provider: "gloo",
			setup: func(f *routed, c *sluicev1beta1.Canary) {
				c.Spec.UpstreamRef = &sluicev1beta1.CrossNamespaceObjectReference{APIVersion: "gloo.solo.io/v1", Kind: "Upstream", Name: "settings"}
			},
			want: "spec.upstreamRef: Upstream problem-gloo/settings not found",
			fix: func(f *routed) {
				f.Create(&unstructured.Unstructured{Object: map[string]any{
					"apiVersion": "gloo.solo.io/v1", "kind": "Upstream",
					"metadata": map[string]any{"name": "settings", "namespace": f.Name},
					"spec":     map[string]any{"connectionConfig": map[string]any{"maxRequestsPerConnection": int64(10)}},
				}})
			},
		},
		{
			name: "nginx names an Ingress that does not exist", ns: "problem-nginx", provider: "nginx",
			setup: func(_ *routed, c *sluicev1beta1.Canary) {
				c.Spec.IngressRef = &sluicev1beta1.LocalObjectReference{APIVersion: "networking.k8s.io/v1", Kind: "Ingress", Name: "web"}
			},
			want: "spec.ingressRef: Ingress web not found",
			fix: func(f *routed) {
				f.Create(&networkingv1.Ingress{
					ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: f.Name},
					Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
						Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: ptr.To(networkingv1.PathTypePrefix), Backend: networkingv1.IngressBackend{
							Service: &networkingv1.IngressServiceBackend{Name: "podinfo", Port: networkingv1.ServiceBackendPort{Number: 80}}}}},
					}}}}},
				})
			},
		},
		{
			name: "gatewayapi names an HTTPRoute that does not exist", ns: "problem-gatewayapi", provider: "gatewayapi:v1",
			setup: func(_ *routed, c *sluicev1beta1.Canary) {
				c.Spec.Service.RouteRef = &sluicev1beta1.LocalObjectReference{APIVersion: "gateway.networking.k8s.io/v1", Kind: "HTTPRoute", Name: "web"}
			},
			want: "spec.service.routeRef: HTTPRoute web not found",
		},
		{
			// A TrafficRoute is cluster-scoped and named after the apex
			// Service: two namespaces' Canaries may want the same one.
			name: "kuma finds its TrafficRoute owned by a Canary of another namespace", ns: "problem-kuma", provider: "kuma",
			setup: func(f *routed, c *sluicev1beta1.Canary) {
				c.Spec.Service.Name = "kuma-taken"
				f.Create(&unstructured.Unstructured{Object: map[string]any{
					"apiVersion": "kuma.io/v1alpha1", "kind": "TrafficRoute", "mesh": "default",
					"metadata": map[string]any{"name": "kuma-taken", "labels": map[string]any{
						"sluice.dev/canary": "podinfo", "sluice.dev/canary-namespace": "elsewhere",
					}},
					"spec": map[string]any{"sources": []any{}, "destinations": []any{}, "conf": map[string]any{}},
				}})
				f.T.Cleanup(func() {
					tr := &unstructured.Unstructured{}
					tr.SetAPIVersion("kuma.io/v1alpha1")
					tr.SetKind("TrafficRoute")
					tr.SetName("kuma-taken")
					_ = cp.Client.Delete(t.Context(), tr)
				})
			},
			want: "spec.service.name: TrafficRoute kuma-taken belongs to Canary elsewhere/podinfo",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, tc.ns)
			f.canary(tc.provider, sluicev1beta1.CanaryAnalysis{Threshold: 1, StepWeights: []int{50}}, func(c *sluicev1beta1.Canary) { tc.setup(f, c) })

			c := f.WaitFor("Ready False with RoutingInvalid", time.Minute, func(c *sluicev1beta1.Canary) bool {
				ready := meta.FindStatusCondition(c.Status.Conditions, sluicev1beta1.ReadyCondition)
				return ready != nil && ready.Status == metav1.ConditionFalse && ready.Reason == "RoutingInvalid"
			})
			if ready := meta.FindStatusCondition(c.Status.Conditions, sluicev1beta1.ReadyCondition); !strings.Contains(ready.Message, tc.want) {
				t.Fatalf("Ready says %q, want it to say %q", ready.Message, tc.want)
			}
			f.WaitWarning("RoutingInvalid", 30*time.Second)
			if c.Status.Phase != sluicev1beta1.CanaryPhaseInitializing || c.Status.CanaryWeight != 0 {
				t.Fatalf("a Canary whose routing cannot work is in phase %s at weight %d", c.Status.Phase, c.Status.CanaryWeight)
			}
			if tc.fix == nil {
				return
			}
			// What the field names is not watched: the Canary looks again
			// each interval (10 s here).
			tc.fix(f)
			f.WaitPhase(sluicev1beta1.CanaryPhaseInitialized, time.Minute)
			if got := f.routes(f.Canary()); got.Primary != 100 {
				t.Fatalf("once fixed, the router holds %v", got)
			}
		})
	}
}
