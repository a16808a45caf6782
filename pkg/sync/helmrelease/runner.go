package helmrelease

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"helm.sh/helm/v4/pkg/action"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/kube"
	"helm.sh/helm/v4/pkg/postrenderer"
	"helm.sh/helm/v4/pkg/release/common"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	"helm.sh/helm/v4/pkg/storage/driver"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	syncv2 "sluice.dev/sluice/api/sync/v2"
	"sluice.dev/sluice/pkg/sync/handoff"
	"sluice.dev/sluice/pkg/sync/health"
)

// runner runs the Helm SDK's actions on one release, with Helm's own
// storage (Secrets in the storage namespace), so that the helm CLI sees
// the same releases.
type runner struct {
	cfg       *action.Configuration
	name      string
	namespace string
	// getter and log made cfg; a runner of another release of the same
	// HelmRelease (at) shares them.
	getter *getter
	log    *slog.Logger
	// cluster reads the released objects where Helm released them.
	cluster cluster
	// legacyWait is spec.waitStrategy.name legacy: every action waits
	// with Helm 3's waiter instead of kstatus.
	legacyWait bool
}

// cluster is how the objects of a release are read beside Helm's own
// actions, on the cluster they were released to: drift detection, the
// wait for what no Canary releases, and the Canary hand-off.
type cluster struct {
	// live reads and applies without a cache.
	live client.Client
	// guard reads that cluster's Canaries.
	guard handoff.Guard
	// health judges the objects by kstatus.
	health *health.Checker
}

// newRunner prepares actions on release name, whose objects go to
// namespace and whose records are kept in storageNamespace.
func newRunner(g *getter, name, namespace, storageNamespace string, log *slog.Logger) (*runner, error) {
	cfg := action.NewConfiguration()
	cfg.SetLogger(log.Handler())
	if err := cfg.Init(g.inNamespace(namespace), storageNamespace, "secret"); err != nil {
		return nil, fmt.Errorf("init Helm for release %s: %w", name, err)
	}
	if kc, ok := cfg.KubeClient.(*kube.Client); ok {
		kc.Namespace = namespace
	}
	return &runner{cfg: cfg, name: name, namespace: namespace, getter: g, log: log}, nil
}

// at is a runner of release name, in namespace, stored in storage, as
// the same identity on the same cluster: the release a HelmRelease made
// before its target changed.
func (r *runner) at(name, namespace, storage string) (*runner, error) {
	out, err := newRunner(r.getter, name, namespace, storage, r.log)
	if err != nil {
		return nil, err
	}
	out.cluster, out.legacyWait = r.cluster, r.legacyWait
	return out, nil
}

// last is the latest revision, nil when there is none.
func (r *runner) last() (*releasev1.Release, error) {
	rel, err := r.cfg.Releases.Last(r.name)
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read release %s: %w", r.name, err)
	}
	return asRelease(rel)
}

// history lists the revisions, newest first.
func (r *runner) history() ([]*releasev1.Release, error) {
	all, err := r.cfg.Releases.History(r.name)
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read history of release %s: %w", r.name, err)
	}
	out, err := asReleases(all)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b *releasev1.Release) int { return b.Version - a.Version })
	return out, nil
}

// asReleases converts what Helm's storage lists.
func asReleases[T any](all []T) ([]*releasev1.Release, error) {
	out := make([]*releasev1.Release, 0, len(all))
	for _, a := range all {
		rel, err := asRelease(a)
		if err != nil {
			return nil, err
		}
		out = append(out, rel)
	}
	return out, nil
}

func asRelease(r any) (*releasev1.Release, error) {
	rel, ok := r.(*releasev1.Release)
	if !ok {
		return nil, fmt.Errorf("release of type %T is not a Helm v1 release", r)
	}
	return rel, nil
}

// waitStrategy is spec.waitStrategy for an action: kstatus (poller, the
// default) or Helm 3's legacy waiter, unless waiting is off; hooks are
// always waited for.
func (r *runner) waitStrategy(disable bool) kube.WaitStrategy {
	switch {
	case disable:
		return kube.HookOnlyStrategy
	case r.legacyWait:
		return kube.LegacyStrategy
	}
	return kube.StatusWatcherStrategy
}

