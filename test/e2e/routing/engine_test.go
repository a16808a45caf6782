package routing

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/traffic"
	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/traefik"
)

// TestEveryRouterPromotesAndRollsBack drives a progressive canary through
// each router: a release that is promoted, then one that a failing webhook
// rolls back. At every step it checks the split the router wrote.
func TestEveryRouterPromotesAndRollsBack(t *testing.T) {
	providers := []struct {
		provider sluicev1beta1.Provider
		setup    func(f *routed, c *sluicev1beta1.Canary)
	}{
		{"gatewayapi:v1", func(_ *routed, c *sluicev1beta1.Canary) {
			c.Spec.Service.GatewayRefs = []gatewayv1.ParentReference{{Name: traefik.GatewayName, Namespace: ptr.To(gatewayv1.Namespace(traefik.GatewayNamespace))}}
		}},
		{"istio", nil},
		{"nginx", withIngress},
		{"skipper", withIngress},
		{"traefik", nil},
		{"linkerd", nil},
		{"contour", nil},
		{"smi:v1alpha1", nil},
		{"gloo", nil},
		{"kuma", nil},
		{"appmesh:v1beta2", nil},
		{"apisix", func(f *routed, c *sluicev1beta1.Canary) {
			f.Create(&unstructured.Unstructured{Object: map[string]any{
				"apiVersion": "apisix.apache.org/v2", "kind": "ApisixRoute",
				"metadata": map[string]any{"name": "web", "namespace": f.Name},
				"spec": map[string]any{"http": []any{map[string]any{
					"name": "app", "match": map[string]any{"paths": []any{"/*"}},
					"backends": []any{map[string]any{"serviceName": "podinfo", "servicePort": int64(80)}},
				}}},
			}})
			c.Spec.RouteRef = &sluicev1beta1.LocalObjectReference{APIVersion: "apisix.apache.org/v2", Kind: "ApisixRoute", Name: "web"}
		}},
	}
	for _, p := range providers {
		t.Run(string(p.provider), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, "engine-"+sanitize(string(p.provider)))
			hook := newGate(t)
			f.canary(p.provider, sluicev1beta1.CanaryAnalysis{
				Threshold: 1, StepWeights: []int{20, 60},
				Webhooks: []sluicev1beta1.CanaryWebhook{{Name: "load", Type: sluicev1beta1.RolloutHook, URL: hook.URL}},
			}, func(c *sluicev1beta1.Canary) {
				if p.setup != nil {
					p.setup(f, c)
				}
			})
			c := f.WaitPhase(sluicev1beta1.CanaryPhaseInitialized, time.Minute)
			if got := f.routes(c); got != traffic.PrimaryOnly() {
				t.Fatalf("after initialization the router holds %v", got)
			}

			f.Release("podinfo:2")
			weights := f.followSteps(sluicev1beta1.CanaryPhaseSucceeded)
			if !slices.Equal(weights, []int{20, 60}) {
				t.Fatalf("the promoted release went through weights %v, want [20 60]", weights)
			}
			f.checkSettled("podinfo:2")

			hook.close()
			f.Release("podinfo:3")
			weights = f.followSteps(sluicev1beta1.CanaryPhaseFailed)
			if !slices.Equal(weights, []int{20}) {
				t.Fatalf("the rolled back release went through weights %v, want [20]", weights)
			}
			f.checkSettled("podinfo:2")
		})
	}
}

// followSteps watches a release until it reaches phase, checking at each
// weight that the router's objects hold exactly that split, and returns
// the weights seen.
func (f *routed) followSteps(phase sluicev1beta1.CanaryPhase) []int {
	f.T.Helper()
	var seen []int
	controlplane.Eventually(f.T, 2*time.Minute, "the release reaches "+string(phase), func(context.Context) (bool, string) {
		c := f.Canary()
		if w := c.Status.CanaryWeight; w > 0 && (len(seen) == 0 || seen[len(seen)-1] != w) && c.Status.Phase == sluicev1beta1.CanaryPhaseProgressing {
			seen = append(seen, w)
			if got := f.routes(c); got != traffic.Weighted(w) {
				f.T.Fatalf("at weight %d the router holds %v", w, got)
			}
		}
		return c.Status.Phase == phase, fmt.Sprintf("phase %s weights %v", c.Status.Phase, seen)
	})
	return seen
}

// checkSettled checks that, after a release, the primary runs image, takes
// all traffic, and the canary is at zero.
func (f *routed) checkSettled(image string) {
	f.T.Helper()
	c := f.Canary()
	if got := f.routes(c); got != traffic.PrimaryOnly() {
		f.T.Fatalf("after the release the router holds %v", got)
	}
	primary, target := &appsv1.Deployment{}, &appsv1.Deployment{}
	for name, d := range map[string]*appsv1.Deployment{"podinfo-primary": primary, "podinfo": target} {
		if err := cp.Client.Get(f.T.Context(), client.ObjectKey{Namespace: f.Name, Name: name}, d); err != nil {
			f.T.Fatal(err)
		}
	}
	if got := primary.Spec.Template.Spec.Containers[0].Image; got != image || *target.Spec.Replicas != 0 {
		f.T.Fatalf("after the release the primary runs %s and the canary has %d replicas", got, *target.Spec.Replicas)
	}
}

func withIngress(f *routed, c *sluicev1beta1.Canary) {
	f.Create(&networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: f.Name},
		Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{Host: f.Name + ".example.com", IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
			Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: ptr.To(networkingv1.PathTypePrefix), Backend: networkingv1.IngressBackend{
				Service: &networkingv1.IngressServiceBackend{Name: "podinfo", Port: networkingv1.ServiceBackendPort{Number: 80}}}}},
		}}}}},
	})
	c.Spec.IngressRef = &sluicev1beta1.LocalObjectReference{APIVersion: "networking.k8s.io/v1", Kind: "Ingress", Name: "web"}
}

func sanitize(s string) string {
	out := []rune{}
	for _, r := range s {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			out = append(out, r)
		} else {
			out = append(out, '-')
		}
	}
	return string(out)
}
