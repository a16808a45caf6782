package router

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/traffic"
	"sluice.dev/sluice/pkg/workload"
)

// +kubebuilder:rbac:groups=serving.knative.dev,resources=services,verbs=get;list;watch;update;patch

// Knative routes with the traffic block of the Canary's target, a Knative
// Service (provider knative), as Flagger does: Knative keeps every
// Revision, so the primary is the Revision named in the Service's
// sluice.dev/primary-revision annotation and the canary is its latest
// created Revision. The split is
//
//	traffic: [{latestRevision: true, percent: canary}, {revisionName: <primary>, percent: primary}]
//
// No Kubernetes Services are generated: Knative makes its own.
type Knative struct{ Deps }

func newKnative(d Deps) Router { return &Knative{d} }

// Capabilities are weights.
func (k *Knative) Capabilities() traffic.Capabilities { return traffic.Capabilities{Weights: true} }

// GoldenSignals read the queue-proxy's request metrics of the canary's
// Revision (https://knative.dev/docs/serving/services/service-metrics/:
// revision_request_count and revision_request_latencies, in milliseconds,
// by namespace_name, revision_name and response_code_class). Flagger's
// queries select the route's Envoy cluster instead, which holds both
// Revisions.
func (k *Knative) GoldenSignals() traffic.GoldenSignals {
	const sel = `namespace_name="{{ namespace }}", revision_name="{{ revision }}"`
	return traffic.GoldenSignals{
		SuccessRate: `sum(rate(revision_request_count{` + sel + `, response_code_class!="5xx"}[{{ interval }}]))
/ sum(rate(revision_request_count{` + sel + `}[{{ interval }}])) * 100`,
		Duration: `histogram_quantile(0.99, sum(rate(revision_request_latencies_bucket{` + sel + `}[{{ interval }}])) by (le))`,
	}
}

// errNotKnative is a Canary of provider knative whose target is not a
// Knative Service.
var errNotKnative = &SpecError{Field: "spec.targetRef", Err: errors.New("provider knative needs a Knative Service target (apiVersion serving.knative.dev/v1, kind Service)")}

func (k *Knative) service(c *sluicev1beta1.Canary) (*unstructured.Unstructured, error) {
	obj, err := workload.NewTarget(c.Spec.TargetRef)
	if err != nil || !workload.IsKnative(obj) {
		return nil, errNotKnative
	}
	obj.SetNamespace(c.Namespace)
	obj.SetName(c.Spec.TargetRef.Name)
	return obj.(*unstructured.Unstructured), nil
}

// Initialize needs nothing: the engine names the primary Revision.
func (k *Knative) Initialize(_ context.Context, c *sluicev1beta1.Canary) error {
	_, err := k.service(c)
	return err
}

// Reconcile writes the traffic block, keeping its split.
func (k *Knative) Reconcile(ctx context.Context, c *sluicev1beta1.Canary) error {
	return k.write(ctx, c, keepSplit())
}

// SetRoutes writes the split into the traffic block.
func (k *Knative) SetRoutes(ctx context.Context, c *sluicev1beta1.Canary, r traffic.Routes) error {
	return k.write(ctx, c, setSplit(r))
}

func (k *Knative) write(ctx context.Context, c *sluicev1beta1.Canary, sp split) error {
	svc, err := k.service(c)
	if err != nil {
		return err
	}
	return k.patch(ctx, svc, func() error {
		if svc.GetResourceVersion() == "" {
			return fmt.Errorf("knative Service %s not found", svc.GetName())
		}
		primary := workload.KnativePrimaryRevision(svc)
		if primary == "" {
			return fmt.Errorf("knative Service %s has no primary Revision yet", svc.GetName())
		}
		r, err := sp.of(svc, func() (traffic.Routes, error) { return knativeSplit(svc), nil })
		if err != nil {
			return err
		}
		return unstructured.SetNestedSlice(svc.Object, []any{
			map[string]any{"latestRevision": true, "percent": int64(r.Canary)},
			map[string]any{"revisionName": primary, "percent": int64(r.Primary)},
		}, "spec", "traffic")
	})
}

// Routes reads the split from the traffic block. A Service without one
// sends everything to its latest Revision, which before initialization is
// the target as it runs: all on the primary.
func (k *Knative) Routes(ctx context.Context, c *sluicev1beta1.Canary) (traffic.Routes, error) {
	svc, err := k.service(c)
	if err != nil {
		return traffic.Routes{}, err
	}
	if err := k.Client.Get(ctx, client.ObjectKeyFromObject(svc), svc); apierrors.IsNotFound(err) {
		return traffic.PrimaryOnly(), nil
	} else if err != nil {
		return traffic.Routes{}, fmt.Errorf("get Knative Service %s: %w", svc.GetName(), err)
	}
	return knativeSplit(svc), nil
}

// knativeSplit reads the latest Revision's percent as the canary's and
// the named Revisions' as the primary's.
func knativeSplit(svc *unstructured.Unstructured) traffic.Routes {
	targets, _, _ := unstructured.NestedSlice(svc.Object, "spec", "traffic")
	if len(targets) == 0 {
		return traffic.PrimaryOnly()
	}
	var r traffic.Routes
	for _, t := range targets {
		tm, ok := t.(map[string]any)
		if !ok {
			continue
		}
		percent, _, _ := unstructured.NestedInt64(tm, "percent")
		if latest, _, _ := unstructured.NestedBool(tm, "latestRevision"); latest {
			r.Canary += int(percent)
		} else {
			r.Primary += int(percent)
		}
	}
	return r
}

// Finalize gives the Service back to Knative's default, everything on its
// latest Revision, and forgets the primary.
func (k *Knative) Finalize(ctx context.Context, c *sluicev1beta1.Canary) error {
	svc, err := k.service(c)
	if errors.Is(err, errNotKnative) {
		// Not a Knative target: this router never wrote to it.
		return nil
	} else if err != nil {
		return err
	}
	if err := k.Client.Get(ctx, client.ObjectKeyFromObject(svc), svc); apierrors.IsNotFound(err) {
		return nil
	} else if err != nil {
		return fmt.Errorf("get Knative Service %s: %w", svc.GetName(), err)
	}
	return k.patch(ctx, svc, func() error {
		annotations := svc.GetAnnotations()
		delete(annotations, workload.KnativePrimaryAnnotation)
		svc.SetAnnotations(annotations)
		return unstructured.SetNestedSlice(svc.Object, []any{map[string]any{"latestRevision": true, "percent": int64(100)}}, "spec", "traffic")
	})
}
