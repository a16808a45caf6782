package router

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/traffic"
)

// +kubebuilder:rbac:groups=kuma.io,resources=trafficroutes,verbs=get;list;watch;create;update;patch;delete

// kumaMeshAnnotation on a Canary names the Kuma mesh of its TrafficRoute,
// as in Flagger; default is "default".
const kumaMeshAnnotation = "kuma.io/mesh"

// Kuma routes with a Kuma TrafficRoute (provider kuma), as Flagger does:
// cluster-scoped, named after the apex Service, in the mesh of the
// Canary's kuma.io/mesh annotation, sending every source's traffic for the
// apex service (<apex>_<namespace>_svc_<port>) to the primary's and the
// canary's by weight. Being cluster-scoped it cannot be owned by the
// Canary: it is labelled with the Canary's namespace and name, and
// deleted when the Canary goes.
type Kuma struct{ objectRouter }

func newKuma(d Deps) *Kuma {
	return &Kuma{objectRouter{
		Deps: d, apiVersion: "kuma.io/v1alpha1", kind: "TrafficRoute", clusterScoped: true,
		spec: kumaSpec,
		top: func(c *sluicev1beta1.Canary) map[string]any {
			mesh := c.Annotations[kumaMeshAnnotation]
			if mesh == "" {
				mesh = "default"
			}
			return map[string]any{"mesh": mesh}
		},
		split: func(c *sluicev1beta1.Canary, tr *unstructured.Unstructured) traffic.Routes {
			splits, _, _ := unstructured.NestedSlice(tr.Object, "spec", "conf", "split")
			backends := make([]any, 0, len(splits))
			for _, s := range splits {
				sm, ok := s.(map[string]any)
				if !ok {
					continue
				}
				service, _, _ := unstructured.NestedString(sm, "destination", "kuma.io/service")
				backends = append(backends, map[string]any{"service": kumaServiceOwner(c, service), "weight": sm["weight"]})
			}
			return weightsBy(c, backends, "service")
		},
		// Without the TrafficRoute Kuma routes the apex service to its own
		// endpoints, the target's again.
		apexSpec: nil,
	}}
}

// Capabilities are weights.
func (k *Kuma) Capabilities() traffic.Capabilities { return traffic.Capabilities{Weights: true} }

// GoldenSignals use the Envoy metrics of the canary's data plane proxies,
// which Kuma's Prometheus discovery labels with their service,
// <name>_<namespace>_svc_<port>.
func (k *Kuma) GoldenSignals() traffic.GoldenSignals {
	const sel = `service=~"{{ service }}-canary_{{ namespace }}_svc_[0-9]+"`
	return traffic.GoldenSignals{
		SuccessRate: `sum(rate(envoy_cluster_upstream_rq{` + sel + `, envoy_response_code!~"5.*"}[{{ interval }}]))
/ sum(rate(envoy_cluster_upstream_rq{` + sel + `}[{{ interval }}])) * 100`,
		// Envoy's request time histogram is in milliseconds already.
		Duration: `histogram_quantile(0.99, sum(rate(envoy_cluster_upstream_rq_time_bucket{` + sel + `}[{{ interval }}])) by (le))`,
	}
}

// kumaService is Kuma's name of a Kubernetes Service's port.
func kumaService(c *sluicev1beta1.Canary, service string) string {
	return fmt.Sprintf("%s_%s_svc_%d", service, c.Namespace, c.Spec.Service.Port)
}

// kumaServiceOwner is the Kubernetes Service of a Kuma service name of
// the Canary's, or "" for another.
func kumaServiceOwner(c *sluicev1beta1.Canary, kuma string) string {
	apex, primary, canary := ServiceNames(c)
	for _, s := range []string{apex, primary, canary} {
		if kuma == kumaService(c, s) {
			return s
		}
	}
	return ""
}

func kumaSpec(_ context.Context, c *sluicev1beta1.Canary, r traffic.Routes) (map[string]any, error) {
	apex, primary, canary := ServiceNames(c)
	return map[string]any{
		"sources":      []any{map[string]any{"match": map[string]any{"kuma.io/service": "*"}}},
		"destinations": []any{map[string]any{"match": map[string]any{"kuma.io/service": kumaService(c, apex)}}},
		"conf": map[string]any{"split": []any{
			map[string]any{"weight": int64(r.Primary), "destination": map[string]any{"kuma.io/service": kumaService(c, primary)}},
			map[string]any{"weight": int64(r.Canary), "destination": map[string]any{"kuma.io/service": kumaService(c, canary)}},
		}},
	}, nil
}
