// Package alertmanager runs a real Alertmanager (Debian's
// prometheus-alertmanager) for tests, on loopback, with no gossip, and
// reads back the alerts it holds through its API.
package alertmanager

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/process"
)

// config routes every alert to a receiver with no integrations: the test
// reads alerts from the API, not from a notification.
const config = `route:
  receiver: test
receivers:
- name: test
`

// Server is a running Alertmanager.
type Server struct {
	// URL is its base, on loopback.
	URL string
}

// Binary finds the alertmanager: $SLUICE_ALERTMANAGER, or Debian's
// prometheus-alertmanager on the PATH, which `make test` installs.
func Binary() (string, error) {
	if p := os.Getenv("SLUICE_ALERTMANAGER"); p != "" {
		return p, nil
	}
	p, err := exec.LookPath("prometheus-alertmanager")
	if err != nil {
		return "", fmt.Errorf("prometheus-alertmanager is not installed: `make test` installs Debian's prometheus-alertmanager: %w", err)
	}
	return p, nil
}

// Start runs Alertmanager until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	addr, err := controlplane.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	proc := process.Start(t, "alertmanager", dir, bin,
		"--config.file="+cfg,
		"--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--cluster.listen-address=",
	)
	s := &Server{URL: "http://" + addr}
	proc.WaitHTTP(t, http.DefaultClient, s.URL+"/-/ready", func(code int) bool { return code == http.StatusOK })
	return s
}

// Alert is an alert as the API returns it (gettableAlert), in part.
type Alert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
}

// Alerts returns the alerts Alertmanager holds.
func (s *Server) Alerts() ([]Alert, error) {
	resp, err := http.Get(s.URL + "/api/v2/alerts")
	if err != nil {
		return nil, fmt.Errorf("get alerts: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("get alerts: %s", resp.Status)
	}
	var alerts []Alert
	if err := json.NewDecoder(resp.Body).Decode(&alerts); err != nil {
		return nil, fmt.Errorf("decode alerts: %w", err)
	}
	return alerts, nil
}
