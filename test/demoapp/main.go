// Command demoapp is the application that `make demo` releases: an HTTP
// server that answers every request with its version, fails a set share
// of them and takes a set time for each, and exports the request metrics
// that the demo's Canary analyses on /metrics.
//
//	demoapp --listen 10.77.0.2:8082 --version v3 --error-rate 0.05 --latency 20ms
//
// Several processes may listen on one address at once (SO_REUSEPORT), so
// that a new version takes over from the old one without refusing a
// connection: the demo starts the new process, waits for its "serving"
// line and then stops the old one, which finishes its requests first.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// soReusePort is SO_REUSEPORT on Linux, which package syscall lacks.
const soReusePort = 0xf

// config is what the flags set.
type config struct {
	listen    string
	version   string
	errorRate float64
	latency   time.Duration
}

func main() {
	var cfg config
	flag.StringVar(&cfg.listen, "listen", "127.0.0.1:8080", "Address to serve on.")
	flag.StringVar(&cfg.version, "version", "v1", "Version to answer with and to label the metrics with.")
	flag.Float64Var(&cfg.errorRate, "error-rate", 0, "Share of requests answered with 500, from 0 to 1; exact, not random.")
	flag.DurationVar(&cfg.latency, "latency", 20*time.Millisecond, "Mean time taken per request; each takes between half and one and a half of it.")
	flag.Parse()
	if cfg.errorRate < 0 || cfg.errorRate > 1 {
		fmt.Fprintf(os.Stderr, "demoapp: --error-rate %v: want a share from 0 to 1\n", cfg.errorRate)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "demoapp:", err)
		os.Exit(1)
	}
}

func serve(ctx context.Context, cfg config) error {
	reg := prometheus.NewRegistry()
	constLabels := prometheus.Labels{"version": cfg.version}
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name:        "http_requests_total",
		Help:        "Requests answered, by status code.",
		ConstLabels: constLabels,
	}, []string{"code"})
	duration := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:        "http_request_duration_seconds",
		Help:        "Time taken to answer a request.",
		ConstLabels: constLabels,
		// Fine around the demo's latencies, so that the P99 the analysis
		// reads is close to the truth rather than a bucket's edge.
		Buckets: []float64{.005, .01, .015, .02, .025, .03, .04, .05, .075, .1, .15, .25, .5, 1, 2.5},
	})
	reg.MustRegister(requests, duration)

	var served atomic.Uint64
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		n := served.Add(1)
		// Request n fails when the count of failures due by n grows: an
		// exact share, so that the demo's outcome never hangs on chance.
		fail := int(float64(n)*cfg.errorRate) > int(float64(n-1)*cfg.errorRate)
		delay := time.Duration(float64(cfg.latency) * (0.5 + rand.Float64())) //nolint:gosec // jitter, not security
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
		code := http.StatusOK
		if fail {
			code = http.StatusInternalServerError
		}
		w.Header().Set("X-Version", cfg.version)
		w.WriteHeader(code)
		_, _ = fmt.Fprintln(w, cfg.version)
		requests.WithLabelValues(strconv.Itoa(code)).Inc()
		duration.Observe(time.Since(start).Seconds())
	})
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("/", app)

	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var opErr error
		if err := c.Control(func(fd uintptr) {
			opErr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, soReusePort, 1)
		}); err != nil {
			return err
		}
		return opErr
	}}
	listener, err := lc.Listen(ctx, "tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.listen, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errs := make(chan error, 1)
	go func() { errs <- srv.Serve(listener) }()
	// Ready: the demo waits for this line before it stops the process
	// this one replaces.
	fmt.Printf("serving %s on %s\n", cfg.version, listener.Addr())

	select {
	case err := <-errs:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shut down: %w", err)
	}
	return nil
}
