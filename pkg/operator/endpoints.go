package operator

import (
	"fmt"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// The limits of the operator's own HTTP endpoints: /metrics and the
// health probes. controller-runtime's servers give a client 32 s to send
// its headers and none to send its body; these cut a slow client off
// sooner and refuse a body, which no GET of theirs reads. The webhook
// receiver has its own, in package receiver.
const (
	// EndpointReadHeaderTimeout is how long a client has to send its
	// request line and headers.
	EndpointReadHeaderTimeout = 5 * time.Second
	// EndpointReadTimeout is how long a client has to send its whole
	// request.
	EndpointReadTimeout = 10 * time.Second
	// endpointWriteTimeout bounds the answer, a scrape of every metric
	// included.
	endpointWriteTimeout = 30 * time.Second
	// endpointIdleTimeout closes a kept-alive connection left unused.
	endpointIdleTimeout = 60 * time.Second
	// endpointMaxHeaderBytes bounds the request headers; a probe or a
	// scrape sends a few hundred bytes.
	endpointMaxHeaderBytes = 16 << 10
	// EndpointMaxBody is the largest body a request to them may carry;
	// a longer one gets 413.
	EndpointMaxBody = 1 << 10
	// endpointShutdownTimeout bounds the wait for requests in flight
	// when the operator stops.
	endpointShutdownTimeout = 5 * time.Second
)

// probes holds the checks that /healthz and /readyz run. The manager's own
// probe server is off (see New), so checks are added here, not with the
// manager's AddHealthzCheck and AddReadyzCheck.
type probes struct {
	healthz *healthz.Handler
	readyz  *healthz.Handler
}

func newProbes() *probes {
	return &probes{
		healthz: &healthz.Handler{Checks: map[string]healthz.Checker{}},
		readyz:  &healthz.Handler{Checks: map[string]healthz.Checker{}},
	}
}

// addEndpoints adds the servers of /metrics (the controller-runtime
// registry, which holds Sluice's metrics too), of the health probes and,
// when asked for, of /debug/pprof/ to mgr. They run on every replica,
// leader or not, and start before the caches, so that a probe answers
// while they sync. An address of "0" or "" turns a server off.
func addEndpoints(mgr manager.Manager, opts Options, p *probes) error {
	if on(opts.MetricsBindAddress) {
		mux := http.NewServeMux()
		// Counted, as promhttp.Handler counts its scrapes, so that a
		// request to /metrics from anywhere shows.
		mux.Handle("/metrics", promhttp.InstrumentMetricHandler(ctrlmetrics.Registry,
			promhttp.HandlerFor(ctrlmetrics.Registry, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError})))
		if err := mgr.Add(endpointServer("metrics", opts.MetricsBindAddress, mux)); err != nil {
			return fmt.Errorf("add the metrics server: %w", err)
		}
	}
	if on(opts.HealthProbeBindAddress) {
		mux := http.NewServeMux()
		mux.Handle("/healthz", http.StripPrefix("/healthz", p.healthz))
		mux.Handle("/healthz/", http.StripPrefix("/healthz", p.healthz))
		mux.Handle("/readyz", http.StripPrefix("/readyz", p.readyz))
		mux.Handle("/readyz/", http.StripPrefix("/readyz", p.readyz))
		if err := mgr.Add(endpointServer("health probes", opts.HealthProbeBindAddress, mux)); err != nil {
			return fmt.Errorf("add the health probe server: %w", err)
		}
	}
	if on(opts.PprofBindAddress) {
		if err := mgr.Add(pprofServer(opts.PprofBindAddress)); err != nil {
			return fmt.Errorf("add the pprof server: %w", err)
		}
	}
	return nil
}

// pprofWriteTimeout bounds a profile's answer. A CPU or trace profile
// answers only after the seconds it was asked for, and net/http/pprof
// refuses a duration as long as the server's write timeout: profiles of
// up to ten minutes are served.
const pprofWriteTimeout = 10*time.Minute + 30*time.Second

// pprofServer serves net/http/pprof's handlers under /debug/pprof/, on
// its own listener: with the other endpoints' limits, except that an
// answer may take as long as the profile asked for.
func pprofServer(addr string) *manager.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	s := endpointServer("pprof", addr, mux)
	s.Server.WriteTimeout = pprofWriteTimeout
	return s
}

// on reports whether a bind address turns its server on.
func on(addr string) bool { return addr != "" && addr != "0" }

// endpointServer serves h on addr with the endpoints' limits.
func endpointServer(name, addr string, h http.Handler) *manager.Server {
	return &manager.Server{
		Name: name,
		Server: &http.Server{
			Addr:              addr,
			Handler:           capBody(h, EndpointMaxBody),
			ReadHeaderTimeout: EndpointReadHeaderTimeout,
			ReadTimeout:       EndpointReadTimeout,
			WriteTimeout:      endpointWriteTimeout,
			IdleTimeout:       endpointIdleTimeout,
			MaxHeaderBytes:    endpointMaxHeaderBytes,
		},
		ShutdownTimeout: ptr.To(endpointShutdownTimeout),
	}
}

// capBody answers 413 to a request whose announced body is longer than
// max, and bounds one sent in chunks: the server then reads no more than
// max of it before closing the connection.
func capBody(h http.Handler, max int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > max {
			w.Header().Set("Connection", "close")
			http.Error(w, fmt.Sprintf("body is larger than %d bytes", max), http.StatusRequestEntityTooLarge)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, max)
		h.ServeHTTP(w, r)
	})
}
