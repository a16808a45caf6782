package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/operator"
	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/netns"
	testprom "sluice.dev/sluice/test/prometheus"
	"sluice.dev/sluice/test/traefik"
)

// Options configure a demo run. The zero value is a full run.
type Options struct {
	// AppBinary is the demo application (test/demoapp); empty builds it
	// into the demo's work folder with the go command.
	AppBinary string
	// RequestsPerSecond is the load sent through Traefik; defaults to 50.
	RequestsPerSecond int
	// RolloutTimeout bounds each release; defaults to 3 minutes.
	RolloutTimeout time.Duration
	// DashboardAddress is where the dashboard listens; dashboardAddress
	// when empty, or a free port when that is taken.
	DashboardAddress string
	// Hold keeps everything running after the releases, for a look at
	// the dashboard, until ctx ends.
	Hold bool
	// AfterReleases, when set, is called with the dashboard's URL after
	// the releases and before the demo stops, for a test to read it.
	AfterReleases func(ctx context.Context, dashboardURL string) error
}

func (o Options) withDefaults() Options {
	if o.RequestsPerSecond <= 0 {
		o.RequestsPerSecond = 50
	}
	if o.RolloutTimeout <= 0 {
		o.RolloutTimeout = 3 * time.Minute
	}
	if o.DashboardAddress == "" {
		o.DashboardAddress = dashboardAddress
	}
	return o
}

// release is a version of the demo app and the outcome it must have.
type release struct {
	version   string
	errorRate float64
	latency   time.Duration
	// about says what is special about it, for people.
	about string
	// want is the phase the rollout must end in.
	want sluicev1beta1.CanaryPhase
}

func (r release) args() []string {
	return []string{
		"--version=" + r.version,
		"--error-rate=" + strconv.FormatFloat(r.errorRate, 'f', -1, 64),
		"--latency=" + r.latency.String(),
	}
}

// scenario is what the demo runs: v1 is deployed, v2 is healthy and must
// be promoted, v3 fails 5% of its requests and must be rolled back.
func scenario() (initial release, releases []release) {
	initial = release{version: "v1", latency: 20 * time.Millisecond, about: "healthy"}
	return initial, []release{
		{version: "v2", latency: 25 * time.Millisecond, about: "healthy", want: sluicev1beta1.CanaryPhaseSucceeded},
		{version: "v3", errorRate: 0.05, latency: 25 * time.Millisecond, about: "5% errors", want: sluicev1beta1.CanaryPhaseFailed},
	}
}

// Run runs the demo, writing what happens to w, and stops everything it
// started before it returns, when ctx ends too. It returns an error when
// a release ends other than it should, or when the demo cannot run.
func Run(ctx context.Context, w io.Writer, opts Options) (err error) {
	opts = opts.withDefaults()
	out := newPrinter(w)
	workDir, err := os.MkdirTemp("", "sluice-demo-")
	if err != nil {
		return fmt.Errorf("create work folder: %w", err)
	}
	// Stopped in reverse order of starting, however Run ends; failed
	// tells the control plane's cleanup to keep its logs.
	var cleanups []func() error
	failed := false
	defer func() {
		// An interrupted demo did not fail: its logs would only pile up.
		failed = err != nil && ctx.Err() == nil
		for i := len(cleanups) - 1; i >= 0; i-- {
			err = errors.Join(err, cleanups[i]())
		}
		if failed {
			out.printf("Logs are kept in %s\n", workDir)
			return
		}
		err = errors.Join(err, os.RemoveAll(workDir))
	}()
	onStop := func(f func() error) { cleanups = append(cleanups, f) }
	keep := func() bool { return failed }

	// The dashboard's address comes first, so that a browser can watch
	// the whole demo, the control plane's start included.
	dash, err := listenDashboard(opts.DashboardAddress)
	if err != nil {
		return err
	}
	onStop(dash.stop)
	out.printf("Sluice dashboard: %s\n", dash.URL)
	out.printf("Sluice demo: two releases of an app behind Traefik (Gateway API), analysed with Prometheus\n\n")
	env, err := start(ctx, out, workDir, opts, onStop, keep)
	if err != nil {
		return err
	}
	if err := dash.attach(env.cp.Config); err != nil {
		return err
	}
	if err := env.play(ctx, opts); err != nil {
		return err
	}
	if opts.AfterReleases != nil {
		if err := opts.AfterReleases(ctx, dash.URL); err != nil {
			return err
		}
	}
	if opts.Hold {
		out.printf("\nThe dashboard stays up at %s; Ctrl-C stops the demo.\n", dash.URL)
		<-ctx.Done()
	}
	return nil
}

