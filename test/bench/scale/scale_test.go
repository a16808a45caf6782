// Package scale measures the sluice binary, out of process, with
// thousands of Canaries on a real control plane: how long they take to
// initialise, what they cost while idle (memory, CPU, API requests), how
// soon a change shows in a Canary's status while all the others exist,
// and how long a hundred releases at once take. Run it with `make
// bench-scale`; SCALE_SIZES chooses the numbers of Canaries (1000 and
// 10000 by default). Plain `go test ./...` runs only the tests of its
// helpers: BenchmarkScale runs with -bench alone.
package scale

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"sluice.dev/sluice/test/binary"
	"sluice.dev/sluice/test/chaos"
	"sluice.dev/sluice/test/controlplane"
)

// The environment variables `make bench-scale` sets.
const (
	// sizesEnv holds the numbers of Canaries, separated by spaces.
	sizesEnv = "SLUICE_SCALE_SIZES"
	// idleEnv is the length of the idle window, and of the baseline
	// window before the operator starts, as a Go duration.
	idleEnv = "SLUICE_SCALE_IDLE"
	// outEnv is the folder that keeps the tables, the operator's logs and
	// its profiles; a new temporary folder when empty.
	outEnv = "SLUICE_SCALE_OUT"
	// argsEnv holds flags added to the operator's, separated by spaces:
	// to measure a setting other than the install's.
	argsEnv = "SLUICE_SCALE_OPERATOR_ARGS"
)

const (
	defaultSizes = "1000 10000"
	defaultIdle  = 2 * time.Minute
	// controlPlaneQPS is the client rate of kube-controller-manager and
	// kube-scheduler: a control plane sized for tens of thousands of
	// pods, so that the figures are the operator's and not those of
	// controllers held at their defaults (20 and 50 requests a second).
	controlPlaneQPS = 1000
	// initTimeout bounds the wait for all Canaries to initialise; the
	// target at 10,000 is 5 minutes.
	initTimeout = 45 * time.Minute
)

// config is what the environment asks for.
type config struct {
	sizes []int
	idle  time.Duration
	out   string
	// args are added to the operator's flags.
	args []string
}

func configFromEnv() (config, error) {
	cfg := config{idle: defaultIdle, out: os.Getenv(outEnv), args: strings.Fields(os.Getenv(argsEnv))}
	sizes := os.Getenv(sizesEnv)
	if strings.TrimSpace(sizes) == "" {
		sizes = defaultSizes
	}
	for _, f := range strings.Fields(sizes) {
		n, err := strconv.Atoi(f)
		if err != nil || n < changes*2 || n < batch*2 {
			return cfg, fmt.Errorf("%s: %q is not a number of Canaries of at least %d", sizesEnv, f, max(changes, batch)*2)
		}
		cfg.sizes = append(cfg.sizes, n)
	}
	if v := os.Getenv(idleEnv); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return cfg, fmt.Errorf("%s: %q is not a positive duration", idleEnv, v)
		}
		cfg.idle = d
	}
	if cfg.out == "" {
		dir, err := os.MkdirTemp("", "sluice-bench-scale-")
		if err != nil {
			return cfg, fmt.Errorf("create the output folder: %w", err)
		}
		cfg.out = dir
	}
	if err := os.MkdirAll(cfg.out, 0o755); err != nil {
		return cfg, fmt.Errorf("create the output folder: %w", err)
	}
	return cfg, nil
}

