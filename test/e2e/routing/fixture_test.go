package routing

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/go-logr/logr/testr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/operator"
	"sluice.dev/sluice/pkg/traffic"
	"sluice.dev/sluice/router"
	"sluice.dev/sluice/test/e2e/fixture"
	"sluice.dev/sluice/test/inprocess"
)

// gate is a webhook that answers 200 while open and 403 once closed.
type gate struct {
	*httptest.Server
	mu     sync.Mutex
	closed bool
	calls  int
}

func newGate(t *testing.T) *gate {
	g := &gate{}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		g.mu.Lock()
		defer g.mu.Unlock()
		g.calls++
		if g.closed {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(g.Close)
	return g
}

func (g *gate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
}

func (g *gate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = false
}

// routed is a namespace with a Deployment to release, published
// Services, and an in-process operator.
type routed struct {
	*fixture.Namespace
}

// newFixture creates the namespace, the target Deployment and the
// EndpointSlices of the Canary's three Services, and starts the operator.
func newFixture(t *testing.T, ns string) *routed {
	t.Helper()
	return newFixtureOn(t, ns, primaryPort, canaryPort)
}

// newFixtureOn is newFixture with the primary's and the canary's Services
// published on the given backend ports, and the operator configured.
func newFixtureOn(t *testing.T, ns string, primary, canary int32, configure ...func(*operator.Options)) *routed {
	t.Helper()
	f := &routed{Namespace: fixture.New(t, cp.Client, ns)}
	publish(t, ns, "podinfo", primary)
	publish(t, ns, "podinfo-primary", primary)
	publish(t, ns, "podinfo-canary", canary)
	inprocess.Start(t, cp.Config, ns, testr.NewWithOptions(t, testr.Options{Verbosity: 0}), configure...)
	return f
}

// canary is a Canary of the fixture's Deployment on port 80.
func (f *routed) canary(provider sluicev1beta1.Provider, analysis sluicev1beta1.CanaryAnalysis, change func(*sluicev1beta1.Canary)) *sluicev1beta1.Canary {
	if analysis.Interval == "" {
		analysis.Interval = "10s"
	}
	c := &sluicev1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: f.Name},
		Spec: sluicev1beta1.CanarySpec{
			Provider:  provider,
			TargetRef: sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"},
			Service:   sluicev1beta1.CanaryService{Port: 80, TargetPort: intstr.FromString("http")},
			Analysis:  &analysis,
		},
	}
	if change != nil {
		change(c)
	}
	f.Create(c)
	return c
}

// routes reads the split from the objects the Canary's router wrote.
func (f *routed) routes(c *sluicev1beta1.Canary) traffic.Routes {
	f.T.Helper()
	r, err := router.New(c.Spec.Provider, router.Deps{Client: cp.Client, Scheme: cp.Scheme})
	if err != nil {
		f.T.Fatal(err)
	}
	routes, err := r.Routes(f.T.Context(), c)
	if err != nil {
		f.T.Fatal(err)
	}
	return routes
}
