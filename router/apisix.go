package router

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/traffic"
)

// +kubebuilder:rbac:groups=apisix.apache.org,resources=apisixroutes,verbs=get;list;watch;create;update;patch;delete

// apisixPriority puts the canary route before the user's, as Flagger does.
const apisixPriority = 10000

// APISIX routes with Apache APISIX (provider apisix), as Flagger does: the
// ApisixRoute named by spec.routeRef stays as the user wrote it, sending
// traffic to the apex Service, and its clone <route>-<apex>-canary, at a
// higher priority, splits the same requests between the primary and
// canary Services. Only the rules whose backend is the apex Service are
// cloned. The clone is deleted with the Canary, and the user's route takes
// the traffic again.
type APISIX struct{ objectRouter }

func newAPISIX(d Deps) *APISIX {
	a := &APISIX{}
	a.objectRouter = objectRouter{
		Deps: d, apiVersion: "apisix.apache.org/v2", kind: "ApisixRoute",
		name:  apisixCanaryRoute,
		spec:  a.spec,
		split: apisixSplit,
		// The user's route serves again without the clone.
		apexSpec: nil,
	}
	return a
}

// Capabilities are weights.
func (a *APISIX) Capabilities() traffic.Capabilities { return traffic.Capabilities{Weights: true} }

// GoldenSignals use APISIX's prometheus plugin metrics of the canary
// route, which the ingress controller names
// <namespace>_<ApisixRoute>_<rule>.
func (a *APISIX) GoldenSignals() traffic.GoldenSignals {
	const route = `route=~"{{ namespace }}_{{ route }}-{{ service }}-canary_.+"`
	return traffic.GoldenSignals{
		SuccessRate: `sum(rate(apisix_http_status{` + route + `, code!~"5.."}[{{ interval }}]))
/ sum(rate(apisix_http_status{` + route + `}[{{ interval }}])) * 100`,
		// APISIX's latency histogram is in milliseconds already.
		Duration: `histogram_quantile(0.99, sum(rate(apisix_http_latency_bucket{type="request", ` + route + `}[{{ interval }}])) by (le))`,
	}
}

// errNoRouteRef is a Canary of provider apisix without spec.routeRef.
var errNoRouteRef = &SpecError{Field: "spec.routeRef", Err: errors.New("provider apisix needs the ApisixRoute to split")}

func apisixCanaryRoute(c *sluicev1beta1.Canary) string {
	apex, _, _ := ServiceNames(c)
	if c.Spec.RouteRef == nil {
		return apex + "-canary"
	}
	return fmt.Sprintf("%s-%s-canary", c.Spec.RouteRef.Name, apex)
}

// spec is the user's route with each rule that sends to the apex Service
// weighted between the primary and canary Services, first.
func (a *APISIX) spec(ctx context.Context, c *sluicev1beta1.Canary, r traffic.Routes) (map[string]any, error) {
	ref := c.Spec.RouteRef
	if ref == nil {
		return nil, errNoRouteRef
	}
	src := &unstructured.Unstructured{}
	src.SetAPIVersion("apisix.apache.org/v2")
	src.SetKind("ApisixRoute")
	if err := a.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: ref.Name}, src); err != nil {
		return nil, missingRef("spec.routeRef", "ApisixRoute "+ref.Name, err)
	}
	apex, primary, canary := ServiceNames(c)
	spec, _, _ := unstructured.NestedMap(src.Object, "spec")
	rules, _, _ := unstructured.NestedSlice(spec, "http")
	var out []any
	for _, rule := range rules {
		rm, ok := rule.(map[string]any)
		if !ok {
			continue
		}
		backends, _, _ := unstructured.NestedSlice(rm, "backends")
		if len(backends) != 1 {
			continue
		}
		b, _ := backends[0].(map[string]any)
		if b["serviceName"] != apex {
			continue
		}
		weighted := func(service string, weight int) map[string]any {
			out := map[string]any{}
			for k, v := range b {
				out[k] = v
			}
			out["serviceName"], out["weight"] = service, int64(weight)
			return out
		}
		rm["priority"] = int64(apisixPriority)
		rm["backends"] = []any{weighted(primary, r.Primary), weighted(canary, r.Canary)}
		out = append(out, rm)
	}
	if len(out) == 0 {
		return nil, specError("spec.routeRef", "no rule of ApisixRoute %s has the apex Service %s as its only backend", ref.Name, apex)
	}
	spec["http"] = out
	// Stream routes go to the apex as the user wrote them.
	delete(spec, "stream")
	return spec, nil
}

// apisixSplit reads the split from the first rule of the canary route.
func apisixSplit(c *sluicev1beta1.Canary, route *unstructured.Unstructured) traffic.Routes {
	rules, _, _ := unstructured.NestedSlice(route.Object, "spec", "http")
	if len(rules) == 0 {
		return traffic.PrimaryOnly()
	}
	rm, _ := rules[0].(map[string]any)
	backends, _, _ := unstructured.NestedSlice(rm, "backends")
	return weightsBy(c, backends, "serviceName")
}
