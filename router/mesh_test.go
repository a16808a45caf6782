package router_test

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"

	istiov1alpha3 "istio.io/api/networking/v1alpha3"
	istionetworkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/traffic"
	"sluice.dev/sluice/router"
)

func routerFor(t *testing.T, provider sluicev1beta1.Provider) router.Router {
	t.Helper()
	r, err := router.New(provider, router.Deps{Client: cp.Client, Scheme: cp.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// step sets a split, checks the object written with describe, reads the
// split back, and checks that setting it again writes nothing.
func step(t *testing.T, r router.Router, c *sluicev1beta1.Canary, routes traffic.Routes, get func() client.Object, describe func(client.Object) []string, want []string) {
	t.Helper()
	if err := r.SetRoutes(t.Context(), c, routes); err != nil {
		t.Fatal(err)
	}
	obj := get()
	if got := describe(obj); !reflect.DeepEqual(got, want) {
		t.Fatalf("at %s\n got %q\nwant %q", routes, got, want)
	}
	if got, err := r.Routes(t.Context(), c); err != nil || got != routes {
		t.Fatalf("read back %+v (%v), want %+v", got, err, routes)
	}
	if err := r.SetRoutes(t.Context(), c, routes); err != nil {
		t.Fatal(err)
	}
	if get().GetResourceVersion() != obj.GetResourceVersion() {
		t.Fatalf("setting %s again wrote the object", routes)
	}
}

func describeVirtualService(obj client.Object) []string {
	vs := obj.(*istionetworkingv1.VirtualService)
	out := []string{fmt.Sprintf("hosts %v gateways %v", vs.Spec.Hosts, vs.Spec.Gateways)}
	for _, h := range vs.Spec.Http {
		line := h.Name + ":"
		for _, m := range h.Match {
			var parts []string
			if m.Uri != nil {
				parts = append(parts, "uri "+m.Uri.String())
			}
			for _, k := range sortedMapKeys(m.Headers) {
				parts = append(parts, "header "+k+" "+m.Headers[k].String())
			}
			for _, k := range sortedMapKeys(m.SourceLabels) {
				parts = append(parts, "source "+k+"="+m.SourceLabels[k])
			}
			line += " match[" + strings.Join(parts, ", ") + "]"
		}
		for _, d := range h.Route {
			line += fmt.Sprintf(" %s:%d", d.Destination.Host, d.Weight)
			if d.Headers != nil && d.Headers.Response != nil {
				line += "(set-cookie " + d.Headers.Response.Add["Set-Cookie"] + ")"
			}
		}
		if h.Mirror != nil {
			line += fmt.Sprintf(" mirror %s %v%%", h.Mirror.Host, h.MirrorPercentage.GetValue())
		}
		if h.Retries != nil {
			line += fmt.Sprintf(" retries %d", h.Retries.Attempts)
		}
		if h.Timeout != nil {
			line += " timeout " + h.Timeout.AsDuration().String()
		}
		out = append(out, line)
	}
	for _, tcp := range vs.Spec.Tcp {
		line := "tcp:"
		for _, d := range tcp.Route {
			line += fmt.Sprintf(" %s:%d", d.Destination.Host, d.Weight)
		}
		out = append(out, line)
	}
	return out
}

func sortedMapKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func TestIstioVirtualServiceAndDestinationRules(t *testing.T) {
	ctx := t.Context()
	c := setupCanary(t, "istio", func(c *sluicev1beta1.Canary) {
		c.Spec.Provider = "istio"
		c.Spec.Service = sluicev1beta1.CanaryService{
			Port: 9898, Gateways: []string{"public-gateway"}, Hosts: []string{"app.example.com"}, Timeout: "5s",
			Match:         []sluicev1beta1.HTTPMatchRequest{{URI: &sluicev1beta1.StringMatch{Prefix: "/api"}}},
			Retries:       &sluicev1beta1.HTTPRetry{Attempts: 3, PerTryTimeout: "1s", RetryOn: "gateway-error"},
			TrafficPolicy: &sluicev1beta1.TrafficPolicy{TLS: &sluicev1beta1.ClientTLSSettings{Mode: "ISTIO_MUTUAL"}},
		}
		c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{
			Interval: "30s", StepWeight: 20,
			SessionAffinity: &sluicev1beta1.SessionAffinity{CookieName: "canary", MaxAge: 600},
			Match: []sluicev1beta1.HTTPMatchRequest{
				{Headers: map[string]sluicev1beta1.StringMatch{"x-canary": {Suffix: "insider"}}},
				{SourceLabels: map[string]string{"app": "frontend"}},
			},
		}
	})
	r := routerFor(t, "istio")
	if err := r.Initialize(ctx, c); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"podinfo-primary", "podinfo-canary"} {
		dr := &istionetworkingv1.DestinationRule{}
		if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: name}, dr); err != nil {
			t.Fatal(err)
		}
		if dr.Spec.Host != name || dr.Spec.TrafficPolicy.GetTls().GetMode() != istiov1alpha3.ClientTLSSettings_ISTIO_MUTUAL {
			t.Fatalf("DestinationRule %s: host %s policy %v", name, dr.Spec.Host, dr.Spec.TrafficPolicy)
		}
	}
	if err := r.Reconcile(ctx, c); err != nil {
		t.Fatal(err)
	}
	get := func() client.Object {
		vs := &istionetworkingv1.VirtualService{}
		if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: "podinfo"}, vs); err != nil {
			t.Fatal(err)
		}
		return vs
	}
	const hosts = "hosts [app.example.com podinfo] gateways [public-gateway]"
	const main = `sluice: match[uri prefix:"/api"]`
	step(t, r, c, traffic.PrimaryOnly(), get, describeVirtualService, []string{hosts,
		main + " podinfo-primary:100 podinfo-canary:0 retries 3 timeout 5s"})

	c.Status.SessionAffinityCookie = "canary=abc"
	step(t, r, c, traffic.Weighted(20), get, describeVirtualService, []string{hosts,
		`sluice-canary-cookie: match[uri prefix:"/api", header cookie regex:".*canary=abc.*"] podinfo-canary:100 retries 3 timeout 5s`,
		main + " podinfo-primary:80 podinfo-canary:20(set-cookie canary=abc; Max-Age=600) retries 3 timeout 5s"})
	c.Status.SessionAffinityCookie = ""

	step(t, r, c, traffic.Routes{Primary: 100, Mirror: true, MirrorWeight: 50}, get, describeVirtualService, []string{hosts,
		main + " podinfo-primary:100 podinfo-canary:0 mirror podinfo-canary 50% retries 3 timeout 5s"})
	step(t, r, c, traffic.Routes{Primary: 100, Match: true}, get, describeVirtualService, []string{hosts,
		`sluice-ab-0: match[uri prefix:"/api", header x-canary regex:".*insider$"] podinfo-canary:100 retries 3 timeout 5s`,
		`sluice-ab-1: match[uri prefix:"/api", source app=frontend] podinfo-canary:100 retries 3 timeout 5s`,
		main + " podinfo-primary:100 podinfo-canary:0 retries 3 timeout 5s"})

	if err := r.Finalize(ctx, c); err != nil {
		t.Fatal(err)
	}
	if got := describeVirtualService(get()); !reflect.DeepEqual(got, []string{hosts, "sluice: podinfo:100"}) || len(get().GetOwnerReferences()) != 0 {
		t.Fatalf("after finalize %q, owners %v", got, get().GetOwnerReferences())
	}
}

