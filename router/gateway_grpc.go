package router

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/traffic"
)

// A GRPCRoute gets weights, A/B by metadata header, and mirroring; gRPC
// has no cookies or query parameters, so session affinity and those
// matches are refused with an error that says so.

func (g *Gateway) writeGRPC(ctx context.Context, c *sluicev1beta1.Canary, sp split) error {
	if c.Spec.Analysis != nil && c.Spec.Analysis.SessionAffinity != nil {
		return fmt.Errorf("analysis.sessionAffinity: a GRPCRoute cannot keep sessions by cookie")
	}
	route := &gatewayv1.GRPCRoute{ObjectMeta: metav1.ObjectMeta{Name: gatewayRouteName(c), Namespace: c.Namespace}}
	setRules := func(base []gatewayv1.GRPCRouteRule) error {
		r, err := sp.of(route, func() (traffic.Routes, error) { return grpcSplit(c, route), nil })
		if err != nil {
			return err
		}
		rules, err := grpcRules(c, base, r)
		route.Spec.Rules = rules
		return err
	}
	if c.Spec.Service.RouteRef == nil {
		return g.ensureGenerated(ctx, c, route, func() error {
			applyMetadata(&route.ObjectMeta, c.Spec.Service.Apex, c.Spec.Service.UnmanagedMetadata, true)
			route.Spec.ParentRefs = parentRefs(c)
			route.Spec.Hostnames = hostnames(c)
			return setRules([]gatewayv1.GRPCRouteRule{generatedGRPCRule(c)})
		})
	}
	if err := g.Client.Get(ctx, client.ObjectKeyFromObject(route), route); err != nil {
		return fmt.Errorf("get GRPCRoute %s named by spec.service.routeRef: %w", route.Name, err)
	}
	return g.patch(ctx, route, func() error {
		if err := keepOriginal(route, route.Spec); err != nil {
			return err
		}
		return setRules(route.Spec.Rules)
	})
}

func (g *Gateway) grpcRoutes(ctx context.Context, c *sluicev1beta1.Canary) (traffic.Routes, error) {
	route := &gatewayv1.GRPCRoute{}
	if err := g.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: gatewayRouteName(c)}, route); apierrors.IsNotFound(err) && c.Spec.Service.RouteRef == nil {
		return traffic.PrimaryOnly(), nil
	} else if err != nil {
		return traffic.Routes{}, fmt.Errorf("get GRPCRoute %s: %w", gatewayRouteName(c), err)
	}
	return grpcSplit(c, route), nil
}

// grpcSplit is the split a GRPCRoute's owned rules hold.
func grpcSplit(c *sluicev1beta1.Canary, route *gatewayv1.GRPCRoute) traffic.Routes {
	rules := make([]gatewayRule, 0, len(route.Spec.Rules))
	for _, rule := range route.Spec.Rules {
		gr := gatewayRule{name: rule.Name, refs: grpcRefs(rule)}
		for _, f := range rule.Filters {
			gr.mirrors = append(gr.mirrors, f.RequestMirror)
		}
		rules = append(rules, gr)
	}
	return gatewaySplit(c, rules)
}

func generatedGRPCRule(c *sluicev1beta1.Canary) gatewayv1.GRPCRouteRule {
	s := c.Spec.Service
	apex, _, _ := ServiceNames(c)
	rule := gatewayv1.GRPCRouteRule{
		Name:        ptr.To(gatewayv1.SectionName(gatewayMainRule)),
		BackendRefs: []gatewayv1.GRPCBackendRef{grpcBackend(c, apex, 100)},
	}
	if h := s.Headers; h != nil {
		if h.Request != nil {
			rule.Filters = append(rule.Filters, gatewayv1.GRPCRouteFilter{Type: gatewayv1.GRPCRouteFilterRequestHeaderModifier, RequestHeaderModifier: headerFilter(h.Request)})
		}
		if h.Response != nil {
			rule.Filters = append(rule.Filters, gatewayv1.GRPCRouteFilter{Type: gatewayv1.GRPCRouteFilterResponseHeaderModifier, ResponseHeaderModifier: headerFilter(h.Response)})
		}
	}
	for i := range s.Mirror {
		rule.Filters = append(rule.Filters, gatewayv1.GRPCRouteFilter{Type: gatewayv1.GRPCRouteFilterRequestMirror, RequestMirror: s.Mirror[i].DeepCopy()})
	}
	return rule
}

