package flagger

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
)

// routeHistory is how the Canary's HTTPRoute routed each probe request,
// each time the route changed, as a watch on the API server saw it.
type routeHistory struct {
	mu     sync.Mutex
	probes []request
	splits map[string][]split
}

// followRoute records, from now on, how the HTTPRoute named after the
// Canary's apex Service routes each probe.
func (s *scenario) followRoute(probes ...request) *routeHistory {
	s.T.Helper()
	h := &routeHistory{probes: probes, splits: map[string][]split{}}
	primary, canary := s.canaryName+"-primary", s.canaryName+"-canary"
	watchList(s.T, &gatewayv1.HTTPRouteList{}, s.Name, func(o client.Object) {
		route, ok := o.(*gatewayv1.HTTPRoute)
		if !ok || route.Name != s.canaryName {
			return
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, p := range h.probes {
			sp, ok := routeTo(route, p, primary, canary)
			if !ok {
				// Routed nowhere: a 404, written as 0/0.
				sp = split{}
			}
			h.splits[p.name] = appendChanged(h.splits[p.name], sp)
		}
	})
	return h
}

// of is the splits a probe saw, in order.
func (h *routeHistory) of(probe request) []split {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.splits[probe.name])
}

// waitSplits waits until a probe's splits are want, and fails if they
// went another way: the last route write may land just after the phase.
func (s *scenario) waitSplits(h *routeHistory, probe request, want []split) {
	s.T.Helper()
	eventually(s.T, 10*time.Second, fmt.Sprintf("%s routed %v", probe.name, want), func() (bool, string) {
		got := h.of(probe)
		return slices.Equal(got, want), fmt.Sprintf("%s was routed %v", probe.name, got)
	})
}

// route reads the Canary's HTTPRoute.
func (s *scenario) route() *gatewayv1.HTTPRoute {
	s.T.Helper()
	r := &gatewayv1.HTTPRoute{}
	s.get(r, s.canaryName)
	return r
}

// checkAttachment checks what the route is attached to and for which
// hosts: the Canary's gatewayRefs and hosts, and the Canary's Services on
// its port.
func (s *scenario) checkAttachment() {
	s.T.Helper()
	r := s.route()
	if len(r.Spec.ParentRefs) != 1 || r.Spec.ParentRefs[0].Name != "gateway" || r.Spec.ParentRefs[0].Namespace == nil || *r.Spec.ParentRefs[0].Namespace != "istio-ingress" {
		s.T.Fatalf("the HTTPRoute's parents are %+v, want the Gateway istio-ingress/gateway", r.Spec.ParentRefs)
	}
	if !slices.Equal(r.Spec.Hostnames, []gatewayv1.Hostname{"www.example.com"}) {
		s.T.Fatalf("the HTTPRoute's hostnames are %v, want www.example.com", r.Spec.Hostnames)
	}
	for _, rule := range r.Spec.Rules {
		for _, b := range rule.BackendRefs {
			if b.Port == nil || *b.Port != 9898 {
				s.T.Fatalf("backend %s on port %v, want 9898", b.Name, b.Port)
			}
		}
	}
}

// The probes of the Gateway API scenarios.
var (
	insider       = withHeader("a request with x-canary: insider", "x-canary", "insider")
	outsider      = withHeader("a request with x-canary: outsider", "x-canary", "outsider")
	canaryCookie  = withHeader("a request with the cookie canary=always", "Cookie", "canary=always")
	amongCookies  = withHeader("a request with canary=always among other cookies", "Cookie", "session=42;canary=always")
	neverCookie   = withHeader("a request with the cookie canary=never", "Cookie", "canary=never")
	primaryOnly   = split{primary: 100}
	canaryOnly    = split{canary: 100}
	backToPrimary = []split{primaryOnly, canaryOnly, primaryOnly}
)

// probed is a probe request and the splits it must see, in order, from
// initialization to the end of a release.
type probed struct {
	req  request
	want []split
}

