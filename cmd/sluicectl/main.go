// Command sluicectl is Sluice's command line: it shows Canaries and the sync
// core's objects and asks the operator to reconcile, suspend or resume
// them. Installed as kubectl-sluice, it runs as `kubectl sluice`.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"sluice.dev/sluice/pkg/cli"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	root := cli.NewRoot(cli.Streams{Out: os.Stdout, Err: os.Stderr}, cli.WithVersion(version))
	cli.SetBinaryName(root, os.Args[0])
	// Ctrl-C cancels a wait instead of killing the process, so that it
	// ends with an error rather than half a line.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := root.ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
	}
	os.Exit(cli.ExitCode(err))
}
