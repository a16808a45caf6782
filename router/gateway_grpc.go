package router

import (
	"fmt"
	"slices"

	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/traffic"
)

// grpcRouteKind writes GRPCRoutes: weights, A/B by metadata header, and
// mirroring. gRPC has no cookies or query parameters, so session affinity
// and those matches are refused with an error that says so.
func grpcRouteKind() routeKind[*gatewayv1.GRPCRoute, gatewayv1.GRPCRouteRule] {
	return routeKind[*gatewayv1.GRPCRoute, gatewayv1.GRPCRouteRule]{
		name:     "GRPCRoute",
		newRoute: func() *gatewayv1.GRPCRoute { return &gatewayv1.GRPCRoute{} },
		parts: func(rt *gatewayv1.GRPCRoute) routeParts[gatewayv1.GRPCRouteRule] {
			return routeParts[gatewayv1.GRPCRouteRule]{meta: &rt.ObjectMeta, spec: &rt.Spec, parents: &rt.Spec.ParentRefs, hostnames: &rt.Spec.Hostnames, rules: &rt.Spec.Rules}
		},
		view: func(rule gatewayv1.GRPCRouteRule) gatewayRule {
			return ruleView(rule.Name, rule.BackendRefs, func(b gatewayv1.GRPCBackendRef) gatewayv1.BackendRef { return b.BackendRef },
				rule.Filters, func(f gatewayv1.GRPCRouteFilter) *gatewayv1.HTTPRequestMirrorFilter { return f.RequestMirror })
		},
		generated: generatedGRPCRule,
		expand:    expandGRPCRule,
		toApex: func(c *sluicev1beta1.Canary, rule gatewayv1.GRPCRouteRule) gatewayv1.GRPCRouteRule {
			apex, _, canary := ServiceNames(c)
			rule.Filters = withoutCanaryGRPCMirror(rule.Filters, canary)
			rule.BackendRefs = []gatewayv1.GRPCBackendRef{grpcBackend(c, apex, 100)}
			return rule
		},
	}
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

// expandGRPCRule lays out one owned GRPCRoute rule for a split.
func expandGRPCRule(c *sluicev1beta1.Canary, rule gatewayv1.GRPCRouteRule, prefix string, r traffic.Routes) ([]gatewayv1.GRPCRouteRule, error) {
	if sessionAffinity(c) != nil {
		return nil, specError("spec.analysis.sessionAffinity", "a GRPCRoute cannot keep sessions by cookie")
	}
	_, primary, canary := ServiceNames(c)
	var out []gatewayv1.GRPCRouteRule
	base := rule.DeepCopy()
	base.Filters = withoutCanaryGRPCMirror(base.Filters, canary)
	if r.Match && c.Spec.Analysis != nil {
		for i, m := range c.Spec.Analysis.Match {
			if m.URI != nil || m.Method != nil || len(m.QueryParams) > 0 || m.Authority != nil || m.Scheme != nil || len(m.SourceLabels) > 0 {
				return nil, specError(fmt.Sprintf("spec.analysis.match[%d]", i), "a GRPCRoute matches metadata headers only")
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
	return append(out, main), nil
}

// withoutCanaryGRPCMirror drops the mirror of analysis traffic to the
// canary, keeping the user's static mirrors.
func withoutCanaryGRPCMirror(filters []gatewayv1.GRPCRouteFilter, canary string) []gatewayv1.GRPCRouteFilter {
	return slices.DeleteFunc(slices.Clone(filters), func(f gatewayv1.GRPCRouteFilter) bool {
		return f.RequestMirror != nil && string(f.RequestMirror.BackendRef.Name) == canary
	})
}

func grpcBackend(c *sluicev1beta1.Canary, service string, weight int) gatewayv1.GRPCBackendRef {
	return gatewayv1.GRPCBackendRef{BackendRef: httpBackend(c, service, weight, nil).BackendRef}
}
