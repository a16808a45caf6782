package routing

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/traffic"
	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/traefik"
)

// throughTraefik routes the Canary's HTTPRoute for host through the test
// Traefik's Gateway.
func throughTraefik(host string) func(*sluicev1beta1.Canary) {
	return func(c *sluicev1beta1.Canary) {
		c.Spec.Service.Hosts = []string{host}
		c.Spec.Service.GatewayRefs = []gatewayv1.ParentReference{{Name: traefik.GatewayName, Namespace: ptr.To(gatewayv1.Namespace(traefik.GatewayNamespace))}}
	}
}

func TestTraefikSendsAnABCookieToTheCanaryOnly(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "traefik-ab-cookie")
	g := newGate(t)
	g.close()
	const host = "ab-cookie.example.com"
	f.canary("gatewayapi:v1", sluicev1beta1.CanaryAnalysis{
		Iterations: 2,
		// Flagger's documented cookie match.
		Match:    []sluicev1beta1.HTTPMatchRequest{{Headers: map[string]sluicev1beta1.StringMatch{"cookie": {Regex: "^(.*?;)?(canary=always)(;.*)?$"}}}},
		Webhooks: []sluicev1beta1.CanaryWebhook{{Name: "gate", Type: sluicev1beta1.ConfirmPromotionHook, URL: g.URL}},
	}, throughTraefik(host))
	f.WaitPhase(sluicev1beta1.CanaryPhaseInitialized, time.Minute)
	f.Release("podinfo:2")
	f.WaitFor("the A/B routes", time.Minute, func(c *sluicev1beta1.Canary) bool { return c.Status.Iterations >= 1 })
	// The regex wants canary=always first or right after a ';', as
	// Flagger documents it.
	withCookie := map[string]string{"Cookie": "session=42;canary=always"}
	waitServed(t, dp.traefik, host, withCookie, "canary")
	if got := send(t, dp.traefik, host, 100, withCookie); got["canary"] != 100 {
		t.Fatalf("requests with the cookie went %v, want all 100 to the canary", got)
	}
	if got := send(t, dp.traefik, host, 100, map[string]string{"Cookie": "session=42;canary=never"}); got["primary"] != 100 {
		t.Fatalf("other requests went %v, want all 100 to the primary", got)
	}
	f.WaitEvent("WaitingForApproval", time.Minute)
}

func TestTraefikKeepsAClientWithTheCanaryCookieOnTheCanary(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "traefik-affinity")
	g := newGate(t)
	const host = "affinity.example.com"
	analysis := weighted(g)
	analysis.SessionAffinity = &sluicev1beta1.SessionAffinity{CookieName: "canary-session", MaxAge: 600}
	f.canary("gatewayapi:v1", analysis, throughTraefik(host))
	f.WaitPhase(sluicev1beta1.CanaryPhaseInitialized, time.Minute)
	waitServed(t, dp.traefik, host, nil, "primary")
	holdAtTen(t, f, g)

	// The canary's answers carry the affinity cookie in a filter on its
	// backendRef, which Traefik 3.6's Gateway API provider drops
	// (HTTPBackendRef filters are not supported there; Istio and Envoy
	// Gateway apply them): the client here takes the cookie the Canary
	// set, as a browser would from that answer.
	c := f.WaitFor("the affinity cookie", time.Minute, func(c *sluicev1beta1.Canary) bool { return c.Status.SessionAffinityCookie != "" })
	cookie := "canary-session=" + c.Status.SessionAffinityCookie
	waitServed(t, dp.traefik, host, map[string]string{"Cookie": cookie}, "canary")
	if got := send(t, dp.traefik, host, 50, map[string]string{"Cookie": cookie}); got["canary"] != 50 {
		t.Fatalf("requests with %s went %v, want all 50 to the canary", cookie, got)
	}
	if got := send(t, dp.traefik, host, 100, nil); got["canary"] != 10 || got["primary"] != 90 {
		t.Fatalf("requests without the cookie went %v, want the 90/10 split", got)
	}
}

// served is how many requests a backend in the network namespace has
// served, asked of it directly: a mirrored request's answer never comes
// back through the proxy.
func served(t *testing.T, port int) int {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://%s:%d/__served", dp.ns.IP, port))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	n, err := strconv.Atoi(strings.TrimSpace(string(body)))
	if err != nil {
		t.Fatalf("served count %q: %v", body, err)
	}
	return n
}

