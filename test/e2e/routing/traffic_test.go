package routing

import (
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/test/traefik"
)

// holdAtTen starts a rollout whose canary stops at weight 10: the
// confirm-traffic-increase gate lets the first step through and closes.
func holdAtTen(t *testing.T, f *routed, g *gate) {
	t.Helper()
	f.Release("podinfo:2")
	f.WaitFor("weight 10", time.Minute, func(c *sluicev1beta1.Canary) bool { return c.Status.CanaryWeight == 10 })
	g.close()
}

func weighted(g *gate) sluicev1beta1.CanaryAnalysis {
	return sluicev1beta1.CanaryAnalysis{Threshold: 2, StepWeight: 10, Webhooks: []sluicev1beta1.CanaryWebhook{
		{Name: "gate", Type: sluicev1beta1.ConfirmTrafficIncreaseHook, URL: g.URL},
	}}
}

func TestTraefikSplitsAnHTTPRouteExactlyByWeight(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "traefik-httproute")
	g := newGate(t)
	const host = "gateway.example.com"
	f.canary("gatewayapi:v1", weighted(g), func(c *sluicev1beta1.Canary) {
		c.Spec.Service.Hosts = []string{host}
		c.Spec.Service.GatewayRefs = []gatewayv1.ParentReference{{Name: traefik.GatewayName, Namespace: ptr.To(gatewayv1.Namespace(traefik.GatewayNamespace))}}
	})
	f.WaitPhase(sluicev1beta1.CanaryPhaseInitialized, time.Minute)
	waitServed(t, dp.traefik, host, nil, "primary")

	assertTraefikSplitsExactly(t, f, g, host)
}

func TestTraefikSendsAnABMatchToTheCanaryOnly(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "traefik-ab")
	g := newGate(t)
	g.close()
	const host = "ab.example.com"
	f.canary("gatewayapi:v1", sluicev1beta1.CanaryAnalysis{
		Iterations: 2,
		Match:      []sluicev1beta1.HTTPMatchRequest{{Headers: map[string]sluicev1beta1.StringMatch{"X-Canary": {Exact: "insider"}}}},
		// The closed gate keeps the A/B test running while requests go
		// through.
		Webhooks: []sluicev1beta1.CanaryWebhook{{Name: "gate", Type: sluicev1beta1.ConfirmPromotionHook, URL: g.URL}},
	}, func(c *sluicev1beta1.Canary) {
		c.Spec.Service.Hosts = []string{host}
		c.Spec.Service.GatewayRefs = []gatewayv1.ParentReference{{Name: traefik.GatewayName, Namespace: ptr.To(gatewayv1.Namespace(traefik.GatewayNamespace))}}
	})
	f.WaitPhase(sluicev1beta1.CanaryPhaseInitialized, time.Minute)
	f.Release("podinfo:2")
	f.WaitFor("the A/B routes", time.Minute, func(c *sluicev1beta1.Canary) bool { return c.Status.Iterations >= 1 })
	insider := map[string]string{"X-Canary": "insider"}
	waitServed(t, dp.traefik, host, insider, "canary")
	if got := send(t, dp.traefik, host, 100, insider); got["canary"] != 100 {
		t.Fatalf("matching requests went %v, want all 100 to the canary", got)
	}
	if got := send(t, dp.traefik, host, 100, map[string]string{"X-Canary": "outsider"}); got["primary"] != 100 {
		t.Fatalf("other requests went %v, want all 100 to the primary", got)
	}
}

func TestTraefikSplitsATraefikServiceExactlyByWeight(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "traefik-service")
	g := newGate(t)
	const host = "traefikservice.example.com"
	f.Create(ingressRoute(f.Name, host))
	f.canary("traefik", weighted(g), nil)
	f.WaitPhase(sluicev1beta1.CanaryPhaseInitialized, time.Minute)
	waitServed(t, dp.traefik, host, nil, "primary")

	assertTraefikSplitsExactly(t, f, g, host)
}

