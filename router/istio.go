package router

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	istiov1alpha3 "istio.io/api/networking/v1alpha3"
	istionetworkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/traffic"
)

// +kubebuilder:rbac:groups=networking.istio.io,resources=virtualservices;destinationrules,verbs=get;list;watch;create;update;patch;delete

// Istio routes with an Istio VirtualService named after the apex Service,
// and DestinationRules for the primary and canary Services carrying the
// Canary's trafficPolicy (provider istio). A VirtualService that existed
// before the Canary is taken over and restored by Finalize.
type Istio struct{ Deps }

// Route names in the VirtualService.
const (
	istioMainRoute = "sluice"
	istioABRoute   = "sluice-ab-"
)

// Capabilities are everything, sourceLabels included.
func (i *Istio) Capabilities() traffic.Capabilities {
	return traffic.Capabilities{Weights: true, HeaderMatch: true, CookieMatch: true, QueryMatch: true, SourceMatch: true, Mirror: true, MirrorWeight: true, SessionAffinity: true}
}

// GoldenSignals use the Istio standard metrics reported by the canary's
// sidecars.
func (i *Istio) GoldenSignals() traffic.GoldenSignals {
	const dest = `reporter="destination", destination_workload_namespace="{{ namespace }}", destination_workload=~"{{ target }}"`
	return traffic.GoldenSignals{
		SuccessRate: `sum(rate(istio_requests_total{` + dest + `, response_code!~"5.*"}[{{ interval }}]))
/ sum(rate(istio_requests_total{` + dest + `}[{{ interval }}])) * 100`,
		Duration: `histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{` + dest + `}[{{ interval }}])) by (le))`,
	}
}

// Initialize creates the DestinationRules, which must exist before a
// VirtualService names their hosts.
func (i *Istio) Initialize(ctx context.Context, c *sluicev1beta1.Canary) error {
	_, primary, canary := ServiceNames(c)
	for _, host := range []string{primary, canary} {
		dr := &istionetworkingv1.DestinationRule{ObjectMeta: metav1.ObjectMeta{Name: host, Namespace: c.Namespace}}
		if err := i.ensureGenerated(ctx, c, dr, func() error {
			dr.Spec.Host = host
			dr.Spec.TrafficPolicy = nil
			if c.Spec.Service.TrafficPolicy != nil {
				tp := &istiov1alpha3.TrafficPolicy{}
				if err := toIstio(c.Spec.Service.TrafficPolicy, tp.UnmarshalJSON); err != nil {
					return specError("spec.service.trafficPolicy", "%w", err)
				}
				dr.Spec.TrafficPolicy = tp
			}
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}

// Reconcile creates or takes over the VirtualService, keeping its split.
func (i *Istio) Reconcile(ctx context.Context, c *sluicev1beta1.Canary) error {
	return i.write(ctx, c, keepSplit())
}

// SetRoutes writes the split into the VirtualService.
func (i *Istio) SetRoutes(ctx context.Context, c *sluicev1beta1.Canary, r traffic.Routes) error {
	return i.write(ctx, c, setSplit(r))
}

func (i *Istio) write(ctx context.Context, c *sluicev1beta1.Canary, sp split) error {
	apex, _, _ := ServiceNames(c)
	vs := &istionetworkingv1.VirtualService{ObjectMeta: metav1.ObjectMeta{Name: apex, Namespace: c.Namespace}}
	route := func() error {
		r, err := sp.of(vs, func() (traffic.Routes, error) { return istioSplit(c, vs), nil })
		if err != nil {
			return err
		}
		spec, err := virtualService(c, r)
		if err != nil {
			return err
		}
		spec.DeepCopyInto(&vs.Spec)
		return nil
	}
	err := i.Client.Get(ctx, client.ObjectKeyFromObject(vs), vs)
	if err == nil && !metav1.IsControlledBy(vs, c) {
		// The user's VirtualService: keep it to give back, then route.
		return i.patch(ctx, vs, func() error {
			if err := keepOriginalProto(vs, &vs.Spec); err != nil {
				return err
			}
			return route()
		})
	} else if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("get VirtualService %s: %w", apex, err)
	}
	return i.ensureGenerated(ctx, c, vs, func() error {
		applyMetadata(&vs.ObjectMeta, c.Spec.Service.Apex, c.Spec.Service.UnmanagedMetadata, true)
		return route()
	})
}

// Routes reads the split from the VirtualService's main route.
func (i *Istio) Routes(ctx context.Context, c *sluicev1beta1.Canary) (traffic.Routes, error) {
	apex, _, _ := ServiceNames(c)
	vs := &istionetworkingv1.VirtualService{}
	if err := i.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: apex}, vs); apierrors.IsNotFound(err) {
		return traffic.PrimaryOnly(), nil
	} else if err != nil {
		return traffic.Routes{}, fmt.Errorf("get VirtualService %s: %w", apex, err)
	}
	return istioSplit(c, vs), nil
}

