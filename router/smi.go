package router

import (
	"context"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/traffic"
)

// +kubebuilder:rbac:groups=split.smi-spec.io,resources=trafficsplits,verbs=get;list;watch;create;update;patch;delete

// SMI routes with a Service Mesh Interface TrafficSplit named after the
// apex Service, which the mesh (Linkerd, OSM) splits between the primary
// and canary Services (providers linkerd, osm, smi:v1alpha1,
// smi:v1alpha2 and smi:v1alpha3), in the split.smi-spec.io version the provider names.
type SMI struct{ objectRouter }

func newSMI(d Deps, version string) *SMI {
	return &SMI{objectRouter{
		Deps: d, apiVersion: "split.smi-spec.io/" + version, kind: "TrafficSplit",
		spec: func(_ context.Context, c *sluicev1beta1.Canary, r traffic.Routes) (map[string]any, error) {
			apex, primary, canary := ServiceNames(c)
			weight := func(w int) any { return int64(w) }
			if version == "v1alpha1" {
				// A quantity in v1alpha1, as Flagger writes it: "60".
				weight = func(w int) any { return resource.NewQuantity(int64(w), resource.DecimalSI).String() }
			}
			return map[string]any{
				"service": apex,
				"backends": []any{
					map[string]any{"service": primary, "weight": weight(r.Primary)},
					map[string]any{"service": canary, "weight": weight(r.Canary)},
				},
			}, nil
		},
		split: func(c *sluicev1beta1.Canary, ts *unstructured.Unstructured) traffic.Routes {
			backends, _, _ := unstructured.NestedSlice(ts.Object, "spec", "backends")
			return weightsBy(c, backends, "service")
		},
		// Without the TrafficSplit the mesh sends the apex Service's
		// traffic to its own endpoints, the target's again.
		apexSpec: nil,
	}}
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
