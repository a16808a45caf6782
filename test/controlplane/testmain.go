package controlplane

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"
)

// RunTests is a TestMain body: it starts one control plane for the whole
// test package, stores it in *into, runs the tests and stops it again, on
// Ctrl-C too. It returns the exit code for os.Exit.
//
//	var cp *controlplane.ControlPlane
//
//	func TestMain(m *testing.M) {
//		os.Exit(controlplane.RunTests(m, controlplane.Options{}, &cp))
//	}
//
// Each extra runs once the control plane is up, to start what the package
// shares (proxies, backends); its cleanup runs before the control plane
// stops.
func RunTests(m *testing.M, opts Options, into **ControlPlane, extras ...func(*ControlPlane) (cleanup func(), err error)) int {
	cp, err := Start(context.Background(), opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "start the control plane: %v\n", err)
		return 1
	}
	*into = cp
	var cleanups []func()
	defer func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}()
	for _, extra := range extras {
		cleanup, err := extra(cp)
		if err != nil {
			fmt.Fprintf(os.Stderr, "start the test environment: %v\n", err)
			_ = cp.Stop()
			return 1
		}
		cleanups = append(cleanups, cleanup)
	}

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	go func() {
		if _, ok := <-signals; ok {
			_ = cp.Stop()
			os.Exit(1)
		}
	}()

	code := m.Run()
	signal.Stop(signals)
	close(signals)
	if err := cp.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "stop the control plane: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}