// BenchmarkScale runs the whole measurement once for each size, each on
// a control plane of its own, and prints the table of results.
func BenchmarkScale(b *testing.B) {
	cfg, err := configFromEnv()
	if err != nil {
		b.Fatal(err)
	}
	// The benchmark's own informer logs through controller-runtime: its
	// errors only.
	ctrllog.SetLogger(zap.New(zap.Level(zapcore.ErrorLevel), zap.WriteTo(os.Stderr)))
	bin, err := binary.Build(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	progress(0, "output in %s; operator flags added: %v", cfg.out, cfg.args)
	var results []*result
	for _, n := range cfg.sizes {
		b.Run(fmt.Sprintf("canaries=%d", n), func(b *testing.B) {
			for b.Loop() {
				r := measure(b, bin, n, cfg)
				results = append(results, r)
				b.ReportMetric(r.initialised.Seconds(), "s-to-initialise")
				b.ReportMetric(float64(r.idleRSS)/(1<<20), "idle-RSS-MiB")
				b.ReportMetric(r.idleRequestsPerMin, "idle-requests/min")
				b.ReportMetric(float64(percentile(r.detection, 0.99).Microseconds())/1000, "ms-p99-detection")
			}
		})
	}
	if len(results) == 0 {
		return
	}
	table := formatTable(results, cfg.idle)
	fmt.Print("\n" + table)
	if err := os.WriteFile(filepath.Join(cfg.out, "table.md"), []byte(table), 0o644); err != nil {
		b.Error(err)
	}
}

// measure runs one size: objects first, then the operator, then the
// idle window, the changes and the batch release.
func measure(b *testing.B, bin string, n int, cfg config) *result {
	ctx := b.Context()
	r := &result{canaries: n, idle: cfg.idle}
	progress(n, "starting a control plane with %d kwok node(s)", nodesFor(n))
	cp, err := controlplane.Start(ctx, controlplane.Options{Nodes: nodesFor(n), ControllerQPS: controlPlaneQPS, SchedulerQPS: controlPlaneQPS})
	b.Cleanup(func() {
		if cp != nil {
			if err := cp.Stop(); err != nil {
				b.Errorf("stop the control plane: %v", err)
			}
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	kubeconfig, err := chaos.InstallOperatorRBAC(ctx, cp)
	if err != nil {
		b.Fatal(err)
	}
	if err := createFlowSchema(ctx, cp.Client); err != nil {
		b.Fatal(err)
	}
	api, err := newScraper(cp.Config)
	if err != nil {
		b.Fatal(err)
	}

	began := time.Now()
	if err := createObjects(ctx, cp.Client, n); err != nil {
		b.Fatal(err)
	}
	r.create = time.Since(began)
	progress(n, "created %d namespaces, %d Deployments and %d Canaries in %s", namespaces(n), n, n, round(r.create))
	if err := waitTargetsAvailable(ctx, cp.Client, n); err != nil {
		b.Fatal(err)
	}
	r.targetsReady = time.Since(began)
	progress(n, "all target Deployments Available %s after the first create", round(r.targetsReady))

	tr, err := startTracker(ctx, cp, n)
	if err != nil {
		b.Fatal(err)
	}
	progress(n, "baseline window without the operator: %s", cfg.idle)
	baseline, err := api.window(ctx, cfg.idle, nil)
	if err != nil {
		b.Fatal(err)
	}

	addrs, err := freeAddrs()
	if err != nil {
		b.Fatal(err)
	}
	args, err := operatorArgs(kubeconfig, addrs)
	if err != nil {
		b.Fatal(err)
	}
	args = append(args, cfg.args...)
	r.args = cfg.args
	before, err := api.scrape(ctx)
	if err != nil {
		b.Fatal(err)
	}
	cpuBeforeInit, err := processCPU()
	if err != nil {
		b.Fatal(err)
	}
	started := time.Now()
	op := binary.Start(b, bin, args...)
	b.Cleanup(func() { saveLog(b, cfg.out, n, op) })
	var profiles sync.WaitGroup
	b.Cleanup(profiles.Wait)
	profiles.Go(func() {
		file := filepath.Join(cfg.out, fmt.Sprintf("cpu-init-%d.pb.gz", n))
		if err := fetchProfile(ctx, http.DefaultClient, "http://"+addrs.pprof, fmt.Sprintf("/debug/pprof/profile?seconds=%d", int(initProfile.Seconds())), file); err != nil {
			progress(n, "CPU profile of the initialisation: %v", err)
		}
	})
	progress(n, "operator started (pid %d); waiting for %d Canaries to be Initialized and Ready", op.Cmd.Process.Pid, n)
	midway := false
	if err := tr.waitAll(ctx, op, initTimeout, func(settled int) {
		progress(n, "%d of %d Initialized and Ready after %s", settled, n, round(time.Since(started)))
		if settled < n/2 || midway {
			return
		}
		// Halfway, CPU profiles of the operator and of kube-apiserver
		// (served to the admin at its /debug/pprof): what holds the
		// initialisation up once thousands of objects exist.
		midway = true
		// One CPU profile at a time in a process: the operator's first
		// one must be over.
		if time.Since(started) > initProfile+time.Second {
			profiles.Go(func() {
				file := filepath.Join(cfg.out, fmt.Sprintf("cpu-midway-%d.pb.gz", n))
				if err := fetchProfile(ctx, http.DefaultClient, "http://"+addrs.pprof, fmt.Sprintf("/debug/pprof/profile?seconds=%d", int(initProfile.Seconds())), file); err != nil {
					progress(n, "CPU profile of the operator halfway: %v", err)
				}
			})
		}
		profiles.Go(func() {
			// kube-apiserver cuts requests off after a minute.
			file := filepath.Join(cfg.out, fmt.Sprintf("kube-apiserver-cpu-midway-%d.pb.gz", n))
			if err := fetchProfile(ctx, api.http, api.host, "/debug/pprof/profile?seconds=30", file); err != nil {
				progress(n, "CPU profile of kube-apiserver halfway: %v", err)
			}
		})
	}); err != nil {
		b.Fatal(err)
	}
	r.initialised = tr.allAt().Sub(started)
	cpuAfterInit, err := processCPU()
	if err != nil {
		b.Fatal(err)
	}
	r.initCPUShares = cpuShares(cpuBeforeInit, cpuAfterInit)
	if r.initCPU, err = op.CPU(); err != nil {
		b.Fatal(err)
	}
	after, err := api.scrape(ctx)
	if err != nil {
		b.Fatal(err)
	}
	r.initRequests = after.operator - before.operator
	progress(n, "all %d Initialized and Ready %s after the operator started", n, round(r.initialised))
	// The operator's own metrics (its workqueues, reconcile times, client
	// requests) and the API server's, to tell what held the
	// initialisation up.
	saveMetrics(ctx, b, "http://"+addrs.metrics+"/metrics", http.DefaultClient, filepath.Join(cfg.out, fmt.Sprintf("operator-metrics-init-%d.txt", n)))
	saveMetrics(ctx, b, api.url, api.http, filepath.Join(cfg.out, fmt.Sprintf("apiserver-metrics-init-%d.txt", n)))
	if err := fetchProfile(ctx, http.DefaultClient, "http://"+addrs.pprof, "/debug/pprof/heap?gc=1", filepath.Join(cfg.out, fmt.Sprintf("heap-init-%d.pb.gz", n))); err != nil {
		b.Fatal(err)
	}

	quiet, err := api.waitQuiet(ctx, op)
	if err != nil {
		b.Fatal(err)
	}
	progress(n, "operator quiet after %s more; idle window: %s", round(quiet), cfg.idle)
	cpuBefore, err := op.CPU()
	if err != nil {
		b.Fatal(err)
	}
	opBefore, err := operatorRequests(ctx, addrs.metrics)
	if err != nil {
		b.Fatal(err)
	}
	idle, err := api.window(ctx, cfg.idle, func() error {
		rss, err := op.RSS()
		r.idleRSS = max(r.idleRSS, rss)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	cpuAfter, err := op.CPU()
	if err != nil {
		b.Fatal(err)
	}
	opAfter, err := operatorRequests(ctx, addrs.metrics)
	if err != nil {
		b.Fatal(err)
	}
	r.idleOperatorByMethod = perMinute(opBefore, opAfter, idle.minutes)
	r.idleCPUPerMin = (cpuAfter - cpuBefore).Seconds() / cfg.idle.Minutes()
	r.idleRequestsPerMin = idle.total()/idle.minutes - baseline.total()/baseline.minutes
	r.idleOperatorRequestsPerMin = idle.operator / idle.minutes
	r.idleBreakdown = difference(idle, baseline)
	if err := fetchProfile(ctx, http.DefaultClient, "http://"+addrs.pprof, "/debug/pprof/heap?gc=1", filepath.Join(cfg.out, fmt.Sprintf("heap-idle-%d.pb.gz", n))); err != nil {
		b.Fatal(err)
	}
	progress(n, "idle: RSS %s, %.2f CPU-s/min, %.1f requests/min (operator's identity: %.1f)",
		mib(r.idleRSS), r.idleCPUPerMin, r.idleRequestsPerMin, r.idleOperatorRequestsPerMin)

	if r.detection, err = detect(ctx, cp.Client, tr, op, n); err != nil {
		b.Fatal(err)
	}
	progress(n, "detection over %d changes: median %s, p99 %s", changes, ms(percentile(r.detection, 0.5)), ms(percentile(r.detection, 0.99)))
	if r.batch, err = releaseBatch(ctx, cp.Client, tr, op, n); err != nil {
		b.Fatal(err)
	}
	progress(n, "%d released at once in %s", batch, round(r.batch))
	if r.peakRSS, err = op.PeakRSS(); err != nil {
		b.Fatal(err)
	}
	if r.totalCPU, err = op.CPU(); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg.out, fmt.Sprintf("table-%d.md", n)), []byte(formatTable([]*result{r}, cfg.idle)), 0o644); err != nil {
		b.Error(err)
	}
	return r
}

// initProfile is how long the CPU profile taken from the operator's
// start runs: the initialisation, or its first minute.
const initProfile = time.Minute

// progress prints a line on stderr as the run goes: a run at 10,000
// Canaries takes the better part of an hour.
func progress(n int, format string, args ...any) {
	prefix := ">> "
	if n > 0 {
		prefix = fmt.Sprintf(">> %s %d: ", time.Now().Format("15:04:05"), n)
	}
	fmt.Fprintf(os.Stderr, prefix+format+"\n", args...)
}

// saveLog keeps the operator's output beside the profiles.
func saveLog(b *testing.B, out string, n int, op *binary.Operator) {
	if err := os.WriteFile(filepath.Join(out, fmt.Sprintf("operator-%d.log", n)), []byte(op.Output.String()), 0o644); err != nil {
		b.Errorf("save the operator's log: %v", err)
	}
}

// saveMetrics saves what url serves to file; a failure is reported, and
// the run goes on.
func saveMetrics(ctx context.Context, b *testing.B, url string, hc *http.Client, file string) {
	err := func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer func() { _ = resp.Body.Close() }()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		return os.WriteFile(file, body, 0o644)
	}()
	if err != nil {
		b.Errorf("save %s: %v", url, err)
	}
}

// waitFor waits for done, failing early when the operator exits or ctx
// ends.
func waitFor(ctx context.Context, op *binary.Operator, timeout time.Duration, what string, done <-chan struct{}) error {
	select {
	case <-done:
		return nil
	case <-op.Exited():
		return fmt.Errorf("%s: the operator exited: %w", what, op.Err())
	case <-time.After(timeout):
		return fmt.Errorf("%s: not within %s", what, timeout)
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", what, ctx.Err())
	}
}