// TestGatewayAPIRoutesEachStrategyAsFlaggerDoes releases podinfo through
// an HTTPRoute with each of Flagger's strategies, as Flagger's
// test/gatewayapi does, and checks at every change of the route where it
// sends requests.
func TestGatewayAPIRoutesEachStrategyAsFlaggerDoes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		ns       string
		manifest string
		routed   []probed
		// weights are the canary weights the status must hold, in order.
		weights []int
		// iterations is the number of iterations, for A/B and blue/green.
		iterations int
	}{
		{
			name: "a canary moves stepWeight of the traffic at each step up to maxWeight, then promotes", ns: "gatewayapi-canary",
			manifest: "gatewayapi-canary.yaml",
			routed:   []probed{{plain, []split{primaryOnly, {75, 25}, {50, 50}, primaryOnly}}},
			weights:  []int{25, 50},
		},
		{
			name: "an A/B test sends the requests with the x-canary header to the canary", ns: "gatewayapi-ab-header",
			manifest:   "gatewayapi-ab-header.yaml",
			routed:     []probed{{plain, []split{primaryOnly}}, {insider, backToPrimary}, {outsider, []split{primaryOnly}}},
			iterations: 2,
		},
		{
			name: "an A/B test sends the requests with the canary cookie to the canary", ns: "gatewayapi-ab-cookie",
			manifest: "gatewayapi-ab-cookie.yaml",
			routed: []probed{
				{plain, []split{primaryOnly}}, {canaryCookie, backToPrimary}, {amongCookies, backToPrimary}, {neverCookie, []split{primaryOnly}},
			},
			iterations: 2,
		},
		{
			name: "a blue/green switch moves all traffic to the canary after the iterations, then to the promoted primary", ns: "gatewayapi-bluegreen",
			manifest:   "gatewayapi-blue-green.yaml",
			routed:     []probed{{plain, backToPrimary}},
			iterations: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newScenario(t, tt.ns, "podinfo")
			s.apply("podinfo-deployment.yaml", tt.manifest)
			s.waitPhase(initialized, time.Minute)
			var probes []request
			for _, p := range tt.routed {
				probes = append(probes, p.req)
			}
			routes := s.followRoute(probes...)
			s.checkAttachment()
			if got := s.selector("podinfo"); !maps.Equal(got, map[string]string{"app": "podinfo-primary"}) {
				t.Fatalf("the apex Service selects %v, want the primary's pods", got)
			}

			release := s.history.mark()
			s.release("Deployment", podinfo601)
			s.waitPhase(succeeded, 2*time.Minute)
			for _, p := range tt.routed {
				s.waitSplits(routes, p.req, p.want)
			}
			s.checkPhases(release, promoted)
			if got := positive(s.history.weightsSince(release.weights)); tt.weights != nil && !slices.Equal(got, tt.weights) {
				t.Errorf("the canary weight went %v, want %v", got, tt.weights)
			}
			if tt.iterations > 0 {
				if got := positive(s.history.iterationsSince(release.iterations)); len(got) < tt.iterations || got[tt.iterations-1] != tt.iterations {
					t.Errorf("iterations went %v, want one a step up to %d", got, tt.iterations)
				}
			}
			if img := s.image("Deployment", "podinfo-primary"); img != podinfo601 {
				t.Fatalf("the primary runs %s after the promotion", img)
			}
			if got := s.replicas("podinfo"); got != 0 {
				t.Fatalf("the canary has %d replicas after the promotion", got)
			}
			// The manifest's load test, once per analysed step.
			if got := s.loadTester.tasks("cmd"); len(got) == 0 || !strings.HasPrefix(got[0], "hey -z 2m") {
				t.Errorf("load tests %q", got)
			}
		})
	}
}

