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

// +kubebuilder:rbac:groups=traefik.io,resources=traefikservices,verbs=get;list;watch;create;update;patch;delete

// Traefik routes with a TraefikService named after the apex Service
// (provider traefik), which the user's IngressRoute uses as its service. It
// is weighted between the primary and canary Services, or, while traffic is
// mirrored, sends everything to the primary and copies a share to the
// canary.
type Traefik struct{ Deps }

// Capabilities are weights and mirroring with a percentage.
func (t *Traefik) Capabilities() traffic.Capabilities {
	return traffic.Capabilities{Weights: true, Mirror: true, MirrorWeight: true}
}

// GoldenSignals use Traefik's service metrics of the canary Service.
func (t *Traefik) GoldenSignals() traffic.GoldenSignals {
	const sel = `service=~"{{ namespace }}-{{ service }}-canary-[0-9]+@kubernetescrd"`
	return traffic.GoldenSignals{
		SuccessRate: `sum(rate(traefik_service_requests_total{` + sel + `, code!~"5.."}[{{ interval }}]))
/ sum(rate(traefik_service_requests_total{` + sel + `}[{{ interval }}])) * 100`,
		Duration: `histogram_quantile(0.99, sum(rate(traefik_service_request_duration_seconds_bucket{` + sel + `}[{{ interval }}])) by (le)) * 1000`,
	}
}

func traefikService(c *sluicev1beta1.Canary) *unstructured.Unstructured {
	apex, _, _ := ServiceNames(c)
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("traefik.io/v1alpha1")
	u.SetKind("TraefikService")
	u.SetNamespace(c.Namespace)
	u.SetName(apex)
	return u
}

// Initialize needs nothing before the primary takes traffic.
func (t *Traefik) Initialize(context.Context, *sluicev1beta1.Canary) error { return nil }

// Reconcile creates or updates the TraefikService, keeping its split.
func (t *Traefik) Reconcile(ctx context.Context, c *sluicev1beta1.Canary) error {
	return t.write(ctx, c, keepSplit())
}

// SetRoutes writes the split into the TraefikService.
func (t *Traefik) SetRoutes(ctx context.Context, c *sluicev1beta1.Canary, r traffic.Routes) error {
	return t.write(ctx, c, setSplit(r))
}

func (t *Traefik) write(ctx context.Context, c *sluicev1beta1.Canary, sp split) error {
	_, primary, canary := ServiceNames(c)
	port := int64(c.Spec.Service.Port)
	ts := traefikService(c)
	return t.ensureGenerated(ctx, c, ts, func() error {
		r, err := sp.of(ts, func() (traffic.Routes, error) { return traefikSplit(c, ts), nil })
		if err != nil {
			return err
		}
		var spec map[string]any
		if r.Mirror {
			percent := int64(100)
			if r.MirrorWeight > 0 {
				percent = int64(r.MirrorWeight)
			}
			spec = map[string]any{"mirroring": map[string]any{
				"name": primary, "port": port,
				"mirrors": []any{map[string]any{"name": canary, "port": port, "percent": percent}},
			}}
		} else {
			spec = map[string]any{"weighted": map[string]any{"services": []any{
				map[string]any{"name": primary, "port": port, "weight": int64(r.Primary)},
				map[string]any{"name": canary, "port": port, "weight": int64(r.Canary)},
			}}}
		}
		ts.Object["spec"] = spec
		return nil
	})
}

// Routes reads the split from the TraefikService.
func (t *Traefik) Routes(ctx context.Context, c *sluicev1beta1.Canary) (traffic.Routes, error) {
	ts := traefikService(c)
	if err := t.Client.Get(ctx, client.ObjectKeyFromObject(ts), ts); apierrors.IsNotFound(err) {
		return traffic.PrimaryOnly(), nil
	} else if err != nil {
		return traffic.Routes{}, fmt.Errorf("get TraefikService %s: %w", ts.GetName(), err)
	}
	return traefikSplit(c, ts), nil
}

// traefikSplit is the split a TraefikService holds.
func traefikSplit(c *sluicev1beta1.Canary, ts *unstructured.Unstructured) traffic.Routes {
	_, primary, canary := ServiceNames(c)
	if mirrors, ok, _ := unstructured.NestedSlice(ts.Object, "spec", "mirroring", "mirrors"); ok {
		r := traffic.Routes{Primary: 100, Mirror: true}
		for _, m := range mirrors {
			if mm, ok := m.(map[string]any); ok && mm["name"] == canary {
				if p, ok := mm["percent"].(int64); ok && p < 100 {
					r.MirrorWeight = int(p)
				}
			}
		}
		return r
	}
	services, _, _ := unstructured.NestedSlice(ts.Object, "spec", "weighted", "services")
	var r traffic.Routes
	for _, s := range services {
		sm, ok := s.(map[string]any)
		if !ok {
			continue
		}
		w, _ := sm["weight"].(int64)
		switch sm["name"] {
		case primary:
			r.Primary = int(w)
		case canary:
			r.Canary = int(w)
		}
	}
	return r
}

// Finalize points the TraefikService at the apex Service and releases it,
// so that the IngressRoutes using it keep working after the Canary.
func (t *Traefik) Finalize(ctx context.Context, c *sluicev1beta1.Canary) error {
	ts := traefikService(c)
	if err := t.Client.Get(ctx, client.ObjectKeyFromObject(ts), ts); apierrors.IsNotFound(err) {
		return nil
	} else if err != nil {
		return fmt.Errorf("get TraefikService %s: %w", ts.GetName(), err)
	}
	apex, _, _ := ServiceNames(c)
	return t.patch(ctx, ts, func() error {
		ts.Object["spec"] = map[string]any{"weighted": map[string]any{"services": []any{
			map[string]any{"name": apex, "port": int64(c.Spec.Service.Port), "weight": int64(100)},
		}}}
		release(ts, c)
		return nil
	})
}
