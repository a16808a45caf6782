package router

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/traffic"
)

// +kubebuilder:rbac:groups=networking.k8s.io,resources=ingresses,verbs=get;list;watch;create;update;patch;delete

// NGINX routes with the ingress-nginx canary annotations (provider nginx):
// the Ingress named by spec.ingressRef, which keeps sending traffic to the
// apex Service, is cloned into <ingress>-canary pointing at the canary
// Service, and the clone's annotations set the canary's share: a weight,
// or a header or cookie for A/B tests.
type NGINX struct{ Deps }

// Capabilities are weights, and one header or one cookie to match.
func (n *NGINX) Capabilities() traffic.Capabilities {
	return traffic.Capabilities{Weights: true, HeaderMatch: true, CookieMatch: true}
}

// GoldenSignals use the ingress controller's metrics of the canary Ingress.
func (n *NGINX) GoldenSignals() traffic.GoldenSignals {
	const sel = `namespace="{{ namespace }}", ingress="{{ ingress }}-canary"`
	return traffic.GoldenSignals{
		SuccessRate: `sum(rate(nginx_ingress_controller_requests{` + sel + `, status!~"5.*"}[{{ interval }}]))
/ sum(rate(nginx_ingress_controller_requests{` + sel + `}[{{ interval }}])) * 100`,
		Duration: `histogram_quantile(0.99, sum(rate(nginx_ingress_controller_request_duration_seconds_bucket{` + sel + `}[{{ interval }}])) by (le)) * 1000`,
	}
}

func (n *NGINX) prefix() string {
	if n.IngressAnnotationsPrefix != "" {
		return n.IngressAnnotationsPrefix
	}
	return "nginx.ingress.kubernetes.io"
}

// Initialize needs nothing before the primary takes traffic.
func (n *NGINX) Initialize(context.Context, *sluicev1beta1.Canary) error { return nil }

// Reconcile creates or updates the canary Ingress, keeping its split.
func (n *NGINX) Reconcile(ctx context.Context, c *sluicev1beta1.Canary) error {
	return n.write(ctx, c, keepSplit())
}

// SetRoutes writes the split into the canary Ingress's annotations.
func (n *NGINX) SetRoutes(ctx context.Context, c *sluicev1beta1.Canary, r traffic.Routes) error {
	return n.write(ctx, c, setSplit(r))
}

func (n *NGINX) write(ctx context.Context, c *sluicev1beta1.Canary, sp split) error {
	_, _, canary := ServiceNames(c)
	return cloneIngress(ctx, n.Deps, c, sp, n.split, func(clone *networkingv1.Ingress, r traffic.Routes) error {
		annotations, err := n.canaryAnnotations(c, r)
		if err != nil {
			return err
		}
		for k := range clone.Annotations {
			if strings.HasPrefix(k, n.prefix()+"/canary") {
				delete(clone.Annotations, k)
			}
		}
		for k, v := range annotations {
			clone.Annotations[k] = v
		}
		return retargetIngress(clone, c, canary)
	})
}

func (n *NGINX) canaryAnnotations(c *sluicev1beta1.Canary, r traffic.Routes) (map[string]string, error) {
	p := n.prefix()
	out := map[string]string{p + "/canary": "true", p + "/canary-weight": strconv.Itoa(r.Canary)}
	if !r.Match || c.Spec.Analysis == nil {
		return out, nil
	}
	out[p+"/canary-weight"] = "0"
	for i, m := range c.Spec.Analysis.Match {
		for _, name := range sortedKeys(m.Headers) {
			v := m.Headers[name]
			switch {
			case strings.EqualFold(name, "cookie"):
				// Flagger's meaning: the cookie named here routes to the
				// canary when its value is "always".
				if v.Exact == "" {
					return nil, specError(fmt.Sprintf("spec.analysis.match[%d].headers[cookie]", i), "NGINX matches a cookie by its name in exact")
				}
				out[p+"/canary-by-cookie"] = v.Exact
			case out[p+"/canary-by-header"] != "":
				return nil, specError(fmt.Sprintf("spec.analysis.match[%d].headers[%s]", i, name), "NGINX routes by one header only")
			default:
				out[p+"/canary-by-header"] = name
				switch {
				case v.Exact != "":
					out[p+"/canary-by-header-value"] = v.Exact
				default:
					out[p+"/canary-by-header-pattern"] = stringMatchRegex(v)
				}
			}
		}
	}
	return out, nil
}