// serverSideApply resolves upgrade.serverSideApply or
// rollback.serverSideApply: enabled, disabled, or auto (the default),
// which follows how the release was applied (Helm's release ApplyMethod:
// ssa or csa, none for a release made before Helm 4), as Helm and Flux
// resolve it.
func serverSideApply(mode, applyMethod string) bool {
	switch mode {
	case syncv2.ServerSideApplyEnabled:
		return true
	case syncv2.ServerSideApplyDisabled:
		return false
	}
	return applyMethod == string(releasev1.ApplyMethodServerSideApply)
}

// postRenderStrategy is spec.postRenderStrategy as Helm's: combined
// when unset, Helm 4's default and Flux's.
func postRenderStrategy(s string) action.PostRenderStrategy {
	if s == "" {
		return action.PostRenderStrategyCombined
	}
	return action.PostRenderStrategy(s)
}

// actionOptions are what install and upgrade share, and the
// HelmRelease's settings of each (zero when it has none).
type actionOptions struct {
	timeout     time.Duration
	disableWait bool
	maxHistory  int
	post        postrenderer.PostRenderer
	createNS    bool
	install     syncv2.Install
	upgrade     syncv2.Upgrade
	// health are spec.healthCheckExprs, which judge the released objects
	// of their kinds; wait is Helm's wait made to use them.
	health health.Exprs
	wait   []kube.WaitOption
	// postRenderStrategy is spec.postRenderStrategy.
	postRenderStrategy string
	// lastApplyMethod is how the latest revision was applied, which
	// upgrade.serverSideApply auto follows.
	lastApplyMethod string
	// labels are stored on the release record (releaseLabels).
	labels map[string]string
}

func (r *runner) install(ctx context.Context, ch *chart.Chart, values map[string]any, o actionOptions) error {
	// Helm's install creates only the CRDs that are missing; Sluice
	// applies them itself under CreateReplace, as Flux does, and Helm
	// then skips them (newInstall).
	if o.install.CRDs == syncv2.CRDsCreateReplace && !o.install.SkipCRDs {
		if err := r.applyCRDs(ch, syncv2.CRDsCreateReplace); err != nil {
			return err
		}
	}
	_, err := r.newInstall(o).RunWithContext(ctx, ch, values)
	return err
}

// newInstall is Helm's install as the HelmRelease configures it.
func (r *runner) newInstall(o actionOptions) *action.Install {
	install := action.NewInstall(r.cfg)
	install.ReleaseName, install.Namespace = r.name, r.namespace
	install.Timeout, install.WaitStrategy = o.timeout, r.waitStrategy(o.disableWait)
	install.CreateNamespace = o.createNS
	install.PostRenderer, install.PostRenderStrategy = o.post, postRenderStrategy(o.postRenderStrategy)
	install.WaitOptions = o.wait
	install.Labels = o.labels
	in := o.install
	// Flux's default is server-side apply, which always forces conflicts
	// with other field managers.
	install.ServerSideApply = in.ServerSideApply == nil || *in.ServerSideApply
	install.ForceConflicts = install.ServerSideApply
	install.DisableHooks, install.Replace = in.DisableHooks, in.Replace
	install.DisableOpenAPIValidation, install.SkipSchemaValidation = in.DisableOpenAPIValidation, in.DisableSchemaValidation
	// Flux's defaults: adopt objects no release owns, wait for Jobs.
	install.TakeOwnership = !in.DisableTakeOwnership
	install.WaitForJobs = !o.disableWait && !in.DisableWaitForJobs
	install.SkipCRDs = in.SkipCRDs || in.CRDs == syncv2.CRDsSkip || in.CRDs == syncv2.CRDsCreateReplace
	return install
}

func (r *runner) upgrade(ctx context.Context, ch *chart.Chart, values map[string]any, o actionOptions) error {
	if err := r.applyCRDs(ch, o.upgrade.CRDs); err != nil {
		return err
	}
	_, err := r.newUpgrade(o).RunWithContext(ctx, r.name, ch, values)
	return err
}

