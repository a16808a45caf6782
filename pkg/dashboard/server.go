package dashboard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicescheme "sluice.dev/sluice/pkg/scheme"
)

// Server is a dashboard listening on an address.
type Server struct {
	// URL is where a browser opens the dashboard, such as
	// http://127.0.0.1:3100/.
	URL string

	listener net.Listener
	server   *http.Server
}

// Listen builds a dashboard that acts as cfg's user and listens on
// address (host:port; port 0 picks a free one). opts.Client is built from
// cfg when nil, and the listen address joins opts.Hosts. Serve serves it.
func Listen(cfg *rest.Config, address string, opts Options) (*Server, error) {
	if opts.Client == nil {
		scheme, err := sluicescheme.New()
		if err != nil {
			return nil, err
		}
		c, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme})
		if err != nil {
			return nil, fmt.Errorf("create a client for %s: %w", cfg.Host, err)
		}
		opts.Client = c
	}
	if _, _, err := net.SplitHostPort(address); err != nil {
		return nil, fmt.Errorf("dashboard address %q: want host:port, such as 127.0.0.1:3100: %w", address, err)
	}
	l, err := net.Listen("tcp", address)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", address, err)
	}
	opts.Hosts = append(opts.Hosts, l.Addr().String())
	h, err := New(opts)
	if err != nil {
		_ = l.Close()
		return nil, err
	}
	return &Server{
		URL:      "http://" + l.Addr().String() + "/",
		listener: l,
		server: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
		},
	}, nil
}

// Serve serves the dashboard until ctx ends, then closes the open pages'
// streams and returns.
func (s *Server) Serve(ctx context.Context) error {
	// Every request's context ends with ctx, so that the live streams
	// and the actions' waits end at once on shutdown.
	s.server.BaseContext = func(net.Listener) context.Context { return ctx }
	done := make(chan error, 1)
	go func() { done <- s.server.Serve(s.listener) }()
	select {
	case err := <-done:
		return fmt.Errorf("serve the dashboard: %w", err)
	case <-ctx.Done():
	}
	// The pages' streams and the actions' waits end with ctx, so a
	// moment lets their last writes out. A connection that a browser
	// opened ahead of a request it never sent counts as busy for five
	// seconds; it is closed rather than waited for.
	shutdown, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := s.server.Shutdown(shutdown)
	if errors.Is(err, context.DeadlineExceeded) {
		err = s.server.Close()
	}
	if serveErr := <-done; serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, serveErr)
	}
	if err != nil {
		return fmt.Errorf("stop the dashboard: %w", err)
	}
	return nil
}
