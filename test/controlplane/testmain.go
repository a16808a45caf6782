package controlplane

import (
	"context"
	"flag"
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
//
// A fuzzing run that runs no test (go test -run '^$' -fuzz X, as make fuzz
// does) and each fuzz worker process start no control plane: a fuzz
// target is a pure function, and a control plane in every worker would
// spend the fuzzing time starting API servers. *into stays nil then.
func RunTests(m *testing.M, opts Options, into **ControlPlane, extras ...func(*ControlPlane) (cleanup func(), err error)) int {
	if fuzzingOnly() {
		return m.Run()
	}
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

// fuzzingOnly reports whether the test binary runs a fuzz target and no
// test: it is a fuzz worker, or it fuzzes with -run '^$'. TestMain may
// read the testing flags once they are parsed, which m.Run would do.
func fuzzingOnly() bool {
	if !flag.Parsed() {
		flag.Parse()
	}
	value := func(name string) string {
		if f := flag.Lookup(name); f != nil {
			return f.Value.String()
		}
		return ""
	}
	return value("test.fuzzworker") == "true" || value("test.fuzz") != "" && value("test.run") == "^$"
}