func TestSessionAffinityKeepsUsersWhoReachedTheCanaryOnItUntilThePromotionExpiresTheirCookie(t *testing.T) {
	t.Parallel()
	s := newScenario(t, "gatewayapi-affinity", "podinfo")
	s.apply("podinfo-deployment.yaml", "gatewayapi-session-affinity.yaml")
	s.waitPhase(initialized, time.Minute)
	s.release("Deployment", podinfo601)

	c := s.waitFor("weight 25", time.Minute, func(c *sluicev1beta1.Canary) bool { return c.Status.CanaryWeight == 25 })
	cookie := c.Status.SessionAffinityCookie
	if !strings.HasPrefix(cookie, "flagger-cookie=") || len(cookie) <= len("flagger-cookie=") {
		t.Fatalf("status.sessionAffinityCookie is %q, want flagger-cookie=<value>", cookie)
	}
	primary, canary := "podinfo-primary", "podinfo-canary"
	withCookie := withHeader("a request with the affinity cookie", "Cookie", cookie)
	withCookies := withHeader("a request with the affinity cookie among others", "Cookie", "session=42; "+cookie)
	// Until the route carries the weight, it carries nothing to check.
	eventually(t, 30*time.Second, "the route at weight 25", func() (bool, string) {
		sp, _ := routeTo(s.route(), plain, primary, canary)
		return sp == split{75, 25}, fmt.Sprintf("plain requests routed %v", sp)
	})
	r := s.route()
	for _, req := range []request{withCookie, withCookies} {
		if sp, _ := routeTo(r, req, primary, canary); sp != canaryOnly {
			t.Fatalf("%s is routed %v, want all to the canary", req.name, sp)
		}
	}
	// The canary's answers hand the cookie out for maxAge; the primary's
	// do not.
	want := cookie + "; Max-Age=21600"
	if got := setCookies(r, plain, canary); !slices.ContainsFunc(got, func(v string) bool { return strings.HasPrefix(v, want) }) {
		t.Fatalf("the canary's answers set cookies %q, want %q", got, want)
	}
	if got := setCookies(r, plain, primary); slices.ContainsFunc(got, func(v string) bool { return strings.HasPrefix(v, cookie) }) {
		t.Fatalf("the primary's answers set the canary cookie: %q", got)
	}

	// The cookie stays the same at the next step.
	c = s.waitFor("weight 50", time.Minute, func(c *sluicev1beta1.Canary) bool { return c.Status.CanaryWeight == 50 })
	if c.Status.SessionAffinityCookie != cookie {
		t.Fatalf("the cookie changed from %q to %q between steps", cookie, c.Status.SessionAffinityCookie)
	}

	// After the promotion the cookie is the previous one, and an answer to
	// a request that carries it expires it.
	c = s.waitPhase(succeeded, time.Minute)
	if c.Status.SessionAffinityCookie != "" || c.Status.PreviousSessionAffinityCookie != cookie {
		t.Fatalf("after the promotion the cookie is %q and the previous one %q, want none and %q",
			c.Status.SessionAffinityCookie, c.Status.PreviousSessionAffinityCookie, cookie)
	}
	eventually(t, 10*time.Second, "the route back on the primary", func() (bool, string) {
		r := s.route()
		old, _ := routeTo(r, withCookie, primary, canary)
		other, _ := routeTo(r, plain, primary, canary)
		return old == primaryOnly && other == primaryOnly, fmt.Sprintf("requests with the old cookie routed %v, others %v", old, other)
	})
	expire := cookie + "; Max-Age=-1"
	if got := setCookies(s.route(), withCookie, primary); !slices.ContainsFunc(got, func(v string) bool { return strings.HasPrefix(v, expire) }) {
		t.Fatalf("an answer to a request with the old cookie sets %q, want %q", got, expire)
	}
	if img := s.image("Deployment", "podinfo-primary"); img != podinfo601 {
		t.Fatalf("the primary runs %s after the promotion", img)
	}
}
