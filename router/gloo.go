package router

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/traffic"
)

// +kubebuilder:rbac:groups=gateway.solo.io,resources=routetables,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=gloo.solo.io,resources=upstreams,verbs=get;list;watch;create;update;patch;delete

// Gloo routes with Gloo Edge (provider gloo), as Flagger does: two
// Upstreams, <namespace>-<apex>-primaryupstream-<port> and
// -canaryupstream-, for the primary and canary Services, and a RouteTable
// named after the apex Service that a VirtualService of the user delegates
// to, weighted between them. spec.upstreamRef names an Upstream whose
// settings (timeouts, circuit breakers, TLS, ...) both copy. An A/B test
// puts a route per analysis.match (headers, methods, query parameters)
// before the weighted one.
type Gloo struct{ objectRouter }

func newGloo(d Deps) *Gloo {
	return &Gloo{objectRouter{
		Deps: d, apiVersion: "gateway.solo.io/v1", kind: "RouteTable",
		spec: glooSpec, split: glooSplit,
		apexSpec: func(c *sluicev1beta1.Canary) map[string]any {
			return map[string]any{"routes": []any{glooRoute(nil, []any{glooDestination(c, glooUpstreamName(c, "apex"), 100)})}}
		},
	}}
}

// Capabilities are weights, and header, cookie, query and method matches.
func (g *Gloo) Capabilities() traffic.Capabilities {
	return traffic.Capabilities{Weights: true, HeaderMatch: true, CookieMatch: true, QueryMatch: true}
}

// GoldenSignals use Envoy's cluster metrics of the canary Upstream, whose
// cluster Gloo names <upstream>_<upstream namespace>.
func (g *Gloo) GoldenSignals() traffic.GoldenSignals {
	const sel = `envoy_cluster_name=~"{{ namespace }}-{{ service }}-canaryupstream-[0-9]+_{{ namespace }}"`
	return traffic.GoldenSignals{
		SuccessRate: `sum(rate(envoy_cluster_upstream_rq{` + sel + `, envoy_response_code!~"5.*"}[{{ interval }}]))
/ sum(rate(envoy_cluster_upstream_rq{` + sel + `}[{{ interval }}])) * 100`,
		// Envoy's request time histogram is in milliseconds already.
		Duration: `histogram_quantile(0.99, sum(rate(envoy_cluster_upstream_rq_time_bucket{` + sel + `}[{{ interval }}])) by (le))`,
	}
}

// Initialize creates the Upstreams before the RouteTable refers to them.
func (g *Gloo) Initialize(ctx context.Context, c *sluicev1beta1.Canary) error {
	return g.upstreams(ctx, c)
}

// Reconcile keeps the Upstreams and the RouteTable as the Canary
// describes them.
func (g *Gloo) Reconcile(ctx context.Context, c *sluicev1beta1.Canary) error {
	if err := g.upstreams(ctx, c); err != nil {
		return err
	}
	return g.objectRouter.Reconcile(ctx, c)
}

// Finalize points the RouteTable at an Upstream of the apex Service,
// which it creates without an owner, and releases both, so that the
// VirtualService delegating to it keeps working after the Canary; the
// primary and canary Upstreams go with the Canary.
func (g *Gloo) Finalize(ctx context.Context, c *sluicev1beta1.Canary) error {
	apex, _, _ := ServiceNames(c)
	up, err := g.upstream(ctx, c, "apex", apex)
	if err != nil {
		return err
	}
	if err := g.createOrPatch(ctx, up.obj, up.mutate); err != nil {
		return fmt.Errorf("write Upstream %s: %w", up.obj.GetName(), err)
	}
	return g.objectRouter.Finalize(ctx, c)
}

// glooUpstreamName is the Upstream of one of the Canary's Services, as
// Flagger names it.
func glooUpstreamName(c *sluicev1beta1.Canary, role string) string {
	apex, _, _ := ServiceNames(c)
	if role == "apex" {
		return fmt.Sprintf("%s-%s-upstream-%d", c.Namespace, apex, c.Spec.Service.Port)
	}
	return fmt.Sprintf("%s-%s-%supstream-%d", c.Namespace, apex, role, c.Spec.Service.Port)
}

// glooUpstream is an Upstream to write and how.
type glooUpstream struct {
	obj    *unstructured.Unstructured
	mutate func() error
}

// upstream is the Upstream of a Service: the settings of
// spec.upstreamRef's Upstream, if any, with kube pointing at the Service.
func (g *Gloo) upstream(ctx context.Context, c *sluicev1beta1.Canary, role, service string) (glooUpstream, error) {
	base := map[string]any{}
	if ref := c.Spec.UpstreamRef; ref != nil {
		namespace := ref.Namespace
		if namespace == "" {
			namespace = c.Namespace
		}
		src := &unstructured.Unstructured{}
		src.SetAPIVersion("gloo.solo.io/v1")
		src.SetKind("Upstream")
		if err := g.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: ref.Name}, src); err != nil {
			return glooUpstream{}, missingRef("spec.upstreamRef", "Upstream "+namespace+"/"+ref.Name, err)
		}
		if spec, ok, _ := unstructured.NestedMap(src.Object, "spec"); ok {
			base = spec
		}
	}
	up := &unstructured.Unstructured{}
	up.SetAPIVersion("gloo.solo.io/v1")
	up.SetKind("Upstream")
	up.SetNamespace(c.Namespace)
	up.SetName(glooUpstreamName(c, role))
	return glooUpstream{obj: up, mutate: func() error {
		spec := base
		// Only the Service differs: a copied Upstream of another kind
		// (static, AWS, ...) becomes a kube one.
		for _, k := range []string{"static", "aws", "azure", "consul", "awsEc2", "pipe", "gcp"} {
			delete(spec, k)
		}
		spec["kube"] = map[string]any{"serviceName": service, "serviceNamespace": c.Namespace, "servicePort": int64(c.Spec.Service.Port)}
		up.Object["spec"] = spec
		return nil
	}}, nil
}