// istioSplit is the split a VirtualService's main route holds.
func istioSplit(c *sluicev1beta1.Canary, vs *istionetworkingv1.VirtualService) traffic.Routes {
	_, primary, canary := ServiceNames(c)
	r := traffic.PrimaryOnly()
	for _, t := range vs.Spec.Tcp {
		r.Primary, r.Canary = destinationWeights(t.Route, primary, canary)
	}
	for _, h := range vs.Spec.Http {
		switch {
		case len(h.Name) > len(istioABRoute) && h.Name[:len(istioABRoute)] == istioABRoute:
			r.Match = true
		case h.Name == istioMainRoute:
			r.Primary, r.Canary = destinationWeights(h.Route, primary, canary)
			if h.Mirror != nil && h.Mirror.Host == canary {
				r.Mirror = true
				if h.MirrorPercentage != nil && h.MirrorPercentage.Value < 100 {
					r.MirrorWeight = int(h.MirrorPercentage.Value)
				}
			}
		}
	}
	return r
}

// Finalize gives a taken-over VirtualService back as it was; a generated
// one is pointed at the apex Service and released, so that it outlives the
// Canary.
func (i *Istio) Finalize(ctx context.Context, c *sluicev1beta1.Canary) error {
	apex, _, _ := ServiceNames(c)
	vs := &istionetworkingv1.VirtualService{}
	if err := i.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: apex}, vs); apierrors.IsNotFound(err) {
		return nil
	} else if err != nil {
		return fmt.Errorf("get VirtualService %s: %w", apex, err)
	}
	return i.patch(ctx, vs, func() error {
		if adopted, err := takeOriginalProto(vs, &vs.Spec); err != nil || adopted {
			return err
		}
		dest := []*istiov1alpha3.HTTPRouteDestination{{Destination: &istiov1alpha3.Destination{Host: apex}, Weight: 100}}
		vs.Spec.Http = []*istiov1alpha3.HTTPRoute{{Name: istioMainRoute, Route: dest}}
		if len(vs.Spec.Tcp) > 0 {
			vs.Spec.Tcp = []*istiov1alpha3.TCPRoute{{Route: []*istiov1alpha3.RouteDestination{{Destination: &istiov1alpha3.Destination{Host: apex}, Weight: 100}}}}
			vs.Spec.Http = nil
		}
		release(vs, c)
		return nil
	})
}

