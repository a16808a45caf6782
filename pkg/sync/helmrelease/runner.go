package helmrelease

import (
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

// actionOptions are what install and upgrade share.
type actionOptions struct {
	timeout     time.Duration
	disableWait bool
	maxHistory  int
	post        postrenderer.PostRenderer
	createNS    bool
}

func (r *runner) install(ctx context.Context, ch *chart.Chart, values map[string]any, o actionOptions) error {
	install := action.NewInstall(r.cfg)
	install.ReleaseName, install.Namespace = r.name, r.namespace
	install.Timeout, install.WaitStrategy = o.timeout, waitStrategy(o.disableWait)
	install.ServerSideApply = true
	install.CreateNamespace = o.createNS
	install.PostRenderer = o.post
	_, err := install.RunWithContext(ctx, ch, values)
	return err
}

func (r *runner) upgrade(ctx context.Context, ch *chart.Chart, values map[string]any, o actionOptions) error {
	upgrade := action.NewUpgrade(r.cfg)
	upgrade.Namespace = r.namespace
	upgrade.Timeout, upgrade.WaitStrategy = o.timeout, waitStrategy(o.disableWait)
	upgrade.MaxHistory = o.maxHistory
	// The values are the whole truth at each upgrade, as in Flux.
	upgrade.ResetValues = true
	upgrade.ServerSideApply = "true"
	upgrade.PostRenderer = o.post
	_, err := upgrade.RunWithContext(ctx, r.name, ch, values)
	return err
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
func (r *runner) rollback(timeout time.Duration, disableWait bool, maxHistory int) error {
	rollback := action.NewRollback(r.cfg)
	rollback.Timeout, rollback.WaitStrategy = timeout, waitStrategy(disableWait)
	rollback.MaxHistory = maxHistory
	rollback.ServerSideApply = "true"
	return rollback.Run(r.name)
}

// uninstall removes the release and, unless kept, its records.
func (r *runner) uninstall(timeout time.Duration, keepHistory bool) error {
	uninstall := action.NewUninstall(r.cfg)
	uninstall.Timeout, uninstall.KeepHistory = timeout, keepHistory
	uninstall.WaitStrategy = kube.HookOnlyStrategy
	_, err := uninstall.Run(r.name)
	return err
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
