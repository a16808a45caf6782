package router

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/traffic"
)

// +kubebuilder:rbac:groups=projectcontour.io,resources=httpproxies,verbs=get;list;watch;create;update;patch;delete

// Contour routes with an HTTPProxy named after the apex Service (provider
// contour), as Flagger does: a root HTTPProxy of the user's includes it, or
// it carries the routes itself. Its route sends the path prefix of
// service.match (or /) to the primary and canary Services by weight; an
// A/B test puts a route per analysis.match before it that sends matching
// requests to the canary; mirroring copies a share of the primary's
// traffic to the canary. Each Service gets Linkerd's l5d-dst-override
// header, so that a meshed Contour keeps the split.
type Contour struct{ objectRouter }

func newContour(d Deps) *Contour {
	return &Contour{objectRouter{
		Deps: d, apiVersion: "projectcontour.io/v1", kind: "HTTPProxy",
		spec: contourSpec, split: contourSplit,
		apexSpec: func(c *sluicev1beta1.Canary) map[string]any {
			apex, _, _ := ServiceNames(c)
			return map[string]any{"routes": []any{map[string]any{
				"conditions": []any{map[string]any{"prefix": contourPrefix(c)}},
				"services":   []any{map[string]any{"name": apex, "port": int64(c.Spec.Service.Port)}},
			}}}
		},
	}}
}

// Capabilities are weights, header, cookie and query matches, and
// mirroring with a percentage.
func (r *Contour) Capabilities() traffic.Capabilities {
	return traffic.Capabilities{Weights: true, HeaderMatch: true, CookieMatch: true, QueryMatch: true, Mirror: true, MirrorWeight: true}
}

// GoldenSignals use Envoy's cluster metrics of the canary Service, whose
// cluster Contour names <namespace>_<service>_<port>.
func (r *Contour) GoldenSignals() traffic.GoldenSignals {
	const sel = `envoy_cluster_name=~"{{ namespace }}_{{ service }}-canary_[0-9a-zA-Z-]+"`
	return traffic.GoldenSignals{
		SuccessRate: `sum(rate(envoy_cluster_upstream_rq{` + sel + `, envoy_response_code!~"5.*"}[{{ interval }}]))
/ sum(rate(envoy_cluster_upstream_rq{` + sel + `}[{{ interval }}])) * 100`,
		// Envoy's request time histogram is in milliseconds already.
		Duration: `histogram_quantile(0.99, sum(rate(envoy_cluster_upstream_rq_time_bucket{` + sel + `}[{{ interval }}])) by (le))`,
	}
}

// contourSpec is one route per A/B match, sending it to the canary, then
// the route that splits the rest.
func contourSpec(_ context.Context, c *sluicev1beta1.Canary, routes traffic.Routes) (map[string]any, error) {
	var out []any
	if routes.Match && c.Spec.Analysis != nil {
		for i, m := range c.Spec.Analysis.Match {
			conditions, err := contourConditions(c, m)
			if err != nil {
				return nil, specError(fmt.Sprintf("spec.analysis.match[%d]", i), "%w", err)
			}
			out = append(out, contourRoute(c, conditions, traffic.Weighted(100)))
		}
		routes = traffic.PrimaryOnly()
	}
	out = append(out, contourRoute(c, []any{map[string]any{"prefix": contourPrefix(c)}}, routes))
	return map[string]any{"routes": out}, nil
}

