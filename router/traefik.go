package router

import (
	"context"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/traffic"
)

// +kubebuilder:rbac:groups=traefik.io,resources=traefikservices,verbs=get;list;watch;create;update;patch;delete

// Traefik routes with a TraefikService named after the apex Service
// (provider traefik), which the user's IngressRoute uses as its service. It
// is weighted between the primary and canary Services, or, while traffic is
// mirrored, sends everything to the primary and copies a share to the
// canary.
type Traefik struct{ objectRouter }

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

func newTraefik(d Deps) *Traefik {
	return &Traefik{objectRouter{
		Deps: d, apiVersion: "traefik.io/v1alpha1", kind: "TraefikService",
		spec: traefikSpec, split: traefikSplit,
		apexSpec: func(c *sluicev1beta1.Canary) map[string]any {
			apex, _, _ := ServiceNames(c)
			return map[string]any{"weighted": map[string]any{"services": []any{
				map[string]any{"name": apex, "port": int64(c.Spec.Service.Port), "weight": int64(100)},
			}}}
		},
	}}
}

// traefikSpec weights the primary and canary Services, or, while traffic
// is mirrored, sends everything to the primary and copies a share to the
// canary.
func traefikSpec(_ context.Context, c *sluicev1beta1.Canary, r traffic.Routes) (map[string]any, error) {
	_, primary, canary := ServiceNames(c)
	port := int64(c.Spec.Service.Port)
	if r.Mirror {
		percent := int64(100)
		if r.MirrorWeight > 0 {
			percent = int64(r.MirrorWeight)
		}
		return map[string]any{"mirroring": map[string]any{
			"name": primary, "port": port,
			"mirrors": []any{map[string]any{"name": canary, "port": port, "percent": percent}},
		}}, nil
	}
	return map[string]any{"weighted": map[string]any{"services": []any{
		map[string]any{"name": primary, "port": port, "weight": int64(r.Primary)},
		map[string]any{"name": canary, "port": port, "weight": int64(r.Canary)},
	}}}, nil
}

// traefikSplit is the split a TraefikService holds.
func traefikSplit(c *sluicev1beta1.Canary, ts *unstructured.Unstructured) traffic.Routes {
	_, _, canary := ServiceNames(c)
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
	return weightsBy(c, services, "name")
}
