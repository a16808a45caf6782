// Command backend is a stand-in application for traffic tests and the
// demo: it answers every HTTP request with its name, on each address it is
// given, so that a test can count which backend a proxy chose. A listener
// may also fail a share of its requests with 500 and answer after a
// delay, so that a proxy's metrics have a known error rate and latency:
//
//	backend --listen 10.77.0.2:8081=primary --listen 10.77.0.2:8082=canary
//	backend --listen 10.77.0.2:8083=canary,errors=0.1,delay=300ms
package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
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
		addr, spec, ok := strings.Cut(l, "=")
		if !ok {
			fmt.Fprintf(os.Stderr, "backend: --listen %q: want address=name[,errors=RATIO][,delay=DURATION]\n", l)
			os.Exit(2)
		}
		a, err := parseAnswer(spec)
		if err != nil {
			fmt.Fprintf(os.Stderr, "backend: --listen %q: %v\n", l, err)
			os.Exit(2)
		}
		listener, err := net.Listen("tcp", addr)
		if err != nil {
			fmt.Fprintf(os.Stderr, "backend: listen on %s: %v\n", addr, err)
			os.Exit(1)
		}
		srv := &http.Server{Handler: a}
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

// answer is how one listener answers.
type answer struct {
	name string
	// errors is the share of requests answered 500: exactly, request by
	// request, so that a test knows the rate without sampling noise.
	errors float64
	delay  time.Duration
	served atomic.Int64
}

func parseAnswer(spec string) (*answer, error) {
	parts := strings.Split(spec, ",")
	a := &answer{name: parts[0]}
	for _, p := range parts[1:] {
		k, v, _ := strings.Cut(p, "=")
		var err error
		switch k {
		case "errors":
			a.errors, err = strconv.ParseFloat(v, 64)
			if err == nil && (a.errors < 0 || a.errors > 1) {
				err = fmt.Errorf("%g is not between 0 and 1", a.errors)
			}
		case "delay":
			a.delay, err = time.ParseDuration(v)
		default:
			err = fmt.Errorf("unknown option %q", k)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
	}
	return a, nil
}

// servedPath answers how many requests the listener served before,
// without counting itself, so that a test can see mirrored requests,
// whose answers the proxy drops.
const servedPath = "/__served"

func (a *answer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == servedPath {
		fmt.Fprintln(w, a.served.Load())
		return
	}
	n := a.served.Add(1)
	time.Sleep(a.delay)
	w.Header().Set("X-Backend", a.name)
	// Request n fails when it takes the count of failures past its share:
	// with errors=0.1, one in every ten.
	if int64(float64(n)*a.errors) > int64(float64(n-1)*a.errors) {
		w.WriteHeader(http.StatusInternalServerError)
	}
	fmt.Fprintln(w, a.name)
}
