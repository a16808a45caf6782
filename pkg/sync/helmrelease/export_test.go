package helmrelease

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"time"

	"helm.sh/helm/v4/pkg/action"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/release/common"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	syncv2 "sluice.dev/sluice/api/sync/v2"
	"sluice.dev/sluice/pkg/sync/handoff"
)

// Releases lists a namespace's releases the way `helm list` does, from
// Helm's own storage.
func Releases(cfg *rest.Config, ns string) ([]*releasev1.Release, error) {
	g, err := newGetter(cfg)
	if err != nil {
		return nil, err
	}
	c := action.NewConfiguration()
	c.SetLogger(slog.DiscardHandler)
	if err := c.Init(g.inNamespace(ns), ns, "secret"); err != nil {
		return nil, err
	}
	list := action.NewList(c)
	list.All = true
	rels, err := list.Run()
	if err != nil {
		return nil, err
	}
	return asReleases(rels)
}

// InstallPending installs ch as release name and leaves it
// pending-install, as an operator killed mid-install does.
func InstallPending(ctx context.Context, cfg *rest.Config, name, ns string, ch *chart.Chart) error {
	g, err := newGetter(cfg)
	if err != nil {
		return err
	}
	run, err := newRunner(g, name, ns, ns, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	if err := run.install(ctx, ch, nil, actionOptions{timeout: time.Minute}); err != nil {
		return err
	}
	rel, err := run.last()
	if err != nil {
		return err
	}
	rel.Info.Status = common.StatusPendingInstall
	if err := run.cfg.Releases.Update(rel); err != nil {
		return fmt.Errorf("mark release %s pending: %w", name, err)
	}
	return nil
}

// PostRender runs hr's post-renderers over a rendered manifest, as Helm
// does after it renders the chart, with the Canary hand-off reading
// through c.
func PostRender(ctx context.Context, c client.Client, hr *syncv2.HelmRelease, manifest string) ([]*unstructured.Unstructured, error) {
	p := &postRenderer{ctx: ctx, hr: hr, namespace: hr.Namespace, guard: handoff.Guard{Client: c}}
	out, err := p.Run(bytes.NewBufferString(manifest))
	if err != nil {
		return nil, err
	}
	return readManifest(out.String(), hr.Namespace)
}