// env is everything the demo started.
type env struct {
	out     *printer
	cp      *controlplane.ControlPlane
	ns      *netns.Namespace
	promURL string
	// traefik is the proxy's HTTP address.
	traefik string
	apps    *slots
	load    *load
}

// start brings up the control plane, the network namespace with the app's
// processes, Prometheus, Traefik and the operator, deploys the app's first
// version with its Canary and starts the load. It registers how to stop
// each part with onStop as it goes; failed tells the cleanup whether to
// keep the control plane's logs.
func start(ctx context.Context, out *printer, workDir string, opts Options, onStop func(func() error), failed func() bool) (*env, error) {
	e := &env{out: out}
	began := time.Now()

	crds, err := controlplane.GatewayAPICRDs()
	if err != nil {
		return nil, fmt.Errorf("find the Gateway API CRDs: %w", err)
	}
	var controllers []string
	for _, c := range controlplane.DefaultControllers() {
		// The demo writes the EndpointSlices itself: they point at the
		// app's processes, not at kwok's fake pods.
		if c != "endpointslice" {
			controllers = append(controllers, c)
		}
	}
	step := out.begin("control plane (etcd, kube-apiserver, controllers, kwok)")
	e.cp, err = controlplane.Start(ctx, controlplane.Options{Controllers: controllers, CRDDirectoryPaths: append([]string{controlplane.SluiceCRDs()}, crds...)})
	if err != nil {
		return nil, fmt.Errorf("start the control plane: %w", err)
	}
	onStop(func() error {
		if failed() {
			keepLogs(e.cp.Dir, workDir)
		}
		if err := e.cp.Stop(); err != nil {
			return fmt.Errorf("stop the control plane: %w", err)
		}
		return nil
	})
	step.done("")

	step = out.begin("network namespace for the app")
	if e.ns, err = netns.Create(); err != nil {
		return nil, fmt.Errorf("create the network namespace (the demo needs root): %w", err)
	}
	onStop(func() error {
		if err := e.ns.Close(); err != nil {
			return fmt.Errorf("remove network namespace %s: %w", e.ns.Name, err)
		}
		return nil
	})
	step.done(fmt.Sprintf("%s, the app listens on %s", e.ns.Name, e.ns.IP))

	app := opts.AppBinary
	if app == "" {
		step = out.begin("build the demo app")
		if app, err = buildApp(ctx, workDir); err != nil {
			return nil, err
		}
		step.done("")
	}
	e.apps = startSlots(e.cp.Client, e.ns, app, workDir, out)
	onStop(e.apps.stop)

	step = out.begin("prometheus")
	if e.promURL, err = startPrometheus(ctx, e.cp, workDir, e.ns.IP); err != nil {
		return nil, err
	}
	step.done(e.promURL + ", scraping the app every second")

	step = out.begin("traefik")
	proxy, err := traefik.Start(ctx, e.cp, traefik.Options{})
	if err != nil {
		return nil, err
	}
	e.traefik = proxy.Addr
	step.done("http://" + e.traefik + ", Gateway API provider reading the local API server")

	step = out.begin("sluice operator")
	stopOperator, logPath, err := startOperator(ctx, e.cp, workDir, e.promURL)
	if err != nil {
		return nil, err
	}
	onStop(stopOperator)
	step.done("in-process, log " + logPath)

	step = out.begin("demo app v1 with a Canary")
	first, _ := scenario()
	if err := deployApp(ctx, e.cp.Client, e.ns.IP, e.promURL, first); err != nil {
		return nil, err
	}
	if err := waitPhase(ctx, e.cp.Client, time.Minute, sluicev1beta1.CanaryPhaseInitialized); err != nil {
		return nil, err
	}
	if err := waitServed(ctx, e.traefik, first.version); err != nil {
		return nil, fmt.Errorf("%w; traefik log:\n%s", err, e.cp.Log("traefik"))
	}
	step.done("Canary " + namespace + "/" + appName + " initialized; " + first.version + " serves all traffic")

	e.load = startLoad(e.traefik, host, opts.RequestsPerSecond)
	onStop(func() error { e.load.stop(); return nil })
	out.printf("  load: %d requests/s through Traefik to http://%s/\n", opts.RequestsPerSecond, host)
	out.printf("  ready in %s\n", time.Since(began).Round(100*time.Millisecond))
	return e, nil
}

