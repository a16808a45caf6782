package canary

import (
	"context"
	"errors"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/canary/plan"
	"sluice.dev/sluice/pkg/configtrack"
	"sluice.dev/sluice/pkg/traffic"
	"sluice.dev/sluice/pkg/workload"
	"sluice.dev/sluice/router"
)

// observed is what one reconcile read about a Canary, all from the cache.
type observed struct {
	in     plan.Input
	router router.Router
	// target and primary are nil when not found.
	target  client.Object
	primary client.Object
	// configs are the tracked ConfigMaps and Secrets the target reads.
	configs []client.Object
	// autoscaler is the target's autoscaler, nil if it has none.
	autoscaler autoscaler
}

// observe gathers the state machine's input. Problems the user must fix
// come back in Input.Blocked; an error means the cache could not be read.
func (r *Reconciler) observe(ctx context.Context, c *sluicev1beta1.Canary) (*observed, error) {
	o := &observed{in: plan.Input{
		Now:        r.Clock.Now(),
		Generation: c.Generation,
		Status:     c.Status,
		Deleting:   !c.DeletionTimestamp.IsZero(),
		Routes:     traffic.PrimaryOnly(),
	}}
	block := func(reason, msg string) *observed {
		if o.in.Blocked == nil {
			o.in.Blocked = &plan.Problem{Reason: reason, Message: msg}
		}
		return o
	}
	o.in.Request = requestOf(c)
	// What ReleasePolicies say is shown whatever else is wrong, and a
	// freeze is honoured whatever the Canary's state.
	if err := r.observeRelease(ctx, c, o); err != nil {
		return nil, err
	}
	// Whether alerts reach people is reported whatever else is wrong.
	if r.Notifier != nil && len(r.Notifier.Providers(c)) > 0 {
		o.in.Alerts = &plan.AlertsState{Unready: r.Notifier.Unready(ctx, c)}
	}
	spec, err := plan.SpecFrom(c)
	if err != nil {
		return block("InvalidSpec", err.Error()), nil
	}
	o.in.Spec = spec

	if err := r.observeTarget(ctx, c, o); err != nil {
		var problem *problemError
		if errors.As(err, &problem) {
			return block(problem.reason, problem.Error()), nil
		}
		return nil, err
	}

	provider := c.Spec.Provider
	if provider == "" {
		provider = r.DefaultProvider
	}
	rt, err := r.NewRouter(provider)
	if err != nil {
		return block("ProviderUnavailable", fmt.Sprintf("spec.provider: %v", err)), nil
	}
	o.router = rt
	o.in.Capabilities = rt.Capabilities()
	if problems := plan.Unsupported(spec, c, o.in.Capabilities); len(problems) > 0 {
		return block("UnsupportedStrategy", fmt.Sprintf("provider %s: %s", provider, strings.Join(problems, "; "))), nil
	}
	// Routes are read before the metrics, so that a Canary blocked by
	// its metrics can still be rolled back by hand.
	if o.target != nil && !o.in.Deleting {
		routes, err := rt.Routes(ctx, c)
		if meta.IsNoMatchError(err) {
			return block("ProviderUnavailable", fmt.Sprintf("spec.provider %s: its CRDs are not installed: %v", provider, err)), nil
		} else if o.blockOn(err) {
			return o, nil
		} else if err != nil {
			return nil, fmt.Errorf("read routes: %w", err)
		}
		o.in.Routes = routes
	}
	if c.Spec.Analysis != nil && len(c.Spec.Analysis.Metrics) > 0 && !o.in.Deleting {
		if r.Metrics == nil {
			return routable(block("MetricProviderUnavailable", fmt.Sprintf("spec.analysis.metrics[0] (%s): this operator runs without metric providers; the rollout waits rather than promote without data", c.Spec.Analysis.Metrics[0].Name))), nil
		}
		state, err := r.Metrics.Prepare(ctx, c)
		if err != nil {
			return nil, fmt.Errorf("prepare metrics: %w", err)
		}
		o.in.Metrics = &state
		if state.Problem != nil {
			return routable(block(state.Problem.Reason, state.Problem.Message)), nil
		}
	}
	return o, nil
}

// problemError is a problem the user must fix, reported in the status.
type problemError struct {
	reason string
	msg    string
}

func (p *problemError) Error() string { return p.msg }

func problem(reason, format string, args ...any) error {
	return &problemError{reason: reason, msg: fmt.Sprintf(format, args...)}
}