// contourRoute is a route with the given conditions that splits traffic
// as routes says, with the Canary's timeout and retries.
func contourRoute(c *sluicev1beta1.Canary, conditions []any, routes traffic.Routes) map[string]any {
	_, primary, canary := ServiceNames(c)
	port := int64(c.Spec.Service.Port)
	service := func(name string, weight int64) map[string]any {
		return map[string]any{
			"name": name, "port": port, "weight": weight,
			"requestHeadersPolicy": map[string]any{"set": []any{map[string]any{
				"name": "l5d-dst-override", "value": fmt.Sprintf("%s.%s.svc.cluster.local:%d", name, c.Namespace, port),
			}}},
		}
	}
	var services []any
	if routes.Mirror {
		mirror := service(canary, 100)
		mirror["mirror"] = true
		if routes.MirrorWeight > 0 {
			mirror["weight"] = int64(routes.MirrorWeight)
		}
		services = []any{service(primary, 100), mirror}
	} else {
		services = []any{service(primary, int64(routes.Primary)), service(canary, int64(routes.Canary))}
	}
	route := map[string]any{"conditions": conditions, "services": services}
	s := c.Spec.Service
	if s.Timeout != "" {
		route["timeoutPolicy"] = map[string]any{"response": s.Timeout, "idle": "5m"}
	}
	if s.Retries != nil {
		retry := map[string]any{"count": int64(s.Retries.Attempts)}
		if s.Retries.PerTryTimeout != "" {
			retry["perTryTimeout"] = s.Retries.PerTryTimeout
		}
		route["retryPolicy"] = retry
	}
	return route
}

// contourPrefix is the path prefix of service.match, or /.
func contourPrefix(c *sluicev1beta1.Canary) string {
	if m := c.Spec.Service.Match; len(m) > 0 && m[0].URI != nil && m[0].URI.Prefix != "" {
		return m[0].URI.Prefix
	}
	return "/"
}

// contourConditions turns an A/B match into HTTPProxy conditions, which
// must all hold: the route's prefix, then each header and query parameter.
// Contour matches neither methods, schemes, authorities nor callers, so
// those are refused.
func contourConditions(c *sluicev1beta1.Canary, m sluicev1beta1.HTTPMatchRequest) ([]any, error) {
	if m.Method != nil || m.Scheme != nil || m.Authority != nil || len(m.SourceLabels) > 0 || m.Port != 0 {
		return nil, fmt.Errorf("an HTTPProxy matches uri, headers and queryParams only")
	}
	prefix := contourPrefix(c)
	if m.URI != nil {
		if m.URI.Prefix == "" {
			return nil, fmt.Errorf("uri: an HTTPProxy condition matches a path prefix only")
		}
		prefix = m.URI.Prefix
	}
	conditions := []any{map[string]any{"prefix": prefix}}
	for _, name := range sortedKeys(m.Headers) {
		h := map[string]any{"name": name}
		if v := m.Headers[name]; v.Exact != "" {
			h["exact"] = v.Exact
		} else {
			h["regex"] = stringMatchRegex(v)
		}
		conditions = append(conditions, map[string]any{"header": h})
	}
	for _, name := range sortedKeys(m.QueryParams) {
		q := map[string]any{"name": name}
		switch v := m.QueryParams[name]; {
		case v.Exact != "":
			q["exact"] = v.Exact
		case v.Prefix != "":
			q["prefix"] = v.Prefix
		case v.Suffix != "":
			q["suffix"] = v.Suffix
		default:
			q["regex"] = stringMatchRegex(v)
		}
		conditions = append(conditions, map[string]any{"queryParameter": q})
	}
	return conditions, nil
}

// contourSplit is the split an HTTPProxy holds: routes before the last are
// A/B routes; the last holds the weights or the mirror.
func contourSplit(c *sluicev1beta1.Canary, proxy *unstructured.Unstructured) traffic.Routes {
	_, primary, canary := ServiceNames(c)
	routes, _, _ := unstructured.NestedSlice(proxy.Object, "spec", "routes")
	if len(routes) == 0 {
		return traffic.PrimaryOnly()
	}
	if len(routes) > 1 {
		return traffic.Routes{Primary: 100, Match: true}
	}
	last, _ := routes[len(routes)-1].(map[string]any)
	services, _, _ := unstructured.NestedSlice(last, "services")
	var split traffic.Routes
	for _, s := range services {
		sm, ok := s.(map[string]any)
		if !ok {
			continue
		}
		w, _ := sm["weight"].(int64)
		switch name, _ := sm["name"].(string); {
		case name == canary && sm["mirror"] == true:
			split.Mirror = true
			if w < 100 {
				split.MirrorWeight = int(w)
			}
		case name == primary:
			split.Primary = int(w)
		case name == canary:
			split.Canary = int(w)
		}
	}
	return split
}