// play releases each version and prints how each rollout goes, then the
// summary.
func (e *env) play(ctx context.Context, opts Options) error {
	_, releases := scenario()
	results := make([]result, 0, len(releases))
	for _, r := range releases {
		res, err := e.roll(ctx, r, opts.RolloutTimeout)
		if err != nil {
			return err
		}
		results = append(results, res)
	}
	return e.summary(results)
}

// buildApp builds test/demoapp into the work folder.
func buildApp(ctx context.Context, workDir string) (string, error) {
	bin := filepath.Join(workDir, "demoapp")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./test/demoapp")
	build.Dir = controlplane.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the demo app: %w\n%s", err, out)
	}
	return bin, nil
}

// startPrometheus runs Debian's prometheus with the control plane's other
// processes, scraping the two app slots. The labels are what Kubernetes
// service discovery and a relabelling by Deployment would add.
func startPrometheus(ctx context.Context, cp *controlplane.ControlPlane, workDir, appIP string) (string, error) {
	bin, err := testprom.Binary()
	if err != nil {
		return "", err
	}
	config := filepath.Join(workDir, "prometheus.yml")
	targets := []testprom.Target{
		{Addr: fmt.Sprintf("%s:%d", appIP, primaryPort), Labels: map[string]string{"namespace": namespace, "deployment": appName + "-primary"}},
		{Addr: fmt.Sprintf("%s:%d", appIP, canaryPort), Labels: map[string]string{"namespace": namespace, "deployment": appName}},
	}
	if err := os.WriteFile(config, []byte(testprom.ScrapeConfig(targets)), 0o600); err != nil {
		return "", fmt.Errorf("write prometheus config: %w", err)
	}
	addr, err := controlplane.FreeAddr()
	if err != nil {
		return "", err
	}
	cmd := exec.Command(bin, "--config.file="+config, "--storage.tsdb.path="+filepath.Join(workDir, "prometheus-data"), "--web.listen-address="+addr)
	if err := cp.Run("prometheus", cmd); err != nil {
		return "", fmt.Errorf("start prometheus: %w", err)
	}
	url := "http://" + addr
	if err := controlplane.WaitHTTP(ctx, url+"/-/ready"); err != nil {
		return "", fmt.Errorf("prometheus: %w; log:\n%s", err, cp.Log("prometheus"))
	}
	return url, nil
}

// startOperator runs the operator in this process, limited to the demo's
// namespace, with its log in the work folder.
func startOperator(ctx context.Context, cp *controlplane.ControlPlane, workDir, promURL string) (stop func() error, logPath string, err error) {
	logPath = filepath.Join(workDir, "sluice.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, "", fmt.Errorf("create operator log: %w", err)
	}
	log := zap.New(zap.WriteTo(logFile), zap.ConsoleEncoder())
	opts := operator.DefaultOptions()
	opts.Namespace, opts.LeaderElection = namespace, false
	opts.MetricsBindAddress, opts.HealthProbeBindAddress, opts.ReceiverBindAddress = "0", "0", "0"
	opts.MetricsServer = promURL
	opts.GracefulShutdownTimeout = 5 * time.Second
	opCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	mgr, err := operator.New(opCtx, cp.Config, opts, log)
	if err != nil {
		cancel()
		_ = logFile.Close()
		return nil, "", fmt.Errorf("build the operator: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(opCtx) }()
	return func() error {
		cancel()
		err := <-done
		_ = logFile.Close()
		if err != nil {
			return fmt.Errorf("operator: %w", err)
		}
		return nil
	}, logPath, nil
}

// keepLogs copies the control plane's logs into the work folder, which
// outlives it when the demo fails.
func keepLogs(from, to string) {
	logs, _ := filepath.Glob(filepath.Join(from, "*.log"))
	for _, l := range logs {
		if b, err := os.ReadFile(l); err == nil {
			_ = os.WriteFile(filepath.Join(to, filepath.Base(l)), b, 0o600)
		}
	}
}