// assertTraefikSplitsExactly holds the rollout at canary weight 10 and
// checks that 1000 requests through Traefik split exactly 900/100:
// Traefik's weighted round robin repeats every 100 requests.
func assertTraefikSplitsExactly(t *testing.T, f *routed, g *gate, host string) {
	t.Helper()
	holdAtTen(t, f, g)
	waitTraefikSettled(t, `"weight":10`)
	// A configuration reload, which any parallel test's route change
	// causes, restarts Traefik's round robin: a count taken across one is
	// measured again.
	for attempt := 1; ; attempt++ {
		reloads := traefikReloads(t)
		got := send(t, dp.traefik, host, 1000, nil)
		if traefikReloads(t) != reloads && attempt < 5 {
			continue
		}
		if got["primary"] != 900 || got["canary"] != 100 {
			t.Fatalf("1000 requests at canary weight 10 split %v, want exactly 900/100", got)
		}
		return
	}
}

// traefikReloads is Traefik's count of configuration reloads, from its
// own metrics.
func traefikReloads(t *testing.T) string {
	t.Helper()
	resp, err := http.Get("http://" + dp.traefikAPI + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(body), "\n") {
		if strings.HasPrefix(line, "traefik_config_reloads_total") {
			return line
		}
	}
	return ""
}

func TestSkipperSplitsAnIngressByWeight(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "skipper")
	g := newGate(t)
	const host = "skipper.example.com"
	f.Create(&networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: f.Name},
		Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
			Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: ptr.To(networkingv1.PathTypePrefix), Backend: networkingv1.IngressBackend{
				Service: &networkingv1.IngressServiceBackend{Name: "podinfo", Port: networkingv1.ServiceBackendPort{Number: 80}}}}},
		}}}}},
	})
	f.canary("skipper", weighted(g), func(c *sluicev1beta1.Canary) {
		c.Spec.IngressRef = &sluicev1beta1.LocalObjectReference{APIVersion: "networking.k8s.io/v1", Kind: "Ingress", Name: "web"}
	})
	f.WaitPhase(sluicev1beta1.CanaryPhaseInitialized, time.Minute)
	waitServedOrLog(t, dp.skipper, host, "skipper")

	holdAtTen(t, f, g)
	waitServed(t, dp.skipper, host, nil, "canary")
	// Skipper draws each request at random, so the canary's share of n
	// requests has a standard deviation of sqrt(0.09/n): 0.47 points at
	// 4000, which puts the ±3 bound six deviations out; at 1000 it was
	// only three.
	const n = 4000
	got := send(t, dp.skipper, host, n, nil)
	canaryShare := float64(got["canary"]) * 100 / n
	if got["primary"]+got["canary"] != n || math.Abs(canaryShare-10) > 3 {
		t.Fatalf("%d requests at canary weight 10 split %v: %.1f%% to the canary, want 10 ± 3", n, got, canaryShare)
	}
	t.Logf("Skipper split %v", got)
}

func waitServedOrLog(t *testing.T, addr, host, proxy string) {
	t.Helper()
	defer func() {
		if t.Failed() {
			t.Logf("%s log:\n%s", proxy, cp.Log(proxy))
			if resp, err := http.Get("http://" + dp.skipperSupport + "/routes"); err == nil {
				body, _ := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				t.Logf("skipper routes:\n%s", body)
			}
		}
	}()
	waitServed(t, addr, host, nil, "primary")
}

// ingressRoute is the user's Traefik IngressRoute that sends host's
// requests to the TraefikService provider traefik writes.
func ingressRoute(namespace, host string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "traefik.io/v1alpha1", "kind": "IngressRoute",
		"metadata": map[string]any{"name": "web", "namespace": namespace},
		"spec": map[string]any{
			"entryPoints": []any{"web"},
			"routes": []any{map[string]any{
				"match": "Host(`" + host + "`)", "kind": "Rule",
				"services": []any{map[string]any{"name": "podinfo", "kind": "TraefikService"}},
			}},
		},
	}}
}