func TestIstioTakesOverAVirtualServiceAndGivesItBack(t *testing.T) {
	ctx := t.Context()
	c := setupCanary(t, "istio-adopt", func(c *sluicev1beta1.Canary) {
		c.Spec.Provider = "istio"
		c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{StepWeight: 20}
	})
	users := &istionetworkingv1.VirtualService{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: c.Namespace}}
	users.Spec.Hosts = []string{"podinfo"}
	users.Spec.Http = []*istiov1alpha3.HTTPRoute{{Name: "mine", Route: []*istiov1alpha3.HTTPRouteDestination{{Destination: &istiov1alpha3.Destination{Host: "podinfo"}}}}}
	if err := cp.Client.Create(ctx, users); err != nil {
		t.Fatal(err)
	}
	original, _ := users.Spec.MarshalJSON()
	r := routerFor(t, "istio")
	if err := r.SetRoutes(ctx, c, traffic.Weighted(40)); err != nil {
		t.Fatal(err)
	}
	if err := r.Finalize(ctx, c); err != nil {
		t.Fatal(err)
	}
	restored := &istionetworkingv1.VirtualService{}
	if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(users), restored); err != nil {
		t.Fatal(err)
	}
	if got, _ := restored.Spec.MarshalJSON(); string(got) != string(original) {
		t.Fatalf("restored %s, want %s", got, original)
	}
}

