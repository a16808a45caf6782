// Command backend is a stand-in application for traffic tests and the
// demo: it answers every HTTP request with its name, on each address it is
// given, so that a test can count which backend a proxy chose.
//
//	backend --listen 10.77.0.2:8081=primary --listen 10.77.0.2:8082=canary
package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

type listeners []string

func (l *listeners) String() string     { return strings.Join(*l, ",") }
func (l *listeners) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	var ls listeners
	flag.Var(&ls, "listen", "address=name to serve; repeatable")
	flag.Parse()
	if len(ls) == 0 {
		fmt.Fprintln(os.Stderr, "backend: at least one --listen address=name is required")
		os.Exit(2)
	}
	errs := make(chan error, len(ls))
	for _, l := range ls {
		addr, name, ok := strings.Cut(l, "=")
		if !ok {
			fmt.Fprintf(os.Stderr, "backend: --listen %q: want address=name\n", l)
			os.Exit(2)
		}
		listener, err := net.Listen("tcp", addr)
		if err != nil {
			fmt.Fprintf(os.Stderr, "backend: listen on %s: %v\n", addr, err)
			os.Exit(1)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("X-Backend", name)
			fmt.Fprintln(w, name)
		})}
		go func() { errs <- srv.Serve(listener) }()
	}
	// Ready: tests wait for this line.
	fmt.Println("serving")
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, os.Interrupt)
	select {
	case <-signals:
	case err := <-errs:
		if !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, "backend:", err)
			os.Exit(1)
		}
	}
}