// newUpgrade is Helm's upgrade as the HelmRelease configures it.
func (r *runner) newUpgrade(o actionOptions) *action.Upgrade {
	upgrade := action.NewUpgrade(r.cfg)
	upgrade.Namespace = r.namespace
	upgrade.Timeout, upgrade.WaitStrategy = o.timeout, r.waitStrategy(o.disableWait)
	upgrade.MaxHistory = o.maxHistory
	// The values are the whole truth at each upgrade, as in Flux, unless
	// preserveValues merges them over the last release's.
	up := o.upgrade
	upgrade.ResetValues, upgrade.ReuseValues = !up.PreserveValues, up.PreserveValues
	upgrade.PostRenderer, upgrade.PostRenderStrategy = o.post, postRenderStrategy(o.postRenderStrategy)
	upgrade.WaitOptions = o.wait
	upgrade.Labels = o.labels
	upgrade.DisableHooks, upgrade.CleanupOnFail = up.DisableHooks, up.CleanupOnFail
	upgrade.DisableOpenAPIValidation, upgrade.SkipSchemaValidation = up.DisableOpenAPIValidation, up.DisableSchemaValidation
	upgrade.TakeOwnership = !up.DisableTakeOwnership
	upgrade.WaitForJobs = !o.disableWait && !up.DisableWaitForJobs
	// Resolved here, as Flux does, because server-side apply forces
	// conflicts, and Helm refuses a forced replace with either.
	ssa := serverSideApply(up.ServerSideApply, o.lastApplyMethod)
	upgrade.ServerSideApply = strconv.FormatBool(ssa)
	upgrade.ForceConflicts, upgrade.ForceReplace = ssa, up.Force && !ssa
	return upgrade
}

// crdEstablished is how long the CRDs applied are waited for, as Helm's
// install waits for those it creates.
const crdEstablished = time.Minute

// applyCRDs creates the chart's CRDs that are missing (Create), or
// creates and updates them all (CreateReplace): before an upgrade, which
// in Helm never touches them, and before an install under CreateReplace,
// where Helm would only create the missing ones. It goes through the
// release's Helm client, so under the HelmRelease's service account, and
// waits for what it created or changed to be established, so that the
// objects of those kinds in the same release can be applied.
func (r *runner) applyCRDs(ch *chart.Chart, policy string) error {
	if policy != syncv2.CRDsCreate && policy != syncv2.CRDsCreateReplace {
		return nil
	}
	var all kube.ResourceList
	for _, crd := range ch.CRDObjects() {
		res, err := r.cfg.KubeClient.Build(bytes.NewReader(crd.File.Data), false)
		if err != nil {
			return fmt.Errorf("read CRD %s of chart %s: %w", crd.Filename, ch.Name(), err)
		}
		all = append(all, res...)
	}
	if len(all) == 0 {
		return nil
	}
	var changed kube.ResourceList
	switch policy {
	case syncv2.CRDsCreate:
		for _, res := range all {
			_, err := r.cfg.KubeClient.Create(kube.ResourceList{res})
			switch {
			case apierrors.IsAlreadyExists(err):
			case err != nil:
				return fmt.Errorf("create CRD %s: %w", res.Name, err)
			default:
				changed = append(changed, res)
			}
		}
	default:
		// Applying the list over itself creates what is missing and
		// updates the rest, deleting nothing.
		if _, err := r.cfg.KubeClient.Update(all, all, kube.ClientUpdateOptionServerSideApply(true, true)); err != nil {
			return fmt.Errorf("create or replace the CRDs of chart %s: %w", ch.Name(), err)
		}
		changed = all
	}
	if len(changed) == 0 {
		return nil
	}
	return r.established(ch, changed)
}

// established waits for the CRDs to be served, then forgets what the
// API offered before, as Helm does after creating CRDs: discovery and
// the REST mapper learn the new kinds.
func (r *runner) established(ch *chart.Chart, crds kube.ResourceList) error {
	waiter, err := r.cfg.KubeClient.GetWaiter(r.waitStrategy(false))
	if err != nil {
		return fmt.Errorf("wait for the CRDs of chart %s: %w", ch.Name(), err)
	}
	if err := waiter.Wait(crds, crdEstablished); err != nil {
		return fmt.Errorf("wait for the CRDs of chart %s to be established: %w", ch.Name(), err)
	}
	r.getter.discovery.Invalidate()
	meta.MaybeResetRESTMapper(r.getter.mapper)
	return nil
}

