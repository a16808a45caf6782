// Package egress bounds the HTTP calls the operator makes to addresses
// its users choose: Canary webhooks, metric providers and alert
// providers. Such a call may not reach the operator's own listeners (the
// health probes, /metrics and the webhook receiver), neither directly
// nor through a redirect, and what is read of its answer is capped, so
// that a hostile or broken endpoint can neither drive the operator
// against itself nor fill its memory.
package egress

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"
)

// ErrOwnEndpoint is a connection to one of the operator's own listeners,
// refused.
var ErrOwnEndpoint = errors.New("refused to connect to the operator's own endpoint (health, metrics or webhook receiver)")

// ErrAnswerTooLarge is an answer longer than the cap of its reader.
var ErrAnswerTooLarge = errors.New("answer too large")

// Guard refuses connections to the operator's own listeners. A nil Guard
// refuses none.
type Guard struct {
	// ports are the ports the operator listens on.
	ports map[string]bool
	// interfaceAddrs lists the machine's addresses; net.InterfaceAddrs
	// unless a test sets it.
	interfaceAddrs func() ([]net.Addr, error)
}

// NewGuard returns a Guard for the operator's listen addresses, as its
// flags give them: host:port or :port. "0", an empty address and port 0
// (no listener, or one on a port chosen at random) are skipped.
func NewGuard(listenAddrs ...string) (*Guard, error) {
	g := &Guard{ports: map[string]bool{}, interfaceAddrs: net.InterfaceAddrs}
	for _, addr := range listenAddrs {
		if addr == "" || addr == "0" {
			continue
		}
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("listen address %q: %w", addr, err)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			return nil, fmt.Errorf("listen address %q: port %q is not a number", addr, port)
		} else if n == 0 {
			continue
		}
		g.ports[port] = true
	}
	return g, nil
}

// Check refuses address, a resolved ip:port about to be dialled, when it
// is one of the operator's own listeners: a port it listens on, at a
// loopback, unspecified or local interface address. A listener bound to
// all interfaces answers on each of those.
func (g *Guard) Check(address string) error {
	if g == nil || len(g.ports) == 0 {
		return nil
	}
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		// A dialler always gives host:port; what cannot be judged is
		// refused rather than let through.
		return fmt.Errorf("check the address %q: %w", address, err)
	}
	if !g.ports[port] {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil {
		// A dialler's Control sees resolved addresses only; a name here
		// cannot be judged, so it is refused rather than let through.
		return fmt.Errorf("%w: %s", ErrOwnEndpoint, address)
	}
	if ip.IsLoopback() || ip.IsUnspecified() || g.local(ip) {
		return fmt.Errorf("%w: %s", ErrOwnEndpoint, address)
	}
	return nil
}

// local reports whether ip is one of the machine's own addresses, such as
// a pod's IP.
func (g *Guard) local(ip net.IP) bool {
	addrs, err := g.interfaceAddrs()
	if err != nil {
		// Unknown: the loopback check still holds.
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
			return true
		}
	}
	return false
}

// control is a net.Dialer Control function: it runs on the resolved
// address of every connection, the first and each one a redirect or a
// retry opens, so neither a redirect nor a name that resolves to loopback
// gets past it.
func (g *Guard) control(_, address string, _ syscall.RawConn) error {
	return g.Check(address)
}

// Transport returns a copy of t whose connections are checked, with the
// dial timeouts of http.DefaultTransport. A nil Guard returns t.
func (g *Guard) Transport(t *http.Transport) *http.Transport {
	if g == nil {
		return t
	}
	t = t.Clone()
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: g.control}
	t.DialContext = dialer.DialContext
	return t
}

// LimitAnswers returns a round tripper whose answers' bodies fail with
// ErrAnswerTooLarge once more than max bytes are read of them. An answer
// that announces a longer Content-Length fails at once, unread.
func LimitAnswers(next http.RoundTripper, max int64) http.RoundTripper {
	return &limited{next: next, max: max}
}

type limited struct {
	next http.RoundTripper
	max  int64
}

func (l *limited) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := l.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.ContentLength > l.max {
		_ = resp.Body.Close()
		return nil, fmt.Errorf("%w: %d bytes announced, more than %d", ErrAnswerTooLarge, resp.ContentLength, l.max)
	}
	resp.Body = &cappedBody{body: resp.Body, left: l.max, max: l.max}
	return resp, nil
}

// cappedBody reads up to max bytes of body, and fails if there are more.
type cappedBody struct {
	body io.ReadCloser
	left int64
	max  int64
}

func (c *cappedBody) Read(p []byte) (int, error) {
	if c.left <= 0 {
		// The cap is reached: one byte more is too many, none is the end.
		var one [1]byte
		n, err := c.body.Read(one[:])
		if n > 0 {
			return 0, fmt.Errorf("%w: more than %d bytes", ErrAnswerTooLarge, c.max)
		}
		return 0, err
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.body.Read(p)
	c.left -= int64(n)
	return n, err
}

func (c *cappedBody) Close() error { return c.body.Close() }