func grpcRules(c *sluicev1beta1.Canary, rules []gatewayv1.GRPCRouteRule, r traffic.Routes) ([]gatewayv1.GRPCRouteRule, error) {
	_, primary, canary := ServiceNames(c)
	var out []gatewayv1.GRPCRouteRule
	owned := 0
	for _, rule := range rules {
		if rule.Name != nil && strings.HasPrefix(string(*rule.Name), gatewayRulePrefix) {
			continue
		}
		if !ownsBackends(grpcRefs(rule), c) {
			out = append(out, rule)
			continue
		}
		prefix := fmt.Sprintf("%s%d-", gatewayRulePrefix, owned)
		owned++
		base := rule.DeepCopy()
		base.Filters = slices.DeleteFunc(base.Filters, func(f gatewayv1.GRPCRouteFilter) bool {
			return f.RequestMirror != nil && string(f.RequestMirror.BackendRef.Name) == canary
		})
		if r.Match && c.Spec.Analysis != nil {
			for i, m := range c.Spec.Analysis.Match {
				if m.URI != nil || m.Method != nil || len(m.QueryParams) > 0 || m.Authority != nil || m.Scheme != nil || len(m.SourceLabels) > 0 {
					return nil, fmt.Errorf("analysis.match[%d]: a GRPCRoute matches metadata headers only", i)
				}
				ab := *base.DeepCopy()
				ab.Name = ptr.To(gatewayv1.SectionName(fmt.Sprintf("%sab-%d", prefix, i)))
				var headers []gatewayv1.GRPCHeaderMatch
				for _, h := range httpMatch(m).Headers {
					headers = append(headers, gatewayv1.GRPCHeaderMatch{Type: (*gatewayv1.GRPCHeaderMatchType)(h.Type), Name: gatewayv1.GRPCHeaderName(h.Name), Value: h.Value})
				}
				if len(ab.Matches) == 0 {
					ab.Matches = []gatewayv1.GRPCRouteMatch{{}}
				}
				for j := range ab.Matches {
					ab.Matches[j].Headers = append(ab.Matches[j].Headers, headers...)
				}
				ab.BackendRefs = []gatewayv1.GRPCBackendRef{grpcBackend(c, canary, 100)}
				out = append(out, ab)
			}
		}
		main := *base
		main.BackendRefs = []gatewayv1.GRPCBackendRef{grpcBackend(c, primary, r.Primary), grpcBackend(c, canary, r.Canary)}
		if r.Mirror {
			main.Filters = append(main.Filters, gatewayv1.GRPCRouteFilter{Type: gatewayv1.GRPCRouteFilterRequestMirror, RequestMirror: mirrorTo(c, canary, r.MirrorWeight)})
		}
		out = append(out, main)
	}
	if owned == 0 {
		apex, _, _ := ServiceNames(c)
		return nil, fmt.Errorf("no rule of the route sends traffic to Service %s, %s or %s", apex, primary, canary)
	}
	return out, nil
}

func apexGRPCRules(c *sluicev1beta1.Canary, rules []gatewayv1.GRPCRouteRule) []gatewayv1.GRPCRouteRule {
	apex, _, canary := ServiceNames(c)
	var out []gatewayv1.GRPCRouteRule
	for _, rule := range rules {
		if rule.Name != nil && strings.HasPrefix(string(*rule.Name), gatewayRulePrefix) {
			continue
		}
		if ownsBackends(grpcRefs(rule), c) {
			rule.Filters = slices.DeleteFunc(rule.Filters, func(f gatewayv1.GRPCRouteFilter) bool {
				return f.RequestMirror != nil && string(f.RequestMirror.BackendRef.Name) == canary
			})
			rule.BackendRefs = []gatewayv1.GRPCBackendRef{grpcBackend(c, apex, 100)}
		}
		out = append(out, rule)
	}
	return out
}

func grpcRefs(rule gatewayv1.GRPCRouteRule) []gatewayv1.BackendRef {
	var refs []gatewayv1.BackendRef
	for _, b := range rule.BackendRefs {
		refs = append(refs, b.BackendRef)
	}
	return refs
}

func grpcBackend(c *sluicev1beta1.Canary, service string, weight int) gatewayv1.GRPCBackendRef {
	return gatewayv1.GRPCBackendRef{BackendRef: httpBackend(c, service, weight, nil).BackendRef}
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
