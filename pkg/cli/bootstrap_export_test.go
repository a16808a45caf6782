package cli

import (
	"context"
	"io"
)

// BootstrapWaits are the waits of a bootstrap's last step, by kind, run
// on their own for the GitRepository and the Kustomization named after
// namespace, as the user of kubeconfig; progress goes to errOut.
func BootstrapWaits(kubeconfig, namespace string, errOut io.Writer) map[string]func(ctx context.Context, revision string) error {
	r := func() (*bootstrapRun, error) {
		g := &globals{streams: Streams{Out: io.Discard, Err: errOut}, kubeconfig: kubeconfig}
		c, err := g.kubeClient()
		if err != nil {
			return nil, err
		}
		return &bootstrapRun{g: g, c: c, layout: bootstrapLayout{namespace: namespace}}, nil
	}
	return map[string]func(ctx context.Context, revision string) error{
		"GitRepository": func(ctx context.Context, revision string) error {
			run, err := r()
			if err != nil {
				return err
			}
			return run.waitSource(ctx, revision)
		},
		"Kustomization": func(ctx context.Context, revision string) error {
			run, err := r()
			if err != nil {
				return err
			}
			return run.waitKustomization(ctx, revision)
		},
	}
}