func (r *Reconciler) observeTarget(ctx context.Context, c *sluicev1beta1.Canary, o *observed) error {
	ref := c.Spec.TargetRef
	target, err := workload.NewTarget(ref)
	if err != nil {
		return problem("UnsupportedTarget", "spec.targetRef.kind: %v", err)
	}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: ref.Name}, target); apierrors.IsNotFound(err) {
		return nil
	} else if meta.IsNoMatchError(err) {
		return problem("UnsupportedTarget", "spec.targetRef: %s %s is not served by this cluster: %v", ref.APIVersion, ref.Kind, err)
	} else if err != nil {
		return fmt.Errorf("get %s %s: %w", ref.Kind, ref.Name, err)
	}
	o.target = target
	if workload.IsKnative(target) && workload.KnativeLatestRevision(target) == "" {
		// Nothing to make the primary of yet; Knative's status update
		// wakes the Canary.
		return problem("TargetNotReady", "spec.targetRef: Knative Service %s has no Revision yet: is Knative Serving running?", ref.Name)
	}

	configs, err := r.observeConfigs(ctx, c, target, o)
	if err != nil {
		return err
	}

	analysis := c.Spec.Analysis
	hash := workload.PodTemplateHash(target)
	o.in.Target = plan.Target{
		Workload: plan.Workload{
			Exists:   true,
			Revision: workload.Revision(hash, configs),
			Ready:    plan.Readiness(workload.ReadinessOf(target, threshold(analysis.CanaryReadyThreshold))),
		},
		PodTemplateHash: hash,
		Configs:         configs,
		ScaledToZero:    workload.ScaledToZero(target),
	}

	if workload.IsKnative(target) {
		// The primary is a Revision of the same Knative Service, named in
		// its annotation; it was ready when it was promoted.
		if rev := workload.KnativePrimaryRevision(target); rev != "" {
			o.in.Primary = plan.Workload{Exists: true, Revision: rev, Ready: plan.Readiness{Ready: true}}
		}
		return nil
	}
	primary, _ := workload.NewTarget(ref)
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: ref.Name + workload.PrimarySuffix}, primary); err == nil {
		o.primary = primary
		o.in.Primary = plan.Workload{
			Exists:   true,
			Revision: primary.GetAnnotations()[sluicev1beta1.RevisionAnnotation],
			Ready:    plan.Readiness(workload.ReadinessOf(primary, threshold(analysis.PrimaryReadyThreshold))),
		}
	} else if !apierrors.IsNotFound(err) {
		return fmt.Errorf("get %s %s%s: %w", ref.Kind, ref.Name, workload.PrimarySuffix, err)
	}

	if a := c.Spec.AutoscalerRef; a != nil {
		observe, ok := autoscalers()[a.Kind]
		if !ok {
			return problem("UnsupportedAutoscaler", "spec.autoscalerRef.kind %s is not supported", a.Kind)
		}
		as, err := observe(ctx, r, c)
		if err != nil {
			return err
		}
		o.autoscaler = as
	}
	return nil
}

// observeConfigs reads the tracked ConfigMaps and Secrets the target's
// pods read, into o, and returns their checksums. A Service target has no
// pods, and so no configs.
func (r *Reconciler) observeConfigs(ctx context.Context, c *sluicev1beta1.Canary, target client.Object, o *observed) (map[string]string, error) {
	template := workload.PodTemplate(target)
	if template == nil {
		return nil, nil
	}
	read, err := configtrack.Read(ctx, r.Client, c.Namespace, &template.Spec)
	var missing *configtrack.MissingError
	if errors.As(err, &missing) {
		return nil, problem("ConfigNotFound", "%s %s, which %s %s reads, not found", missing.Ref.Kind, missing.Ref.Name, c.Spec.TargetRef.Kind, c.Spec.TargetRef.Name)
	} else if err != nil {
		return nil, err
	}
	configs := configtrack.Checksums(read, r.ConfigTracking)
	for _, cfg := range read {
		if _, ok := configs[cfg.Ref.Key()]; ok {
			o.configs = append(o.configs, cfg.Object)
		}
	}
	return configs, nil
}

func threshold(p *int) int {
	if p == nil {
		return sluicev1beta1.DefaultReadyThreshold
	}
	return *p
}

// requestOf reads the Canary's manual request annotation, if it has one.
func requestOf(c *sluicev1beta1.Canary) *plan.Request {
	value, ok := c.Annotations[sluicev1beta1.RequestAnnotation]
	if !ok {
		return nil
	}
	return plan.RequestFromAnnotation(value)
}

// blockOn blocks the Canary on a router error its author must fix, and
// reports whether it did. An error that a retry may fix, or one met
// while something else already blocks the Canary, is left to the caller.
func (o *observed) blockOn(err error) bool {
	var spec *router.SpecError
	if o.in.Blocked != nil || !errors.As(err, &spec) {
		return false
	}
	o.in.Blocked = &plan.Problem{Reason: plan.ReasonRoutingInvalid, Message: spec.Error()}
	return true
}

// routable marks the problem that blocks o as one its router can still
// act through: an abort may move traffic back.
func routable(o *observed) *observed {
	o.in.Blocked.Routable = true
	return o
}