// virtualService builds the VirtualService for a split.
func virtualService(c *sluicev1beta1.Canary, r traffic.Routes) (*istiov1alpha3.VirtualService, error) {
	s := c.Spec.Service
	apex, primary, canary := ServiceNames(c)
	vs := &istiov1alpha3.VirtualService{}
	if !s.Delegation {
		vs.Hosts = append(append(vs.Hosts, s.Hosts...), apex)
		vs.Gateways = s.Gateways
	}
	port := uint32(s.Port)
	dest := func(host string, weight int) *istiov1alpha3.Destination {
		return &istiov1alpha3.Destination{Host: host, Port: &istiov1alpha3.PortSelector{Number: port}}
	}
	if s.AppProtocol == "tcp" {
		vs.Tcp = []*istiov1alpha3.TCPRoute{{Route: []*istiov1alpha3.RouteDestination{
			{Destination: dest(primary, r.Primary), Weight: int32(r.Primary)},
			{Destination: dest(canary, r.Canary), Weight: int32(r.Canary)},
		}}}
		return vs, nil
	}

	base := &istiov1alpha3.HTTPRoute{}
	for _, m := range s.Match {
		im, err := istioMatch(m)
		if err != nil {
			return nil, specError("spec.service.match", "%w", err)
		}
		base.Match = append(base.Match, im)
	}
	for _, part := range []struct {
		from any
		into func([]byte) error
		set  bool
		name string
	}{
		{s.Retries, func(b []byte) error { base.Retries = &istiov1alpha3.HTTPRetry{}; return base.Retries.UnmarshalJSON(b) }, s.Retries != nil, "retries"},
		{s.Headers, func(b []byte) error { base.Headers = &istiov1alpha3.Headers{}; return base.Headers.UnmarshalJSON(b) }, s.Headers != nil, "headers"},
		{s.CorsPolicy, func(b []byte) error {
			base.CorsPolicy = &istiov1alpha3.CorsPolicy{}
			return base.CorsPolicy.UnmarshalJSON(b)
		}, s.CorsPolicy != nil, "corsPolicy"},
		{s.Rewrite, func(b []byte) error {
			base.Rewrite = &istiov1alpha3.HTTPRewrite{}
			return base.Rewrite.UnmarshalJSON(b)
		}, s.Rewrite != nil, "rewrite"},
	} {
		if !part.set {
			continue
		}
		if err := toIstio(part.from, part.into); err != nil {
			return nil, specError("spec.service."+part.name, "%w", err)
		}
	}
	if s.Timeout != "" {
		d, err := parseDuration(s.Timeout)
		if err != nil {
			return nil, specError("spec.service.timeout", "%w", err)
		}
		base.Timeout = durationProto(d)
	}
	routeTo := func(name string, matches []*istiov1alpha3.HTTPMatchRequest, dests ...*istiov1alpha3.HTTPRouteDestination) *istiov1alpha3.HTTPRoute {
		h := base.DeepCopy()
		h.Name, h.Route = name, dests
		if matches != nil {
			h.Match = matches
		}
		return h
	}

	if r.Match && c.Spec.Analysis != nil {
		for n, m := range c.Spec.Analysis.Match {
			ab, err := istioMatch(m)
			if err != nil {
				return nil, specError(fmt.Sprintf("spec.analysis.match[%d]", n), "%w", err)
			}
			vs.Http = append(vs.Http, routeTo(fmt.Sprintf("%s%d", istioABRoute, n), mergeIstioMatches(base.Match, ab),
				&istiov1alpha3.HTTPRouteDestination{Destination: dest(canary, 100), Weight: 100}))
		}
	}
	primaryDest := &istiov1alpha3.HTTPRouteDestination{Destination: dest(primary, r.Primary), Weight: int32(r.Primary)}
	canaryDest := &istiov1alpha3.HTTPRouteDestination{Destination: dest(canary, r.Canary), Weight: int32(r.Canary)}
	if sa := c.Spec.Analysis.SessionAffinity; sa != nil {
		st := c.Status
		if st.SessionAffinityCookie != "" && r.Canary > 0 {
			vs.Http = append(vs.Http, routeTo("sluice-canary-cookie", mergeIstioMatches(base.Match, cookieMatch(st.SessionAffinityCookie)),
				&istiov1alpha3.HTTPRouteDestination{Destination: dest(canary, 100), Weight: 100}))
			canaryDest.Headers = setCookieHeaders(cookieHeader(st.SessionAffinityCookie, sa, fmt.Sprint(sa.MaxAge)))
		}
		if st.PrimarySessionAffinityCookie != "" && r.Canary > 0 {
			vs.Http = append(vs.Http, routeTo("sluice-primary-cookie", mergeIstioMatches(base.Match, cookieMatch(st.PrimarySessionAffinityCookie)),
				&istiov1alpha3.HTTPRouteDestination{Destination: dest(primary, 100), Weight: 100}))
			primaryDest.Headers = setCookieHeaders(cookieHeader(st.PrimarySessionAffinityCookie, sa, analysisSeconds(c)))
		}
		if st.SessionAffinityCookie == "" && st.PreviousSessionAffinityCookie != "" {
			primaryDest.Headers = setCookieHeaders(cookieHeader(st.PreviousSessionAffinityCookie, sa, "-1"))
		}
	}
	main := routeTo(istioMainRoute, nil, primaryDest, canaryDest)
	if r.Mirror {
		main.Mirror = dest(canary, 0)
		percent := 100.0
		if r.MirrorWeight > 0 {
			percent = float64(r.MirrorWeight)
		}
		main.MirrorPercentage = &istiov1alpha3.Percent{Value: percent}
	}
	vs.Http = append(vs.Http, main)
	return vs, nil
}

// destinationWeights reads the primary's and canary's weights from the
// destinations of an HTTP or TCP route.
func destinationWeights[D interface {
	GetDestination() *istiov1alpha3.Destination
	GetWeight() int32
}](dests []D, primary, canary string) (int, int) {
	var p, c int
	for _, d := range dests {
		switch d.GetDestination().GetHost() {
		case primary:
			p = int(d.GetWeight())
		case canary:
			c = int(d.GetWeight())
		}
	}
	return p, c
}

