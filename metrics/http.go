package metrics

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"

	"sluice.dev/sluice/pkg/egress"
)

// Secret keys for TLS to a backend, shared by the HTTP providers (the
// names Flux uses for the same purpose).
const (
	secretCA   = "ca.crt"
	secretCert = "tls.crt"
	secretKey  = "tls.key"
)

// httpClient builds the client a provider talks to its backend with: the
// template's TLS options and the CA and client certificate from its
// Secret, the template's headers on every request, and the query timeout.
func httpClient(cfg Config) (*http.Client, error) {
	tlsConfig := &tls.Config{InsecureSkipVerify: cfg.InsecureSkipVerify} //nolint:gosec // the user's explicit choice
	if ca := cfg.Secret[secretCA]; len(ca) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca) {
			return nil, fmt.Errorf("secret key %s: no PEM certificate", secretCA)
		}
		tlsConfig.RootCAs = pool
	}
	if cert, key := cfg.Secret[secretCert], cfg.Secret[secretKey]; len(cert) > 0 || len(key) > 0 {
		pair, err := tls.X509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("secret keys %s and %s: %w", secretCert, secretKey, err)
		}
		tlsConfig.Certificates = []tls.Certificate{pair}
	}
	transport := cfg.Egress.Transport(http.DefaultTransport.(*http.Transport).Clone())
	transport.TLSClientConfig = tlsConfig
	return &http.Client{
		Timeout: cfg.timeout(),
		// Client libraries (Prometheus', Datadog's) read answers whole:
		// the cap is on the transport, so that it holds for them too.
		Transport: &headerTransport{headers: cfg.Headers, next: egress.LimitAnswers(transport, maxBody)},
	}, nil
}

// headerTransport adds the template's headers to each request.
type headerTransport struct {
	headers http.Header
	next    http.RoundTripper
}

func (h *headerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if len(h.headers) > 0 {
		req = req.Clone(req.Context())
		for k, vs := range h.headers {
			for _, v := range vs {
				req.Header.Add(k, v)
			}
		}
	}
	return h.next.RoundTrip(req)
}

// classify wraps a transport error or an HTTP status in the error kinds
// the analysis tells apart. It returns nil for a 2xx status.
func classify(status int, err error) error {
	if err != nil {
		var netErr net.Error
		var urlErr *url.Error
		if errors.As(err, &netErr) || errors.As(err, &urlErr) || errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%w: %w", ErrUnreachable, err)
		}
		return err
	}
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return fmt.Errorf("%w: HTTP %d", ErrAuth, status)
	case status >= 500 || status == http.StatusTooManyRequests:
		return fmt.Errorf("%w: HTTP %d", ErrUnreachable, status)
	case status < 200 || status > 299:
		return fmt.Errorf("HTTP %d", status)
	}
	return nil
}

// maxBody bounds what is read of a backend's answer: httpClient's
// transport fails a longer one with egress.ErrAnswerTooLarge.
const maxBody = 8 << 20

// doJSON sends req and decodes a 2xx JSON answer into out. A non-2xx
// answer is classified, with the start of its body in the error.
func doJSON(c *http.Client, req *http.Request, out any) error {
	resp, err := c.Do(req)
	if err != nil {
		return classify(0, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := readAnswer(resp.Body)
	if err != nil {
		return classify(0, err)
	}
	if err := classify(resp.StatusCode, nil); err != nil {
		return fmt.Errorf("%w: %s", err, snippet(body))
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("decode answer: %w: %s", err, snippet(body))
	}
	return nil
}

// readAnswer reads a whole answer of at most maxBody bytes; a longer one
// fails with egress.ErrAnswerTooLarge rather than being cut, so that the
// failure says why. httpClient's transport caps answers too, for the
// client libraries that read them themselves.
func readAnswer(body io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(body, maxBody+1))
	if err == nil && len(data) > maxBody {
		err = fmt.Errorf("%w: more than %d bytes", egress.ErrAnswerTooLarge, maxBody)
	}
	return data, err
}

// snippet is the start of a body, for error messages.
func snippet(body []byte) string {
	const n = 200
	if len(body) > n {
		return string(body[:n]) + "..."
	}
	return string(body)
}

// withStatus wraps err, a client library's error for an answer with HTTP
// status code, in the error kind of that status, if it has one.
func withStatus(code int, err error) error {
	switch c := classify(code, nil); {
	case errors.Is(c, ErrAuth):
		return fmt.Errorf("%w: %w", ErrAuth, err)
	case errors.Is(c, ErrUnreachable):
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	return err
}