// upstreams writes the primary's and canary's Upstreams.
func (g *Gloo) upstreams(ctx context.Context, c *sluicev1beta1.Canary) error {
	_, primary, canary := ServiceNames(c)
	for role, service := range map[string]string{"primary": primary, "canary": canary} {
		up, err := g.upstream(ctx, c, role, service)
		if err != nil {
			return err
		}
		if err := g.ensureGenerated(ctx, c, up.obj, up.mutate); err != nil {
			return fmt.Errorf("write Upstream %s: %w", up.obj.GetName(), err)
		}
	}
	return nil
}

func glooDestination(c *sluicev1beta1.Canary, upstream string, weight int) map[string]any {
	return map[string]any{
		"destination": map[string]any{"upstream": map[string]any{"name": upstream, "namespace": c.Namespace}},
		"weight":      int64(weight),
	}
}

func glooRoute(matchers []any, destinations []any) map[string]any {
	route := map[string]any{
		"inheritablePathMatchers": true,
		"routeAction":             map[string]any{"multi": map[string]any{"destinations": destinations}},
	}
	if len(matchers) > 0 {
		route["matchers"] = matchers
	}
	return route
}

// glooSpec is a route per A/B match, sending it to the canary, then the
// weighted route.
func glooSpec(_ context.Context, c *sluicev1beta1.Canary, r traffic.Routes) (map[string]any, error) {
	primary, canary := glooUpstreamName(c, "primary"), glooUpstreamName(c, "canary")
	var routes []any
	if r.Match && c.Spec.Analysis != nil {
		for i, m := range c.Spec.Analysis.Match {
			matcher, err := glooMatcher(m)
			if err != nil {
				return nil, specError(fmt.Sprintf("spec.analysis.match[%d]", i), "%w", err)
			}
			routes = append(routes, glooRoute([]any{matcher}, []any{glooDestination(c, primary, 0), glooDestination(c, canary, 100)}))
		}
		r = traffic.PrimaryOnly()
	}
	routes = append(routes, glooRoute(nil, []any{glooDestination(c, primary, r.Primary), glooDestination(c, canary, r.Canary)}))
	return map[string]any{"routes": routes}, nil
}

// glooMatcher turns an A/B match into a Gloo matcher: headers (a cookie
// through the cookie header), methods and query parameters, exact or by
// regex. The path stays the delegating VirtualService's
// (inheritablePathMatchers).
func glooMatcher(m sluicev1beta1.HTTPMatchRequest) (map[string]any, error) {
	if m.URI != nil || m.Scheme != nil || m.Authority != nil || len(m.SourceLabels) > 0 || m.Port != 0 {
		return nil, fmt.Errorf("a Gloo RouteTable matches headers, methods and queryParams only")
	}
	matcher := map[string]any{}
	var headers []any
	for _, name := range sortedKeys(m.Headers) {
		headers = append(headers, glooValueMatch(name, m.Headers[name]))
	}
	if len(headers) > 0 {
		matcher["headers"] = headers
	}
	var params []any
	for _, name := range sortedKeys(m.QueryParams) {
		params = append(params, glooValueMatch(name, m.QueryParams[name]))
	}
	if len(params) > 0 {
		matcher["queryParameters"] = params
	}
	if m.Method != nil {
		if m.Method.Exact == "" {
			return nil, fmt.Errorf("method: a Gloo RouteTable matches exact methods only")
		}
		matcher["methods"] = []any{m.Method.Exact}
	}
	return matcher, nil
}

func glooValueMatch(name string, v sluicev1beta1.StringMatch) map[string]any {
	if v.Exact != "" {
		return map[string]any{"name": name, "value": v.Exact}
	}
	return map[string]any{"name": name, "value": stringMatchRegex(v), "regex": true}
}

// glooSplit reads the split: routes before the last are A/B routes; the
// last holds the weights.
func glooSplit(c *sluicev1beta1.Canary, rt *unstructured.Unstructured) traffic.Routes {
	routes, _, _ := unstructured.NestedSlice(rt.Object, "spec", "routes")
	switch {
	case len(routes) == 0:
		return traffic.PrimaryOnly()
	case len(routes) > 1:
		return traffic.Routes{Primary: 100, Match: true}
	}
	last, _ := routes[0].(map[string]any)
	destinations, _, _ := unstructured.NestedSlice(last, "routeAction", "multi", "destinations")
	primary, canary := glooUpstreamName(c, "primary"), glooUpstreamName(c, "canary")
	var r traffic.Routes
	for _, d := range destinations {
		dm, ok := d.(map[string]any)
		if !ok {
			continue
		}
		name, _, _ := unstructured.NestedString(dm, "destination", "upstream", "name")
		w, _ := dm["weight"].(int64)
		switch name {
		case primary:
			r.Primary = int(w)
		case canary:
			r.Canary = int(w)
		}
	}
	return r
}