// istioMatch converts a match to Istio's, turning suffix matches (which
// Istio lacks) into regular expressions.
func istioMatch(m sluicev1beta1.HTTPMatchRequest) (*istiov1alpha3.HTTPMatchRequest, error) {
	m = *m.DeepCopy()
	for _, sm := range []*sluicev1beta1.StringMatch{m.URI, m.Scheme, m.Method, m.Authority} {
		suffixToRegex(sm)
	}
	for _, set := range []map[string]sluicev1beta1.StringMatch{m.Headers, m.QueryParams, m.WithoutHeaders} {
		for k, v := range set {
			suffixToRegex(&v)
			set[k] = v
		}
	}
	out := &istiov1alpha3.HTTPMatchRequest{}
	if err := toIstio(m, out.UnmarshalJSON); err != nil {
		return nil, err
	}
	return out, nil
}

func suffixToRegex(sm *sluicev1beta1.StringMatch) {
	if sm != nil && sm.Suffix != "" {
		sm.Regex, sm.Suffix = ".*"+regexp.QuoteMeta(sm.Suffix)+"$", ""
	}
}

// mergeIstioMatches ANDs extra into each base match (no base matches
// every request).
func mergeIstioMatches(base []*istiov1alpha3.HTTPMatchRequest, extra *istiov1alpha3.HTTPMatchRequest) []*istiov1alpha3.HTTPMatchRequest {
	if len(base) == 0 {
		return []*istiov1alpha3.HTTPMatchRequest{extra}
	}
	var out []*istiov1alpha3.HTTPMatchRequest
	for _, b := range base {
		m := b.DeepCopy()
		if extra.Uri != nil {
			m.Uri = extra.Uri
		}
		if extra.Method != nil {
			m.Method = extra.Method
		}
		for _, set := range []struct {
			into, from *map[string]*istiov1alpha3.StringMatch
		}{
			{&m.Headers, &extra.Headers}, {&m.QueryParams, &extra.QueryParams}, {&m.WithoutHeaders, &extra.WithoutHeaders},
		} {
			for k, v := range *set.from {
				if *set.into == nil {
					*set.into = map[string]*istiov1alpha3.StringMatch{}
				}
				(*set.into)[k] = v
			}
		}
		if len(extra.SourceLabels) > 0 {
			m.SourceLabels = extra.SourceLabels
		}
		if extra.SourceNamespace != "" {
			m.SourceNamespace = extra.SourceNamespace
		}
		out = append(out, m)
	}
	return out
}

func cookieMatch(cookie string) *istiov1alpha3.HTTPMatchRequest {
	return &istiov1alpha3.HTTPMatchRequest{Headers: map[string]*istiov1alpha3.StringMatch{
		"cookie": {MatchType: &istiov1alpha3.StringMatch_Regex{Regex: ".*" + regexp.QuoteMeta(cookie) + ".*"}},
	}}
}

func setCookieHeaders(value string) *istiov1alpha3.Headers {
	return &istiov1alpha3.Headers{Response: &istiov1alpha3.Headers_HeaderOperations{Add: map[string]string{"Set-Cookie": value}}}
}

// toIstio converts one of our Istio-shaped fields to Istio's type through
// its JSON form, which is the same.
func toIstio(from any, unmarshal func([]byte) error) error {
	b, err := json.Marshal(from)
	if err != nil {
		return err
	}
	return unmarshal(b)
}

// keepOriginalProto and takeOriginalProto record an adopted
// VirtualService's spec in Istio's own JSON form.
func keepOriginalProto(vs *istionetworkingv1.VirtualService, spec *istiov1alpha3.VirtualService) error {
	raw, err := spec.MarshalJSON()
	if err != nil {
		return err
	}
	return keepOriginal(vs, json.RawMessage(raw))
}

func takeOriginalProto(vs *istionetworkingv1.VirtualService, spec *istiov1alpha3.VirtualService) (bool, error) {
	var raw json.RawMessage
	adopted, err := takeOriginal(vs, &raw)
	if err != nil || !adopted {
		return adopted, err
	}
	restored := &istiov1alpha3.VirtualService{}
	if err := restored.UnmarshalJSON(raw); err != nil {
		return false, fmt.Errorf("read the original VirtualService %s: %w", vs.Name, err)
	}
	restored.DeepCopyInto(spec)
	return true, nil
}

// durationProto is a protobuf Duration.
func durationProto(d time.Duration) *durationpb.Duration { return durationpb.New(d) }