func TestIstioTCPRoute(t *testing.T) {
	c := setupCanary(t, "istio-tcp", func(c *sluicev1beta1.Canary) {
		c.Spec.Provider = "istio"
		c.Spec.Service = sluicev1beta1.CanaryService{Port: 6379, AppProtocol: "tcp", Delegation: true}
		c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{StepWeight: 20}
	})
	r := routerFor(t, "istio")
	get := func() client.Object {
		vs := &istionetworkingv1.VirtualService{}
		if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: c.Namespace, Name: "podinfo"}, vs); err != nil {
			t.Fatal(err)
		}
		return vs
	}
	step(t, r, c, traffic.Weighted(60), get, describeVirtualService, []string{"hosts [] gateways []", "tcp: podinfo-primary:40 podinfo-canary:60"})
}

// createIngress writes the user's Ingress that the ingress routers clone.
func createIngress(t *testing.T, ns string, annotations map[string]string) {
	t.Helper()
	path := networkingv1.HTTPIngressPath{Path: "/", PathType: ptr.To(networkingv1.PathTypePrefix), Backend: networkingv1.IngressBackend{
		Service: &networkingv1.IngressServiceBackend{Name: "podinfo", Port: networkingv1.ServiceBackendPort{Number: 9898}}}}
	ing := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns, Annotations: annotations},
		Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{Host: "web.example.com",
			IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{path}}}}}},
	}
	if err := cp.Client.Create(t.Context(), ing); err != nil {
		t.Fatal(err)
	}
}

func getIngress(t *testing.T, ns, name string) func() client.Object {
	return func() client.Object {
		ing := &networkingv1.Ingress{}
		if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, ing); err != nil {
			t.Fatal(err)
		}
		return ing
	}
}

// describeIngress renders an Ingress's backends and the annotations whose
// keys start with one of prefixes.
func describeIngress(prefixes ...string) func(client.Object) []string {
	return func(obj client.Object) []string {
		ing := obj.(*networkingv1.Ingress)
		var out []string
		for _, rule := range ing.Spec.Rules {
			for _, p := range rule.HTTP.Paths {
				out = append(out, "path "+p.Path+" -> "+p.Backend.Service.Name)
			}
		}
		for _, k := range sortedMapKeys(ing.Annotations) {
			for _, p := range prefixes {
				if strings.HasPrefix(k, p) {
					out = append(out, k+"="+ing.Annotations[k])
				}
			}
		}
		return out
	}
}