// Routes reads the split from the canary Ingress.
func (n *NGINX) Routes(ctx context.Context, c *sluicev1beta1.Canary) (traffic.Routes, error) {
	clone, err := getIngress(ctx, n.Deps, c, canaryIngressName(c))
	if apierrors.IsNotFound(err) {
		return traffic.PrimaryOnly(), nil
	} else if err != nil {
		return traffic.Routes{}, err
	}
	return n.split(clone)
}

// split is the split the canary Ingress's annotations hold.
func (n *NGINX) split(clone *networkingv1.Ingress) (traffic.Routes, error) {
	p := n.prefix()
	a := clone.Annotations
	if a[p+"/canary-by-header"] != "" || a[p+"/canary-by-cookie"] != "" {
		return traffic.Routes{Primary: 100, Match: true}, nil
	}
	w, _ := strconv.Atoi(a[p+"/canary-weight"])
	return traffic.Weighted(w), nil
}

// Finalize deletes the canary Ingress; the user's Ingress sends traffic to
// the apex Service, which points back at the target.
func (n *NGINX) Finalize(ctx context.Context, c *sluicev1beta1.Canary) error {
	return deleteIngress(ctx, n.Deps, c, canaryIngressName(c))
}

// canaryIngressName is the name of the Ingress cloned from ingressRef.
func canaryIngressName(c *sluicev1beta1.Canary) string {
	if c.Spec.IngressRef == nil {
		return ""
	}
	return c.Spec.IngressRef.Name + "-canary"
}

func getIngress(ctx context.Context, d Deps, c *sluicev1beta1.Canary, name string) (*networkingv1.Ingress, error) {
	if c.Spec.IngressRef == nil {
		return nil, specError("spec.ingressRef", "provider %s needs the Ingress to split", c.Spec.Provider)
	}
	ing := &networkingv1.Ingress{}
	if err := d.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: name}, ing); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, err
		}
		return nil, fmt.Errorf("get Ingress %s: %w", name, err)
	}
	return ing, nil
}

// cloneIngress creates or updates <ingress>-canary as a copy of the
// ingressRef's rules and annotations, then lets mutate adapt it to the
// split, which held reads from the clone when sp keeps it.
func cloneIngress(ctx context.Context, d Deps, c *sluicev1beta1.Canary, sp split, held func(*networkingv1.Ingress) (traffic.Routes, error), mutate func(*networkingv1.Ingress, traffic.Routes) error) error {
	if c.Spec.IngressRef == nil {
		return specError("spec.ingressRef", "provider %s needs the Ingress to split", c.Spec.Provider)
	}
	original := &networkingv1.Ingress{}
	if err := d.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: c.Spec.IngressRef.Name}, original); err != nil {
		return missingRef("spec.ingressRef", "Ingress "+c.Spec.IngressRef.Name, err)
	}
	clone := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: canaryIngressName(c), Namespace: c.Namespace}}
	return d.ensureGenerated(ctx, c, clone, func() error {
		r, err := sp.of(clone, func() (traffic.Routes, error) { return held(clone) })
		if err != nil {
			return err
		}
		clone.Labels = original.Labels
		clone.Annotations = map[string]string{}
		for k, v := range original.Annotations {
			if k != "kubectl.kubernetes.io/last-applied-configuration" {
				clone.Annotations[k] = v
			}
		}
		clone.Spec = *original.Spec.DeepCopy()
		return mutate(clone, r)
	})
}

// retargetIngress points the paths that send traffic to the apex Service
// at another Service.
func retargetIngress(ing *networkingv1.Ingress, c *sluicev1beta1.Canary, service string) error {
	apex, _, _ := ServiceNames(c)
	found := false
	for i := range ing.Spec.Rules {
		if ing.Spec.Rules[i].HTTP == nil {
			continue
		}
		for j := range ing.Spec.Rules[i].HTTP.Paths {
			if b := ing.Spec.Rules[i].HTTP.Paths[j].Backend.Service; b != nil && b.Name == apex {
				b.Name, found = service, true
			}
		}
	}
	if !found {
		return specError("spec.ingressRef", "Ingress %s has no path to Service %s", c.Spec.IngressRef.Name, apex)
	}
	return nil
}

func deleteIngress(ctx context.Context, d Deps, c *sluicev1beta1.Canary, name string) error {
	ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: c.Namespace}}
	if err := d.Client.Delete(ctx, ing); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete Ingress %s: %w", name, err)
	}
	return nil
}
