package router

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/traffic"
)

// +kubebuilder:rbac:groups=networking.k8s.io,resources=ingresses,verbs=get;list;watch;create;update;patch;delete

// Skipper routes with Skipper's Ingress annotations (provider skipper): the
// Ingress named by spec.ingressRef stays as it is, and its clone
// <ingress>-canary sends each of its paths to both the primary and the
// canary Service, split by zalando.org/backend-weights. The clone outranks
// the original with a Weight(100) predicate while the canary has a share,
// and is switched off with False() when it has none.
type Skipper struct{ Deps }

// Skipper's annotations and predicates.
const (
	skipperWeights    = "zalando.org/backend-weights"
	skipperPredicate  = "zalando.org/skipper-predicate"
	skipperOutrank    = "Weight(100)"
	skipperSwitchedOf = "False()"
)

// Capabilities are weights.
func (s *Skipper) Capabilities() traffic.Capabilities { return traffic.Capabilities{Weights: true} }

// GoldenSignals use Skipper's route metrics of the canary Ingress's routes
// to the canary Service.
func (s *Skipper) GoldenSignals() traffic.GoldenSignals {
	// Skipper writes route ids with every non-word character as _:
	// kube_<namespace>__<ingress>__<host>__<path>__<service>.
	const sel = `route=~"kube(ew)?_{{ namespace | underscore }}__{{ ingress | underscore }}_canary__.*__{{ service | underscore }}_canary(_[0-9]+)?"`
	return traffic.GoldenSignals{
		SuccessRate: `sum(rate(skipper_serve_route_duration_seconds_count{` + sel + `, code!~"5.."}[{{ interval }}]))
/ sum(rate(skipper_serve_route_duration_seconds_count{` + sel + `}[{{ interval }}])) * 100`,
		Duration: `histogram_quantile(0.99, sum(rate(skipper_serve_route_duration_seconds_bucket{` + sel + `}[{{ interval }}])) by (le)) * 1000`,
	}
}

// Initialize needs nothing before the primary takes traffic.
func (s *Skipper) Initialize(context.Context, *sluicev1beta1.Canary) error { return nil }

// Reconcile creates or updates the canary Ingress, keeping its split.
func (s *Skipper) Reconcile(ctx context.Context, c *sluicev1beta1.Canary) error {
	return s.write(ctx, c, keepSplit())
}

// SetRoutes writes the split into the canary Ingress.
func (s *Skipper) SetRoutes(ctx context.Context, c *sluicev1beta1.Canary, r traffic.Routes) error {
	return s.write(ctx, c, setSplit(r))
}

func (s *Skipper) write(ctx context.Context, c *sluicev1beta1.Canary, sp split) error {
	_, primary, canary := ServiceNames(c)
	held := func(clone *networkingv1.Ingress) (traffic.Routes, error) { return skipperSplit(c, clone) }
	return cloneIngress(ctx, s.Deps, c, sp, held, func(clone *networkingv1.Ingress, r traffic.Routes) error {
		weights, err := json.Marshal(map[string]int{primary: r.Primary, canary: r.Canary})
		if err != nil {
			return err
		}
		if err := retargetIngress(clone, c, primary); err != nil {
			return err
		}
		for i := range clone.Spec.Rules {
			if h := clone.Spec.Rules[i].HTTP; h != nil {
				for _, p := range h.Paths {
					if p.Backend.Service != nil && p.Backend.Service.Name == primary {
						second := *p.DeepCopy()
						second.Backend.Service.Name = canary
						h.Paths = append(h.Paths, second)
					}
				}
			}
		}
		clone.Annotations[skipperWeights] = string(weights)
		first := skipperOutrank
		if r.Canary == 0 {
			first = skipperSwitchedOf
		}
		clone.Annotations[skipperPredicate] = withFirstPredicate(clone.Annotations[skipperPredicate], first)
		return nil
	})
}

// withFirstPredicate puts Sluice's predicate in front of the user's.
func withFirstPredicate(raw, first string) string {
	predicates := []string{first}
	for _, p := range strings.Split(raw, "&&") {
		if p = strings.TrimSpace(p); p != "" && p != skipperOutrank && p != skipperSwitchedOf {
			predicates = append(predicates, p)
		}
	}
	return strings.Join(predicates, " && ")
}

// Routes reads the split from the canary Ingress.
func (s *Skipper) Routes(ctx context.Context, c *sluicev1beta1.Canary) (traffic.Routes, error) {
	clone, err := getIngress(ctx, s.Deps, c, canaryIngressName(c))
	if apierrors.IsNotFound(err) {
		return traffic.PrimaryOnly(), nil
	} else if err != nil {
		return traffic.Routes{}, err
	}
	return skipperSplit(c, clone)
}

// skipperSplit is the split the canary Ingress's backend weights hold.
func skipperSplit(c *sluicev1beta1.Canary, clone *networkingv1.Ingress) (traffic.Routes, error) {
	_, primary, canary := ServiceNames(c)
	var weights map[string]int
	if err := json.Unmarshal([]byte(clone.Annotations[skipperWeights]), &weights); err != nil {
		return traffic.Routes{}, fmt.Errorf("read %s of Ingress %s: %w", skipperWeights, clone.Name, err)
	}
	return traffic.Routes{Primary: weights[primary], Canary: weights[canary]}, nil
}

// Finalize deletes the canary Ingress; the original sends traffic to the
// apex Service, which points back at the target.
func (s *Skipper) Finalize(ctx context.Context, c *sluicev1beta1.Canary) error {
	return deleteIngress(ctx, s.Deps, c, canaryIngressName(c))
}