// test runs the chart's test hooks that filters select (Helm's
// ReleaseTesting.Filters: "name" and "!name").
func (r *runner) test(timeout time.Duration, filters map[string][]string) error {
	test := action.NewReleaseTesting(r.cfg)
	test.Namespace, test.Timeout = r.namespace, timeout
	test.Filters = filters
	_, shutdown, err := test.Run(r.name)
	if shutdown != nil {
		_ = shutdown()
	}
	return err
}

// rollback returns to the previous revision.
func (r *runner) rollback(timeout time.Duration, rb syncv2.Rollback, maxHistory int) error {
	applyMethod, err := r.previousApplyMethod()
	if err != nil {
		return err
	}
	return r.newRollback(timeout, rb, maxHistory, applyMethod).Run(r.name)
}

// previousApplyMethod is how the revision a rollback returns to (the one
// before the latest, as Helm's rollback picks it) was applied, which
// rollback.serverSideApply auto follows.
func (r *runner) previousApplyMethod() (string, error) {
	last, err := r.last()
	if err != nil || last == nil || last.Version < 2 {
		// Helm's rollback says why there is nothing to return to.
		return "", err
	}
	prev, err := r.cfg.Releases.Get(r.name, last.Version-1)
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read revision %d of release %s: %w", last.Version-1, r.name, err)
	}
	rel, err := asRelease(prev)
	if err != nil {
		return "", err
	}
	return rel.ApplyMethod, nil
}

// newRollback is Helm's rollback as the HelmRelease configures it, back
// to a revision that was applied as applyMethod says.
func (r *runner) newRollback(timeout time.Duration, rb syncv2.Rollback, maxHistory int, applyMethod string) *action.Rollback {
	rollback := action.NewRollback(r.cfg)
	rollback.Timeout, rollback.WaitStrategy = timeout, r.waitStrategy(rb.DisableWait)
	rollback.WaitForJobs = !rb.DisableWait && !rb.DisableWaitForJobs
	rollback.MaxHistory = maxHistory
	rollback.DisableHooks, rollback.CleanupOnFail = rb.DisableHooks, rb.CleanupOnFail
	ssa := serverSideApply(rb.ServerSideApply, applyMethod)
	rollback.ServerSideApply = strconv.FormatBool(ssa)
	rollback.ForceConflicts, rollback.ForceReplace = ssa, rb.Force && !ssa
	return rollback
}

// uninstall removes the release and, unless kept, its records; it waits
// for the objects to go unless told not to, as Flux does.
func (r *runner) uninstall(timeout time.Duration, un syncv2.Uninstall) error {
	_, err := r.newUninstall(timeout, un).Run(r.name)
	return err
}

// newUninstall is Helm's uninstall as the HelmRelease configures it.
func (r *runner) newUninstall(timeout time.Duration, un syncv2.Uninstall) *action.Uninstall {
	uninstall := action.NewUninstall(r.cfg)
	uninstall.Timeout, uninstall.KeepHistory = timeout, un.KeepHistory
	uninstall.WaitStrategy = r.waitStrategy(un.DisableWait)
	uninstall.DisableHooks, uninstall.DeletionPropagation = un.DisableHooks, un.DeletionPropagation
	return uninstall
}

// unlock marks a release stuck in a pending state as failed. A pending
// release is left by an operator killed mid-action: Helm refuses any
// further action on it ("another operation is in progress",
// helm-controller#149), and nothing else would ever finish it.
func (r *runner) unlock(rel *releasev1.Release) error {
	from := rel.Info.Status
	rel.Info.Status = common.StatusFailed
	rel.Info.Description = fmt.Sprintf("Release unlocked from stale '%s' state", from)
	if err := r.cfg.Releases.Update(rel); err != nil {
		return fmt.Errorf("unlock release %s from %s: %w", r.name, from, err)
	}
	return nil
}

// markFailed records a release as failed, with why.
func (r *runner) markFailed(rel *releasev1.Release, cause error) error {
	rel.Info.Status = common.StatusFailed
	rel.Info.Description = "Release failed: " + cause.Error()
	if err := r.cfg.Releases.Update(rel); err != nil {
		return fmt.Errorf("mark release %s failed: %w", r.name, err)
	}
	return nil
}
