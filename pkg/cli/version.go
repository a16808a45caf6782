package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/discovery"
)

// versionTimeout bounds the server version request: the client version
// is printed either way, so an unreachable server should not hold it up.
const versionTimeout = 10 * time.Second

// versions is what `version -o json|yaml` prints.
type versions struct {
	ClientVersion string        `json:"clientVersion"`
	ServerVersion *version.Info `json:"serverVersion,omitempty"`
}

func newVersionCmd(g *globals, clientVersion string) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of sluicectl and, when it is reachable, of the API server",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel, _ := g.withTimeout(cmd.Context(), versionTimeout)
			defer cancel()
			v := versions{ClientVersion: clientVersion}
			server, err := g.serverVersion(ctx)
			if err != nil {
				// Not an error: the client's version is what was asked for
				// first, and it is known.
				fmt.Fprintf(g.streams.Err, "Server version unavailable: %v\n", err)
			}
			v.ServerVersion = server
			if g.output != outputTable {
				return g.print(v)
			}
			fmt.Fprintf(g.streams.Out, "Client Version: %s\n", v.ClientVersion)
			if server != nil {
				fmt.Fprintf(g.streams.Out, "Server Version: %s\n", server.GitVersion)
			}
			return nil
		},
	}
}

// serverVersion asks the API server for its version. It does not use
// the discovery client's ServerVersion, which cannot be cancelled.
func (g *globals) serverVersion(ctx context.Context) (*version.Info, error) {
	cfg, err := g.restConfig()
	if err != nil {
		return nil, err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("create a discovery client for %s: %w", cfg.Host, err)
	}
	body, err := dc.RESTClient().Get().AbsPath("/version").Do(ctx).Raw()
	if err != nil {
		return nil, fmt.Errorf("get the version of %s: %w", cfg.Host, err)
	}
	info := &version.Info{}
	if err := json.Unmarshal(body, info); err != nil {
		return nil, fmt.Errorf("decode the version of %s: %w", cfg.Host, err)
	}
	return info, nil
}
