// Package router adapts Canaries to the user's mesh or ingress. A Router
// moves traffic between a Canary's primary and canary; each adapter lives
// in its own file, declares what it can do in its Capabilities, and is
// listed in the registry under the provider names it serves.
package router

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/traffic"
)

// Router moves traffic between a Canary's primary and canary. Its methods
// are idempotent and write only when something differs.
type Router interface {
	// Capabilities says what the router can do with traffic.
	Capabilities() traffic.Capabilities
	// Initialize creates what must exist before the primary takes
	// traffic, such as the -primary and -canary Services.
	Initialize(ctx context.Context, c *sluicev1beta1.Canary) error
	// Reconcile points production traffic at the primary and keeps the
	// routing objects as the Canary describes them.
	Reconcile(ctx context.Context, c *sluicev1beta1.Canary) error
	// SetRoutes changes the traffic split.
	SetRoutes(ctx context.Context, c *sluicev1beta1.Canary, r traffic.Routes) error
	// Routes reports the traffic split in force.
	Routes(ctx context.Context, c *sluicev1beta1.Canary) (traffic.Routes, error)
	// Finalize points traffic back at the target for the Canary's
	// deletion.
	Finalize(ctx context.Context, c *sluicev1beta1.Canary) error
	// GoldenSignals are the queries of the built-in metrics on the series
	// this router's proxy exports.
	GoldenSignals() traffic.GoldenSignals
}

// Deps are what routers are built with.
type Deps struct {
	// Client reads from the informer cache and writes to the API server.
	Client client.Client
	// Scheme resolves the kinds of owner references.
	Scheme *runtime.Scheme
	// IngressAnnotationsPrefix is the prefix of the NGINX ingress canary
	// annotations; empty means nginx.ingress.kubernetes.io.
	IngressAnnotationsPrefix string
}

// routers maps provider names to the routers that serve them. Adding a
// router adds one line here. Every router but kubernetes routes to the
// apex, primary and canary Services, which withServices keeps.
func routers() map[sluicev1beta1.Provider]func(Deps) Router {
	return map[sluicev1beta1.Provider]func(Deps) Router{
		"kubernetes":         func(d Deps) Router { return &Kubernetes{Services: Services(d)} },
		"gatewayapi:v1":      func(d Deps) Router { return withServices(d, &Gateway{d}) },
		"gatewayapi:v1beta1": func(d Deps) Router { return withServices(d, &Gateway{d}) },
		"istio":              func(d Deps) Router { return withServices(d, &Istio{d}) },
		"nginx":              func(d Deps) Router { return withServices(d, &NGINX{d}) },
		"skipper":            func(d Deps) Router { return withServices(d, &Skipper{d}) },
		"traefik":            func(d Deps) Router { return withServices(d, newTraefik(d)) },
		"contour":            func(d Deps) Router { return withServices(d, newContour(d)) },
		"gloo":               func(d Deps) Router { return withServices(d, newGloo(d)) },
		"kuma":               func(d Deps) Router { return withServices(d, newKuma(d)) },
		"apisix":             func(d Deps) Router { return withServices(d, newAPISIX(d)) },
		"appmesh:v1beta2":    func(d Deps) Router { return withServices(d, newAppMesh(d)) },
		"appmesh":            func(d Deps) Router { return withServices(d, newAppMeshLegacy(d)) },
		"linkerd":            func(d Deps) Router { return withServices(d, newSMI(d, "v1alpha2")) },
		"osm":                func(d Deps) Router { return withServices(d, newSMI(d, "v1alpha2")) },
		"smi:v1alpha1":       func(d Deps) Router { return withServices(d, newSMI(d, "v1alpha1")) },
		"smi:v1alpha2":       func(d Deps) Router { return withServices(d, newSMI(d, "v1alpha2")) },
		"smi:v1alpha3":       func(d Deps) Router { return withServices(d, newSMI(d, "v1alpha3")) },
		"knative":            newKnative,
	}
}

// servicesAnd runs a router together with the Kubernetes Services it
// routes to: the Services first on the way in, last on the way out.
type servicesAnd struct {
	Router
	services Services
}

func withServices(d Deps, r Router) Router { return &servicesAnd{Router: r, services: Services(d)} }

func (s *servicesAnd) Initialize(ctx context.Context, c *sluicev1beta1.Canary) error {
	if err := s.services.Initialize(ctx, c); err != nil {
		return err
	}
	return s.Router.Initialize(ctx, c)
}

func (s *servicesAnd) Reconcile(ctx context.Context, c *sluicev1beta1.Canary) error {
	if err := s.services.TakeOver(ctx, c); err != nil {
		return err
	}
	return s.Router.Reconcile(ctx, c)
}

func (s *servicesAnd) Finalize(ctx context.Context, c *sluicev1beta1.Canary) error {
	if err := s.Router.Finalize(ctx, c); err != nil {
		return err
	}
	return s.services.Finalize(ctx, c)
}

// New returns the router for a provider. A provider without a router is an
// error that names it, never a silent fallback to another.
func New(provider sluicev1beta1.Provider, d Deps) (Router, error) {
	newRouter, ok := routers()[provider]
	if !ok {
		return nil, fmt.Errorf("provider %q has no router in this version of Sluice; available: %v", provider, Available())
	}
	return newRouter(d), nil
}

// Available lists the providers that have a router.
func Available() []sluicev1beta1.Provider {
	var out []sluicev1beta1.Provider
	for p := range routers() {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// sortedKeys returns a map's keys in order, for stable output.
func sortedKeys[V any](m map[string]V) []string {
	return slices.SortedFunc(maps.Keys(m), cmp.Compare[string])
}

// parseDuration parses a Go duration; empty is zero.
func parseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	return time.ParseDuration(s)
}
