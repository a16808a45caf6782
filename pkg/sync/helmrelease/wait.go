package helmrelease

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/fluxcd/cli-utils/pkg/object"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/kube"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	syncv2 "sluice.dev/sluice/api/sync/v2"
	"sluice.dev/sluice/pkg/sync/handoff"
	"sluice.dev/sluice/pkg/sync/health"
)

// canaryKind finds a Canary among a chart's templates.
var canaryKind = regexp.MustCompile(`(?m)^kind:\s*Canary\s*$`)

// handsOff tells whether a release holds workloads a Canary releases: the
// chart ships a Canary, or the last release has Canary targets. Helm's
// own wait would then wait on the whole analysis, which can outlast any
// timeout and, when the Canary rolls back, fail the upgrade itself. The
// canary gate (handoff.Guard.Health) judges those workloads instead, and
// waitOutsideCanaries the rest.
func handsOff(ctx context.Context, c client.Client, guard handoff.Guard, ch *chart.Chart, last *releasev1.Release, namespace string) (bool, error) {
	for _, t := range ch.Templates {
		if canaryKind.Match(t.Data) {
			return true, nil
		}
	}
	for _, dep := range ch.Dependencies() {
		if ok, err := handsOff(ctx, c, guard, dep, nil, namespace); ok || err != nil {
			return ok, err
		}
	}
	if last == nil {
		return false, nil
	}
	objs, err := manifestObjects(c, last, namespace)
	if err != nil {
		return false, err
	}
	targets, err := guard.Targets(ctx, objs)
	if err != nil {
		return false, err
	}
	for _, o := range objs {
		if targets[o.GetKind()+"/"+o.GetNamespace()+"/"+o.GetName()] != nil {
			return true, nil
		}
	}
	return false, nil
}

// healthExprs are the HelmRelease's spec.healthCheckExprs, compiled: they
// judge the released objects of their kinds in place of kstatus, in Helm's
// wait and in waitOutsideCanaries.
func (r *Reconciler) healthExprs(hr *syncv2.HelmRelease) (health.Exprs, error) {
	return health.CompileExprs(&r.exprs, "spec.healthCheckExprs", hr.Spec.HealthCheckExprs)
}

// waitOptions make Helm's own wait judge the kinds of x by their
// expressions, on the cluster run releases to.
func waitOptions(ctx context.Context, run *runner, x health.Exprs) []kube.WaitOption {
	if len(x) == 0 {
		return nil
	}
	return []kube.WaitOption{kube.WithKStatusReaders(x.StatusReaders(ctx, run.cluster.live.RESTMapper())...)}
}

// waitOutsideCanaries waits, by kstatus, for the objects of a release
// that no Canary releases: everything but the Canaries, their targets
// and their apex Services.
func waitOutsideCanaries(ctx context.Context, c client.Client, checker *health.Checker, guard handoff.Guard, rel *releasev1.Release, namespace string, timeout time.Duration) error {
	objs, err := manifestObjects(c, rel, namespace)
	if err != nil {
		return err
	}
	targets, err := guard.Targets(ctx, objs)
	if err != nil {
		return err
	}
	var all object.ObjMetadataSet
	for _, o := range objs {
		all = append(all, object.UnstructuredToObjMetadata(o))
	}
	set := targets.Unreleased(all)
	if len(set) == 0 {
		return nil
	}
	if err := checker.Wait(ctx, set, timeout, min(2*time.Second, timeout/4)); err != nil {
		return fmt.Errorf("wait for the objects no Canary releases: %w", err)
	}
	return nil
}
