package helmrelease

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"helm.sh/helm/v4/pkg/action"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/kube"
	"helm.sh/helm/v4/pkg/postrenderer"
	"helm.sh/helm/v4/pkg/release/common"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	"helm.sh/helm/v4/pkg/storage/driver"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	syncv2 "sluice.dev/sluice/api/sync/v2"
)

// runner runs the Helm SDK's actions on one release, with Helm's own
// storage (Secrets in the storage namespace), so that the helm CLI sees
// the same releases.
type runner struct {
	cfg       *action.Configuration
	name      string
	namespace string
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
	return &runner{cfg: cfg, name: name, namespace: namespace}, nil
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

// waitStrategy waits with kstatus unless waiting is off; hooks are
// always waited for.
func waitStrategy(disable bool) kube.WaitStrategy {
	if disable {
		return kube.HookOnlyStrategy
	}
	return kube.StatusWatcherStrategy
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
}

func (r *runner) install(ctx context.Context, ch *chart.Chart, values map[string]any, o actionOptions) error {
	_, err := r.newInstall(o).RunWithContext(ctx, ch, values)
	return err
}

// newInstall is Helm's install as the HelmRelease configures it.
func (r *runner) newInstall(o actionOptions) *action.Install {
	install := action.NewInstall(r.cfg)
	install.ReleaseName, install.Namespace = r.name, r.namespace
	install.Timeout, install.WaitStrategy = o.timeout, waitStrategy(o.disableWait)
	install.ServerSideApply = true
	install.CreateNamespace = o.createNS
	install.PostRenderer = o.post
	in := o.install
	install.DisableHooks, install.Replace = in.DisableHooks, in.Replace
	install.DisableOpenAPIValidation, install.SkipSchemaValidation = in.DisableOpenAPIValidation, in.DisableSchemaValidation
	// Flux's defaults: adopt objects no release owns, wait for Jobs.
	install.TakeOwnership = !in.DisableTakeOwnership
	install.WaitForJobs = !o.disableWait && !in.DisableWaitForJobs
	install.SkipCRDs = in.SkipCRDs || in.CRDs == crdsSkip
	return install
}

func (r *runner) upgrade(ctx context.Context, ch *chart.Chart, values map[string]any, o actionOptions) error {
	if err := r.upgradeCRDs(ch, o.upgrade.CRDs); err != nil {
		return err
	}
	_, err := r.newUpgrade(o).RunWithContext(ctx, r.name, ch, values)
	return err
}

// newUpgrade is Helm's upgrade as the HelmRelease configures it.
func (r *runner) newUpgrade(o actionOptions) *action.Upgrade {
	upgrade := action.NewUpgrade(r.cfg)
	upgrade.Namespace = r.namespace
	upgrade.Timeout, upgrade.WaitStrategy = o.timeout, waitStrategy(o.disableWait)
	upgrade.MaxHistory = o.maxHistory
	// The values are the whole truth at each upgrade, as in Flux, unless
	// preserveValues merges them over the last release's.
	up := o.upgrade
	upgrade.ResetValues, upgrade.ReuseValues = !up.PreserveValues, up.PreserveValues
	upgrade.ServerSideApply = "true"
	upgrade.PostRenderer = o.post
	upgrade.DisableHooks, upgrade.CleanupOnFail = up.DisableHooks, up.CleanupOnFail
	upgrade.DisableOpenAPIValidation, upgrade.SkipSchemaValidation = up.DisableOpenAPIValidation, up.DisableSchemaValidation
	upgrade.TakeOwnership = !up.DisableTakeOwnership
	upgrade.WaitForJobs = !o.disableWait && !up.DisableWaitForJobs
	if up.Force {
		// Helm refuses a forced replace together with server-side apply.
		upgrade.ServerSideApply, upgrade.ForceReplace = "false", true
	}
	return upgrade
}

// What HelmRelease install.crds and upgrade.crds ask of the chart's crds/
// folder.
const (
	crdsSkip          = "Skip"
	crdsCreate        = "Create"
	crdsCreateReplace = "CreateReplace"
)

// upgradeCRDs creates the chart's CRDs that are missing (Create), or
// creates and updates them all (CreateReplace), before an upgrade, which
// in Helm never touches them. It goes through the release's Helm client,
// so under the HelmRelease's service account.
func (r *runner) upgradeCRDs(ch *chart.Chart, policy string) error {
	if policy != crdsCreate && policy != crdsCreateReplace {
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
	if policy == crdsCreate {
		for _, res := range all {
			if _, err := r.cfg.KubeClient.Create(kube.ResourceList{res}); err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("create CRD %s: %w", res.Name, err)
			}
		}
		return nil
	}
	// Applying the list over itself creates what is missing and updates
	// the rest, deleting nothing.
	if _, err := r.cfg.KubeClient.Update(all, all, kube.ClientUpdateOptionServerSideApply(true, true)); err != nil {
		return fmt.Errorf("create or replace the CRDs of chart %s: %w", ch.Name(), err)
	}
	return nil
}

// test runs the chart's test hooks.
func (r *runner) test(timeout time.Duration) error {
	test := action.NewReleaseTesting(r.cfg)
	test.Namespace, test.Timeout = r.namespace, timeout
	_, shutdown, err := test.Run(r.name)
	if shutdown != nil {
		_ = shutdown()
	}
	return err
}

// rollback returns to the previous revision.
func (r *runner) rollback(timeout time.Duration, rb syncv2.Rollback, maxHistory int) error {
	return r.newRollback(timeout, rb, maxHistory).Run(r.name)
}

// newRollback is Helm's rollback as the HelmRelease configures it.
func (r *runner) newRollback(timeout time.Duration, rb syncv2.Rollback, maxHistory int) *action.Rollback {
	rollback := action.NewRollback(r.cfg)
	rollback.Timeout, rollback.WaitStrategy = timeout, waitStrategy(rb.DisableWait)
	rollback.WaitForJobs = !rb.DisableWait && !rb.DisableWaitForJobs
	rollback.MaxHistory = maxHistory
	rollback.ServerSideApply = "true"
	rollback.DisableHooks, rollback.CleanupOnFail = rb.DisableHooks, rb.CleanupOnFail
	if rb.Force {
		rollback.ServerSideApply, rollback.ForceReplace = "false", true
	}
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
	uninstall.WaitStrategy = waitStrategy(un.DisableWait)
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
