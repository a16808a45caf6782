package router

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/traffic"
)

// +kubebuilder:rbac:groups=split.smi-spec.io,resources=trafficsplits,verbs=get;list;watch;create;update;patch;delete

// SMI routes with a Service Mesh Interface TrafficSplit named after the
// apex Service, which the mesh (Linkerd, OSM) splits between the primary
// and canary Services (providers linkerd, osm, smi:v1alpha2 and
// smi:v1alpha3). Version is the split.smi-spec.io version written.
type SMI struct {
	Deps
	Version string
}

// Capabilities are weights.
func (s *SMI) Capabilities() traffic.Capabilities { return traffic.Capabilities{Weights: true} }

// GoldenSignals use the Linkerd proxy's inbound metrics of the canary.
func (s *SMI) GoldenSignals() traffic.GoldenSignals {
	const sel = `namespace="{{ namespace }}", deployment=~"{{ target }}", direction="inbound"`
	return traffic.GoldenSignals{
		SuccessRate: `sum(rate(response_total{` + sel + `, classification!="failure"}[{{ interval }}]))
/ sum(rate(response_total{` + sel + `}[{{ interval }}])) * 100`,
		Duration: `histogram_quantile(0.99, sum(rate(response_latency_ms_bucket{` + sel + `}[{{ interval }}])) by (le))`,
	}
}

func (s *SMI) trafficSplit(c *sluicev1beta1.Canary) *unstructured.Unstructured {
	apex, _, _ := ServiceNames(c)
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("split.smi-spec.io/" + s.Version)
	u.SetKind("TrafficSplit")
	u.SetNamespace(c.Namespace)
	u.SetName(apex)
	return u
}

// Initialize needs nothing before the primary takes traffic.
func (s *SMI) Initialize(context.Context, *sluicev1beta1.Canary) error { return nil }

// Reconcile creates or updates the TrafficSplit, keeping its split.
func (s *SMI) Reconcile(ctx context.Context, c *sluicev1beta1.Canary) error {
	return s.write(ctx, c, keepSplit())
}

// SetRoutes writes the split into the TrafficSplit.
func (s *SMI) SetRoutes(ctx context.Context, c *sluicev1beta1.Canary, r traffic.Routes) error {
	return s.write(ctx, c, setSplit(r))
}

func (s *SMI) write(ctx context.Context, c *sluicev1beta1.Canary, sp split) error {
	apex, primary, canary := ServiceNames(c)
	ts := s.trafficSplit(c)
	return s.ensureGenerated(ctx, c, ts, func() error {
		r, err := sp.of(ts, func() (traffic.Routes, error) { return smiSplit(c, ts), nil })
		if err != nil {
			return err
		}
		ts.Object["spec"] = map[string]any{
			"service": apex,
			"backends": []any{
				map[string]any{"service": primary, "weight": int64(r.Primary)},
				map[string]any{"service": canary, "weight": int64(r.Canary)},
			},
		}
		return nil
	})
}

// Routes reads the split from the TrafficSplit.
func (s *SMI) Routes(ctx context.Context, c *sluicev1beta1.Canary) (traffic.Routes, error) {
	ts := s.trafficSplit(c)
	if err := s.Client.Get(ctx, client.ObjectKeyFromObject(ts), ts); apierrors.IsNotFound(err) {
		return traffic.PrimaryOnly(), nil
	} else if err != nil {
		return traffic.Routes{}, fmt.Errorf("get TrafficSplit %s: %w", ts.GetName(), err)
	}
	return smiSplit(c, ts), nil
}

// smiSplit is the split a TrafficSplit holds.
func smiSplit(c *sluicev1beta1.Canary, ts *unstructured.Unstructured) traffic.Routes {
	_, primary, canary := ServiceNames(c)
	backends, _, _ := unstructured.NestedSlice(ts.Object, "spec", "backends")
	var r traffic.Routes
	for _, b := range backends {
		bm, ok := b.(map[string]any)
		if !ok {
			continue
		}
		w, _ := bm["weight"].(int64)
		switch bm["service"] {
		case primary:
			r.Primary = int(w)
		case canary:
			r.Canary = int(w)
		}
	}
	return r
}

// Finalize deletes the TrafficSplit: without it the mesh sends the apex
// Service's traffic to its own endpoints, the target's again.
func (s *SMI) Finalize(ctx context.Context, c *sluicev1beta1.Canary) error {
	if err := s.Client.Delete(ctx, s.trafficSplit(c)); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete TrafficSplit: %w", err)
	}
	return nil
}