func TestTraefikMirrorsABlueGreenSwitchToTheCanaryAndAnswersFromThePrimary(t *testing.T) {
	t.Parallel()
	f := newFixtureOn(t, "traefik-mirror", primaryPort, mirroredCanaryPort)
	g := newGate(t)
	g.close()
	const host = "mirror.example.com"
	// Traefik 3.6's Gateway API provider turns an HTTPRoute RequestMirror
	// filter into an error service ("invalid-httproute-filter"), so
	// mirroring goes through provider traefik's TraefikService.
	f.Create(ingressRoute(f.Name, host))
	f.canary("traefik", sluicev1beta1.CanaryAnalysis{
		Iterations: 2, Mirror: true,
		Webhooks: []sluicev1beta1.CanaryWebhook{{Name: "gate", Type: sluicev1beta1.ConfirmPromotionHook, URL: g.URL}},
	}, nil)
	f.WaitPhase(sluicev1beta1.CanaryPhaseInitialized, time.Minute)
	f.Release("podinfo:2")
	f.WaitFor("the mirror", time.Minute, func(c *sluicev1beta1.Canary) bool {
		return c.Status.Phase == sluicev1beta1.CanaryPhaseProgressing && f.routes(c).Mirror
	})
	// Traefik applies the mirror a moment after the route changes.
	controlplane.Eventually(t, 30*time.Second, "mirrored requests at the canary", func(context.Context) (bool, string) {
		before := served(t, mirroredCanaryPort)
		send(t, dp.traefik, host, 1, nil)
		time.Sleep(200 * time.Millisecond)
		return served(t, mirroredCanaryPort) > before, "no mirrored request yet"
	})
	before := served(t, mirroredCanaryPort)
	if got := send(t, dp.traefik, host, 50, nil); got["primary"] != 50 {
		t.Fatalf("mirrored requests were answered by %v, want all 50 by the primary", got)
	}
	controlplane.Eventually(t, 10*time.Second, "50 mirrored requests at the canary", func(context.Context) (bool, string) {
		n := served(t, mirroredCanaryPort) - before
		return n == 50, fmt.Sprintf("the canary served %d", n)
	})
}

func TestTraefikMovesTrafficBackToThePrimaryInPromotionSteps(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "traefik-promotion")
	g := newGate(t)
	g.close()
	checks := newGate(t)
	const host = "promotion.example.com"
	f.canary("gatewayapi:v1", sluicev1beta1.CanaryAnalysis{
		Interval: "15s", Threshold: 2, StepWeight: 40, MaxWeight: 80, StepWeightPromotion: 30,
		Webhooks: []sluicev1beta1.CanaryWebhook{
			{Name: "gate", Type: sluicev1beta1.ConfirmPromotionHook, URL: g.URL},
			{Name: "checks", Type: sluicev1beta1.RolloutHook, URL: checks.URL},
		},
	}, throughTraefik(host))
	f.WaitPhase(sluicev1beta1.CanaryPhaseInitialized, time.Minute)
	waitServed(t, dp.traefik, host, nil, "primary")
	f.Release("podinfo:2")
	f.WaitEvent("WeightIncreased", time.Minute)
	f.WaitFor("weight 80 and the promotion gate", time.Minute, func(c *sluicev1beta1.Canary) bool { return c.Status.CanaryWeight == 80 })
	f.WaitEvent("WaitingForApproval", time.Minute)

	// Each promotion step holds for an interval: at each weight Traefik
	// splits 100 requests exactly, once it has the route.
	g.open()
	var seen []int
	exact := 0
	controlplane.Eventually(t, 3*time.Minute, "the promotion", func(context.Context) (bool, string) {
		c := f.Canary()
		w := c.Status.CanaryWeight
		if c.Status.Phase == sluicev1beta1.CanaryPhasePromoting && w > 0 && w < 80 && (len(seen) == 0 || seen[len(seen)-1] != w) {
			seen = append(seen, w)
			if got := f.routes(c); got != traffic.Weighted(w) {
				t.Fatalf("at promotion weight %d the route holds %v", w, got)
			}
			deadline := time.Now().Add(10 * time.Second)
			for time.Now().Before(deadline) && f.Canary().Status.CanaryWeight == w {
				if got := send(t, dp.traefik, host, 100, nil); got["canary"] == w && got["primary"] == 100-w {
					exact++
					break
				}
				time.Sleep(500 * time.Millisecond)
			}
		}
		return c.Status.Phase == sluicev1beta1.CanaryPhaseSucceeded, fmt.Sprintf("phase %s weight %d, promotion weights %v", c.Status.Phase, w, seen)
	})
	if len(seen) != 2 || seen[0] != 50 || seen[1] != 20 || exact == 0 {
		t.Fatalf("the promotion went through canary weights %v, %d of them split exactly through Traefik; want [50 20], split", seen, exact)
	}

	// A failing rollout hook fails checks, then rolls back.
	checks.close()
	f.Release("podinfo:3")
	f.WaitEvent("ChecksFailed", 2*time.Minute)
	f.WaitPhase(sluicev1beta1.CanaryPhaseFailed, 2*time.Minute)
}
