package cli

import (
	"fmt"
	"net"

	"github.com/spf13/cobra"

	"sluice.dev/sluice/pkg/dashboard"
)

// defaultDashboardAddress is where `sluicectl dashboard` listens: loopback
// only, on the port `kubectl argo rollouts dashboard` uses.
const defaultDashboardAddress = "127.0.0.1:3100"

func newDashboardCmd(g *globals) *cobra.Command {
	address := defaultDashboardAddress
	cmd := &cobra.Command{
		Use:   "dashboard",
		Short: "Serve a web dashboard of the Canaries and the sync objects",
		Long: `dashboard serves a web UI: the Canaries of every namespace with their phase,
weight, failed checks, image and Git revision; one Canary's releases, steps,
metric values against their thresholds, Events and conditions; and the
GitRepositories, Kustomizations and HelmReleases behind them. Pages update
live over one watch per open tab, and carry the same actions as the CLI
(promote, abort, retry, pause, resume, reconcile, suspend).

It reads and acts as the kubeconfig's user, so Kubernetes RBAC decides what
a person sees and may do. It listens on loopback unless --address says
otherwise, and it serves until interrupted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.restConfig()
			if err != nil {
				return err
			}
			if host, _, err := net.SplitHostPort(address); err == nil {
				if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
					fmt.Fprintf(g.streams.Err, "Warning: the dashboard listens on %s, beyond this machine; anyone who reaches it acts as your kubeconfig's user once they have the page\n", address)
				}
			}
			s, err := dashboard.Listen(cfg, address, dashboard.Options{
				ErrorLog: func(err error) { fmt.Fprintln(g.streams.Err, err) },
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(g.streams.Out, "Sluice dashboard: %s\n", s.URL)
			return s.Serve(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&address, "address", defaultDashboardAddress, "Address (host:port) to listen on; port 0 picks a free one.")
	return cmd
}
