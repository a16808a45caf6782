package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/pkg/dashboard"
	sluicescheme "sluice.dev/sluice/pkg/scheme"
)

// dashboardAddress is where the demo's dashboard listens when the port is
// free: the port `sluicectl dashboard` uses.
const dashboardAddress = "127.0.0.1:3100"

// demoDashboard is the web dashboard of the demo. It listens before the
// control plane starts, so that its address can be the demo's first line,
// and shows a page that says the demo is starting until the control plane
// is up and the dashboard proper takes over.
type demoDashboard struct {
	URL     string
	handler atomic.Pointer[http.Handler]
	server  *http.Server
	done    chan error
	// cancel ends the requests' contexts, so that the pages' live streams
	// end on stop rather than hold the shutdown.
	cancel context.CancelFunc
}

// listenDashboard listens on addr, or on a free loopback port when addr
// is taken (another dashboard, another demo), and serves the starting
// page.
func listenDashboard(addr string) (*demoDashboard, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		if l, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return nil, fmt.Errorf("listen for the dashboard: %w", err)
		}
	}
	base, cancel := context.WithCancel(context.Background())
	d := &demoDashboard{URL: "http://" + l.Addr().String() + "/", done: make(chan error, 1), cancel: cancel}
	d.server = &http.Server{ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return base }, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := d.handler.Load(); h != nil {
			(*h).ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Retry-After", "2")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = fmt.Fprint(w, `<!doctype html><meta http-equiv="refresh" content="2"><title>Sluice demo</title><p>The demo is starting its control plane; this page reloads until the dashboard is up.`)
	})}
	go func() { d.done <- d.server.Serve(l) }()
	return d, nil
}

// attach makes the dashboard serve cfg's cluster, as the demo's admin.
// It is built as `sluicectl dashboard` builds it.
func (d *demoDashboard) attach(cfg *rest.Config) error {
	scheme, err := sluicescheme.New()
	if err != nil {
		return err
	}
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return fmt.Errorf("create the dashboard's client: %w", err)
	}
	u := d.URL[len("http://") : len(d.URL)-1]
	h, err := dashboard.New(dashboard.Options{Client: c, Hosts: []string{u}})
	if err != nil {
		return fmt.Errorf("build the dashboard: %w", err)
	}
	d.handler.Store(&h)
	return nil
}

// stop closes the open pages' streams and the listener.
func (d *demoDashboard) stop() error {
	d.cancel()
	// As `sluicectl dashboard` does: a moment for the streams' last
	// writes, then a connection a browser opened ahead of a request is
	// closed rather than waited for.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := d.server.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = d.server.Close()
	}
	if serveErr := <-d.done; serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, serveErr)
	}
	if err != nil {
		return fmt.Errorf("stop the dashboard: %w", err)
	}
	return nil
}
