// Package prometheus runs a real Prometheus (Debian's prometheus) for
// tests, scraping test exporters on loopback, and the exporter that plays
// an application whose error rate and latency a test controls.
package prometheus

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/process"
)

// Target is an address Prometheus scrapes, with the labels it adds to the
// target's series (such as namespace and pod, as Kubernetes discovery
// would).
type Target struct {
	Addr   string
	Labels map[string]string
}

// Options configure a Prometheus.
type Options struct {
	Targets []Target
	// WebConfig is the content of --web.config.file, for basic auth;
	// empty serves with no auth.
	WebConfig string
	// TLSCert and TLSKey, PEM, make Prometheus serve HTTPS with them.
	TLSCert, TLSKey []byte
}

// Server is a running Prometheus.
type Server struct {
	// URL is its HTTP API base, on loopback.
	URL string
}

// Binary finds the prometheus binary: $SLUICE_PROMETHEUS, or prometheus
// on the PATH, which `make test` installs.
func Binary() (string, error) {
	if p := os.Getenv("SLUICE_PROMETHEUS"); p != "" {
		return p, nil
	}
	p, err := exec.LookPath("prometheus")
	if err != nil {
		return "", fmt.Errorf("prometheus is not installed: `make test` (or `make prometheus`) installs Debian's prometheus: %w", err)
	}
	return p, nil
}

// Start runs Prometheus until the test ends. It scrapes every second, so
// that rate() over 10s windows has data within a few seconds.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	config := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(config, []byte(ScrapeConfig(opts.Targets)), 0o600); err != nil {
		t.Fatal(err)
	}
	addr, err := controlplane.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{
		"--config.file=" + config,
		"--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + addr,
	}
	webConfig, scheme := opts.WebConfig, "http"
	if len(opts.TLSCert) > 0 {
		cert, key := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
		for path, data := range map[string][]byte{cert: opts.TLSCert, key: opts.TLSKey} {
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		webConfig += fmt.Sprintf("\ntls_server_config:\n  cert_file: %s\n  key_file: %s\n", cert, key)
		scheme = "https"
	}
	if webConfig != "" {
		web := filepath.Join(dir, "web.yml")
		if err := os.WriteFile(web, []byte(webConfig), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--web.config.file="+web)
	}
	proc := process.Start(t, "prometheus", dir, bin, args...)
	s := &Server{URL: scheme + "://" + addr}
	// Only to see that it listens; the tests check the certificate.
	probe := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // a readiness probe
	// /-/ready needs no auth only when no web config is set; any answer
	// other than a refused connection means it listens.
	proc.WaitHTTP(t, probe, s.URL+"/-/ready", func(code int) bool { return code == http.StatusOK || code == http.StatusUnauthorized })
	return s
}

// ScrapeConfig renders a prometheus.yml that scrapes the targets every
// second, with their labels, for a Prometheus started by Start or by the
// demo.
func ScrapeConfig(targets []Target) string {
	var b strings.Builder
	b.WriteString("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n")
	if len(targets) == 0 {
		return b.String() + "  []\n"
	}
	b.WriteString("  - job_name: test\n    static_configs:\n")
	for _, t := range targets {
		fmt.Fprintf(&b, "      - targets: [%q]\n", t.Addr)
		if len(t.Labels) > 0 {
			b.WriteString("        labels:\n")
			for k, v := range t.Labels {
				fmt.Fprintf(&b, "          %s: %q\n", k, v)
			}
		}
	}
	return b.String()
}