func TestNGINXCanaryIngress(t *testing.T) {
	ctx := t.Context()
	c := setupCanary(t, "nginx", func(c *sluicev1beta1.Canary) {
		c.Spec.Provider = "nginx"
		c.Spec.IngressRef = &sluicev1beta1.LocalObjectReference{APIVersion: "networking.k8s.io/v1", Kind: "Ingress", Name: "web"}
		c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{Iterations: 5, Match: []sluicev1beta1.HTTPMatchRequest{
			{Headers: map[string]sluicev1beta1.StringMatch{"x-canary": {Regex: "^insider.*"}}},
			{Headers: map[string]sluicev1beta1.StringMatch{"cookie": {Exact: "canary"}}},
		}}
	})
	createIngress(t, c.Namespace, map[string]string{"nginx.ingress.kubernetes.io/rewrite-target": "/"})
	r := routerFor(t, "nginx")
	if err := r.Reconcile(ctx, c); err != nil {
		t.Fatal(err)
	}
	describe := describeIngress("nginx.ingress.kubernetes.io/")
	get := getIngress(t, c.Namespace, "web-canary")
	step(t, r, c, traffic.Weighted(10), get, describe, []string{"path / -> podinfo-canary",
		"nginx.ingress.kubernetes.io/canary=true", "nginx.ingress.kubernetes.io/canary-weight=10", "nginx.ingress.kubernetes.io/rewrite-target=/"})
	step(t, r, c, traffic.Routes{Primary: 100, Match: true}, get, describe, []string{"path / -> podinfo-canary",
		"nginx.ingress.kubernetes.io/canary=true", "nginx.ingress.kubernetes.io/canary-by-cookie=canary",
		"nginx.ingress.kubernetes.io/canary-by-header=x-canary", "nginx.ingress.kubernetes.io/canary-by-header-pattern=^insider.*",
		"nginx.ingress.kubernetes.io/canary-weight=0", "nginx.ingress.kubernetes.io/rewrite-target=/"})
	step(t, r, c, traffic.PrimaryOnly(), get, describe, []string{"path / -> podinfo-canary",
		"nginx.ingress.kubernetes.io/canary=true", "nginx.ingress.kubernetes.io/canary-weight=0", "nginx.ingress.kubernetes.io/rewrite-target=/"})
	if got := describe(getIngress(t, c.Namespace, "web")()); !reflect.DeepEqual(got, []string{"path / -> podinfo", "nginx.ingress.kubernetes.io/rewrite-target=/"}) {
		t.Fatalf("the user's Ingress changed: %q", got)
	}
	if err := r.Finalize(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: "web-canary"}, &networkingv1.Ingress{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the canary Ingress is still there: %v", err)
	}
}

func TestNGINXAnnotationPrefixIsConfigurable(t *testing.T) {
	c := setupCanary(t, "nginx-prefix", func(c *sluicev1beta1.Canary) {
		c.Spec.Provider = "nginx"
		c.Spec.IngressRef = &sluicev1beta1.LocalObjectReference{APIVersion: "networking.k8s.io/v1", Kind: "Ingress", Name: "web"}
		c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{StepWeight: 10}
	})
	createIngress(t, c.Namespace, nil)
	r, err := router.New("nginx", router.Deps{Client: cp.Client, Scheme: cp.Scheme, IngressAnnotationsPrefix: "custom.nginx.org"})
	if err != nil {
		t.Fatal(err)
	}
	step(t, r, c, traffic.Weighted(30), getIngress(t, c.Namespace, "web-canary"), describeIngress("custom.nginx.org/", "nginx.ingress"),
		[]string{"path / -> podinfo-canary", "custom.nginx.org/canary=true", "custom.nginx.org/canary-weight=30"})
}

func TestSkipperCanaryIngress(t *testing.T) {
	ctx := t.Context()
	c := setupCanary(t, "skipper", func(c *sluicev1beta1.Canary) {
		c.Spec.Provider = "skipper"
		c.Spec.IngressRef = &sluicev1beta1.LocalObjectReference{APIVersion: "networking.k8s.io/v1", Kind: "Ingress", Name: "web"}
		c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{StepWeight: 10}
	})
	createIngress(t, c.Namespace, map[string]string{"zalando.org/skipper-predicate": `Method("GET")`})
	r := routerFor(t, "skipper")
	if err := r.Reconcile(ctx, c); err != nil {
		t.Fatal(err)
	}
	describe := describeIngress("zalando.org/")
	get := getIngress(t, c.Namespace, "web-canary")
	paths := []string{"path / -> podinfo-primary", "path / -> podinfo-canary"}
	step(t, r, c, traffic.Weighted(10), get, describe, append(paths,
		`zalando.org/backend-weights={"podinfo-canary":10,"podinfo-primary":90}`, `zalando.org/skipper-predicate=Weight(100) && Method("GET")`))
	step(t, r, c, traffic.PrimaryOnly(), get, describe, append(paths,
		`zalando.org/backend-weights={"podinfo-canary":0,"podinfo-primary":100}`, `zalando.org/skipper-predicate=False() && Method("GET")`))
	if err := r.Finalize(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: "web-canary"}, &networkingv1.Ingress{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the canary Ingress is still there: %v", err)
	}
}

