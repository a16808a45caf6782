// Command demo shows Sluice at work on this machine, with no cluster: it
// starts the test control plane, Prometheus, Traefik as the Gateway API
// implementation, and a demo app whose processes run in a network
// namespace, then releases two versions of the app under load. Sluice
// must promote v2, which is healthy, and roll back v3, which fails 5% of
// its requests. It prints each step of both rollouts, then a summary, and
// exits non-zero when either ends wrongly. `make demo` builds what it
// needs and runs it; Ctrl-C stops everything it started.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-logr/logr"
	"golang.org/x/term"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

func main() {
	var opts Options
	flag.StringVar(&opts.AppBinary, "app", "", "Path of the demo app (test/demoapp); empty builds it.")
	flag.IntVar(&opts.RequestsPerSecond, "rps", 50, "Requests per second sent through Traefik.")
	flag.DurationVar(&opts.RolloutTimeout, "rollout-timeout", 0, "Longest a release may take; 0 is 3 minutes.")
	flag.StringVar(&opts.DashboardAddress, "dashboard-address", dashboardAddress, "Address of the dashboard; a free port when it is taken.")
	flag.BoolVar(&opts.Hold, "hold", interactive(os.Stdin), "Keep running after the releases, for the dashboard, until Ctrl-C (default: when the input is a terminal).")
	flag.Parse()
	// The operator logs to its file through the logger Run gives it. Only
	// the caches' reflectors log through controller-runtime's global
	// logger (starting, stopping, retrying a watch); unset, it ends the
	// demo's output with a warning and a stack.
	ctrllog.SetLogger(logr.Discard())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := Run(ctx, os.Stdout, opts); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		stop()
		os.Exit(1)
	}
}

// interactive reports whether a person runs the demo at a terminal: in is
// one. A character device is not enough: /dev/null is one too, and a demo
// started with no input must end.
func interactive(in *os.File) bool {
	return term.IsTerminal(int(in.Fd()))
}
