// Package cli is sluicectl, Sluice's command line. It reads Canaries and
// the sync core's objects and asks the operator to act on them, the way the
// flux and kubectl CLIs do: it only reads objects and writes annotations
// and spec fields, and leaves all the work to the operator.
package cli

import (
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
)

// Streams are where the commands write.
type Streams struct {
	// Out receives what a command was asked for: tables, objects, status.
	Out io.Writer
	// Err receives progress and warnings. Errors are returned by Execute,
	// not printed, so that the caller decides how they end the process.
	Err io.Writer
}

// Option configures the command tree.
type Option func(*settings)

type settings struct {
	version string
}

// WithVersion sets the version that `sluicectl version` reports; it is
// "dev" by default.
func WithVersion(version string) Option {
	return func(s *settings) { s.version = version }
}

// NewRoot builds the sluicectl command tree, writing to streams. Each call
// returns an independent tree: the flags' values live in it, not in
// package variables, so that tests can run several at once.
func NewRoot(streams Streams, opts ...Option) *cobra.Command {
	s := settings{version: "dev"}
	for _, o := range opts {
		o(&s)
	}
	g := &globals{streams: streams}
	root := &cobra.Command{
		Use:   "sluicectl",
		Short: "Inspect and drive Sluice Canaries and its Git/Helm sync core",
		Long: `sluicectl shows the state of Sluice's Canaries, GitRepositories,
HelmRepositories, HelmCharts, Kustomizations and HelmReleases, and asks the
operator to reconcile, suspend or resume them, and to promote, abort, retry,
pause or resume a Canary's release; ` + "`sluicectl dashboard`" + ` does the same in a
browser.`,
		// Usage after a failed request only hides the error.
		SilenceUsage: true,
		// main prints the error once, with its exit code.
		SilenceErrors: true,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			return g.validate()
		},
	}
	root.SetOut(streams.Out)
	root.SetErr(streams.Err)
	g.addFlags(root)
	root.AddCommand(
		newVersionCmd(g, s.version),
		newGetCmd(g),
		newStatusCmd(g),
		newReconcileCmd(g),
		newSuspendCmd(g),
		newResumeCmd(g),
		newPromoteCmd(g),
		newAbortCmd(g),
		newRetryCmd(g),
		newPauseCmd(g),
		newFreezeCmd(g),
		newUnfreezeCmd(g),
		newDiffCmd(g),
		newCreateCmd(g),
		newPushCmd(g),
		newPullCmd(g),
		newTagCmd(g),
		newInstallCmd(g),
		newBootstrapCmd(g, s.version),
		newCheckCmd(g),
		newDashboardCmd(g),
	)
	return root
}

// PluginName is the binary name under which kubectl runs sluicectl as
// the plugin `kubectl sluice`.
const PluginName = "kubectl-sluice"

// SetBinaryName adapts root to the name the binary was run as (os.Args[0]):
// run as kubectl-sluice, its help reads `kubectl sluice ...`.
func SetBinaryName(root *cobra.Command, arg0 string) {
	name := strings.TrimSuffix(filepath.Base(arg0), ".exe")
	if name != PluginName {
		return
	}
	root.Use = name
	if root.Annotations == nil {
		root.Annotations = map[string]string{}
	}
	// The display name is only for help: the command's Name, which
	// completion scripts are named after, stays the binary's.
	root.Annotations[cobra.CommandDisplayNameAnnotation] = "kubectl sluice"
}