func getUnstructured(t *testing.T, apiVersion, kind, ns, name string) func() client.Object {
	return func() client.Object {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion(apiVersion)
		u.SetKind(kind)
		if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
			t.Fatal(err)
		}
		return u
	}
}

func describeSpec(obj client.Object) []string {
	return []string{fmt.Sprint(obj.(*unstructured.Unstructured).Object["spec"])}
}

func TestTraefikService(t *testing.T) {
	ctx := t.Context()
	c := setupCanary(t, "traefik", func(c *sluicev1beta1.Canary) {
		c.Spec.Provider = "traefik"
		c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{StepWeight: 10}
	})
	r := routerFor(t, "traefik")
	if err := r.Reconcile(ctx, c); err != nil {
		t.Fatal(err)
	}
	get := getUnstructured(t, "traefik.io/v1alpha1", "TraefikService", c.Namespace, "podinfo")
	step(t, r, c, traffic.Weighted(30), get, describeSpec, []string{
		"map[weighted:map[services:[map[name:podinfo-primary port:9898 weight:70] map[name:podinfo-canary port:9898 weight:30]]]]"})
	step(t, r, c, traffic.Routes{Primary: 100, Mirror: true, MirrorWeight: 25}, get, describeSpec, []string{
		"map[mirroring:map[mirrors:[map[name:podinfo-canary percent:25 port:9898]] name:podinfo-primary port:9898]]"})
	if err := r.Finalize(ctx, c); err != nil {
		t.Fatal(err)
	}
	if got := describeSpec(get()); !reflect.DeepEqual(got, []string{"map[weighted:map[services:[map[name:podinfo port:9898 weight:100]]]]"}) || len(get().GetOwnerReferences()) != 0 {
		t.Fatalf("after finalize %q, owners %v", got, get().GetOwnerReferences())
	}
}

func TestSMITrafficSplit(t *testing.T) {
	for _, tt := range []struct {
		provider sluicev1beta1.Provider
		version  string
	}{{"smi:v1alpha1", "v1alpha1"}, {"linkerd", "v1alpha2"}, {"smi:v1alpha3", "v1alpha3"}} {
		t.Run(string(tt.provider)+" writes "+tt.version, func(t *testing.T) {
			ctx := t.Context()
			c := setupCanary(t, "smi-"+tt.version, func(c *sluicev1beta1.Canary) {
				c.Spec.Provider = tt.provider
				c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{StepWeight: 10}
			})
			r := routerFor(t, tt.provider)
			if err := r.Reconcile(ctx, c); err != nil {
				t.Fatal(err)
			}
			get := getUnstructured(t, "split.smi-spec.io/"+tt.version, "TrafficSplit", c.Namespace, "podinfo")
			step(t, r, c, traffic.Weighted(40), get, describeSpec, []string{
				"map[backends:[map[service:podinfo-primary weight:60] map[service:podinfo-canary weight:40]] service:podinfo]"})
			if err := r.Finalize(ctx, c); err != nil {
				t.Fatal(err)
			}
			u := &unstructured.Unstructured{}
			u.SetAPIVersion("split.smi-spec.io/" + tt.version)
			u.SetKind("TrafficSplit")
			if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: "podinfo"}, u); !apierrors.IsNotFound(err) {
				t.Fatalf("the TrafficSplit is still there: %v", err)
			}
		})
	}
}
