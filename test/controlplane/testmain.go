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
func RunTests(m *testing.M, opts Options, into **ControlPlane) int {
	cp, err := Start(context.Background(), opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "start the control plane: %v\n", err)
		return 1
	}
	*into = cp

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
