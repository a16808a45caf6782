package chaos

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/prometheus"
)

// ErrorRatioMetric is the gauge the exporter serves, one series per
// Canary: 0 for a healthy version under release, 1 for a failing one.
const ErrorRatioMetric = "chaos_error_ratio"

// Exporter serves ErrorRatioMetric for Prometheus to scrape.
type Exporter struct {
	Addr   string
	mu     sync.Mutex
	ratios map[client.ObjectKey]float64
}

// StartExporter serves the gauge on loopback until close is called.
func StartExporter() (e *Exporter, closeFn func()) {
	e = &Exporter{ratios: map[client.ObjectKey]float64{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		e.mu.Lock()
		defer e.mu.Unlock()
		keys := make([]client.ObjectKey, 0, len(e.ratios))
		for k := range e.ratios {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		var b strings.Builder
		fmt.Fprintf(&b, "# TYPE %s gauge\n", ErrorRatioMetric)
		for _, k := range keys {
			fmt.Fprintf(&b, "%s{namespace=%q,canary=%q} %g\n", ErrorRatioMetric, k.Namespace, k.Name, e.ratios[k])
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = w.Write([]byte(b.String()))
	}))
	e.Addr = strings.TrimPrefix(srv.URL, "http://")
	return e, srv.Close
}

// Set sets a Canary's error ratio.
func (e *Exporter) Set(key client.ObjectKey, ratio float64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ratios[key] = ratio
}

// Prometheus is Debian's prometheus on a fixed loopback address and data
// folder, so that it can be stopped and started again as the same server.
type Prometheus struct {
	URL  string
	bin  string
	dir  string
	addr string

	mu   sync.Mutex
	proc *Process
	runs int
}

// StartPrometheus starts a Prometheus that scrapes the targets every
// second.
func StartPrometheus(ctx context.Context, dir string, targets ...prometheus.Target) (*Prometheus, error) {
	bin, err := prometheus.Binary()
	if err != nil {
		return nil, err
	}
	addr, err := controlplane.FreeAddr()
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(prometheus.ScrapeConfig(targets)), 0o600); err != nil {
		return nil, fmt.Errorf("write prometheus.yml: %w", err)
	}
	p := &Prometheus{URL: "http://" + addr, bin: bin, dir: dir, addr: addr}
	return p, p.Start(ctx)
}

// Start starts it again after Stop.
func (p *Prometheus) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proc != nil {
		return errors.New("prometheus is running")
	}
	p.runs++
	proc, err := StartProcess(p.bin, p.dir, fmt.Sprintf("prometheus-%d", p.runs),
		"--config.file="+filepath.Join(p.dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(p.dir, "data"),
		"--web.listen-address="+p.addr)
	if err != nil {
		return err
	}
	p.proc = proc
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		if resp, err := http.Get(p.URL + "/-/ready"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-proc.Exited():
			p.proc = nil
			return fmt.Errorf("prometheus exited: %s", proc.Tail(2000))
		case <-ctx.Done():
			return fmt.Errorf("prometheus not ready: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop stops it; queries fail until Start.
func (p *Prometheus) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proc == nil {
		return
	}
	_ = p.proc.Terminate(10 * time.Second)
	p.proc = nil
}
