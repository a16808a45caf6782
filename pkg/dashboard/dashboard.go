// Package dashboard is Sluice's web dashboard, served by `sluicectl
// dashboard`: the Canaries of every namespace, one Canary's releases,
// steps, metric values and Events, and the sync objects behind them, with
// the same manual actions as the CLI.
//
// It reads and writes through the user's own client, so that Kubernetes
// RBAC decides what a person sees and may do. Pages are rendered on the
// server, charts included (inline SVG); a small script swaps in the
// fragments that a page's one server-sent event stream sends as the
// objects change, and posts the actions. Everything it serves is embedded
// in the binary.
package dashboard

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/pkg/manual"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// Defaults of Options.
const (
	// DefaultActionTimeout bounds the wait for the operator's answer to
	// an action.
	DefaultActionTimeout = 30 * time.Second
	// DefaultFieldOwner is the field manager of the dashboard's patches.
	DefaultFieldOwner = "sluicectl-dashboard"
)

// TokenHeader is the request header that carries the dashboard's token on
// every POST.
const TokenHeader = "X-Sluice-Token"

// Options configure the dashboard.
type Options struct {
	// Client reads, watches and writes as the person using the dashboard.
	// Required.
	Client client.WithWatch

	// Hosts are the Host header values (host:port) accepted besides
	// localhost, 127.0.0.1 and [::1] on any port: the address the
	// dashboard listens on. Any other Host is refused, so that a web page
	// that rebinds its own name to the loopback address cannot read the
	// dashboard or post to it.
	Hosts []string

	// Token authorises the POSTs: the pages carry it and the script sends
	// it in TokenHeader. Random when empty, which is what a process
	// should use.
	Token string

	// ActionTimeout bounds the wait for the operator's answer to an
	// action; DefaultActionTimeout when zero.
	ActionTimeout time.Duration

	// PollInterval is how often an action reads the object while it
	// waits for the operator; manual.DefaultPollInterval when zero.
	PollInterval time.Duration

	// FieldOwner is the field manager of the patches the actions write;
	// DefaultFieldOwner when empty.
	FieldOwner string

	// Now tells the time, for relative times and durations; time.Now
	// when nil.
	Now func() time.Time

	// ErrorLog receives the errors that reach no page, such as a live
	// stream's watch that failed; dropped when nil.
	ErrorLog func(error)
}

// handler serves the dashboard.
type handler struct {
	c       client.WithWatch
	opts    Options
	manual  manual.Requester
	pages   map[string]*template.Template
	static  fs.FS
	mux     *http.ServeMux
	allowed map[string]bool
}

// New builds the dashboard's handler.
func New(opts Options) (http.Handler, error) {
	if opts.Client == nil {
		return nil, errors.New("dashboard: Options.Client is required")
	}
	if opts.Token == "" {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("dashboard: make a token: %w", err)
		}
		opts.Token = hex.EncodeToString(b)
	}
	if opts.ActionTimeout <= 0 {
		opts.ActionTimeout = DefaultActionTimeout
	}
	if opts.FieldOwner == "" {
		opts.FieldOwner = DefaultFieldOwner
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ErrorLog == nil {
		opts.ErrorLog = func(error) {}
	}
	pages, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	static, err := fs.Sub(staticFiles, "static")
	if err != nil {
		return nil, fmt.Errorf("dashboard: read the embedded assets: %w", err)
	}
	h := &handler{
		c:       opts.Client,
		opts:    opts,
		manual:  manual.Requester{Client: opts.Client, FieldOwner: opts.FieldOwner, PollInterval: opts.PollInterval},
		pages:   pages,
		static:  static,
		mux:     http.NewServeMux(),
		allowed: map[string]bool{},
	}
	for _, host := range opts.Hosts {
		h.allowed[strings.ToLower(host)] = true
	}
	h.routes()
	return h, nil
}

func (h *handler) routes() {
	h.mux.HandleFunc("GET /{$}", h.overview)
	h.mux.HandleFunc("GET /canaries/{namespace}/{name}", h.canary)
	h.mux.HandleFunc("GET /sync", h.sync)
	h.mux.HandleFunc("GET /static/{file}", h.asset)
	h.mux.HandleFunc("GET /live/overview", h.liveOverview)
	h.mux.HandleFunc("GET /live/canaries/{namespace}/{name}", h.liveCanary)
	h.mux.HandleFunc("GET /live/sync", h.liveSync)
	h.mux.HandleFunc("POST /canaries/{namespace}/{name}/{action}", h.canaryAction)
	h.mux.HandleFunc("POST /sync/{kind}/{namespace}/{name}/{action}", h.syncAction)
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.errorPage(w, r, http.StatusNotFound, fmt.Sprintf("There is no page at %s.", r.URL.Path))
	})
}

// ServeHTTP checks the Host of every request and the token and origin of
// every POST before it routes the request.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	header := w.Header()
	header.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	header.Set("X-Content-Type-Options", "nosniff")
	header.Set("Referrer-Policy", "no-referrer")
	if !h.hostAllowed(r.Host) {
		http.Error(w, fmt.Sprintf("host %q is not the dashboard's address: open it at localhost or the address it listens on", r.Host), http.StatusMisdirectedRequest)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if err := h.checkPost(r); err != nil {
			writeJSON(w, http.StatusForbidden, actionResult{Message: err.Error()})
			return
		}
	}
	h.mux.ServeHTTP(w, r)
}

// hostAllowed says whether host, a Host header, names the dashboard:
// a loopback name on any port, or one of Options.Hosts.
func (h *handler) hostAllowed(host string) bool {
	host = strings.ToLower(host)
	if h.allowed[host] {
		return true
	}
	name := host
	if n, _, err := net.SplitHostPort(host); err == nil {
		name = n
	}
	name = strings.TrimSuffix(strings.TrimPrefix(name, "["), "]")
	switch name {
	case "localhost", "127.0.0.1", "::1":
		return true
	}
	return false
}

// checkPost lets a POST through when it carries the token and comes from
// a page of the dashboard itself: a cross-site form or script has
// neither.
func (h *handler) checkPost(r *http.Request) error {
	if !tokenEqual(r.Header.Get(TokenHeader), h.opts.Token) {
		return fmt.Errorf("the request has no valid %s header: reload the page and try again", TokenHeader)
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return errors.New("the request has no Origin header: actions are posted by the dashboard's own pages")
	}
	if origin != "http://"+r.Host && origin != "https://"+r.Host {
		return fmt.Errorf("the request comes from %s, not from the dashboard at %s", origin, r.Host)
	}
	return nil
}

// tokenEqual compares in constant time, so that the time a refusal takes
// tells nothing about the token.
func tokenEqual(got, want string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// now is the dashboard's clock.
func (h *handler) now() time.Time { return h.opts.Now() }

// logError reports an error that reaches no page.
func (h *handler) logError(err error) {
	if err != nil && !errors.Is(err, context.Canceled) {
		h.opts.ErrorLog(err)
	}
}
