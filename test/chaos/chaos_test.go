package chaos_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/test/binary"
	"sluice.dev/sluice/test/chaos"
	"sluice.dev/sluice/test/gitserver"
	"sluice.dev/sluice/test/helmrepo"
	"sluice.dev/sluice/test/prometheus"
)

// The run's size comes from the environment; the defaults are the short
// run of `make test`, and `make chaos` asks for the full one.
const (
	rolloutsEnv = "SLUICE_CHAOS_ROLLOUTS"
	killsEnv    = "SLUICE_CHAOS_KILLS"
	seedEnv     = "SLUICE_CHAOS_SEED"
)

// The operator's lease timings in the run: short, so that a killed
// operator's successor takes over within seconds.
const (
	leaseDuration = 5 * time.Second
	renewDeadline = 4 * time.Second
	retryPeriod   = time.Second
)

// The other faults.
const (
	hangFor       = 20 * time.Second
	prometheusOff = 30 * time.Second
	// minFaultGap keeps kills and the API server restart apart, so that
	// each recovery is measured on its own.
	minFaultGap = 10 * time.Second
)

type config struct {
	rollouts, kills int
	seed            uint64
}

func readConfig(t *testing.T) config {
	t.Helper()
	c := config{rollouts: 6, kills: 3, seed: uint64(time.Now().UnixNano())}
	for name, into := range map[string]*int{rolloutsEnv: &c.rollouts, killsEnv: &c.kills} {
		if v := os.Getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				t.Fatalf("%s=%q: want a non-negative number", name, v)
			}
			*into = n
		}
	}
	if v := os.Getenv(seedEnv); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: want a number", seedEnv, v)
		}
		c.seed = n
	}
	if c.rollouts < len(kinds) {
		t.Fatalf("%s=%d: want at least one rollout of each of the %d kinds", rolloutsEnv, c.rollouts, len(kinds))
	}
	return c
}

// fault is one fault of the plan, at an offset from the start of the
// rollouts.
type fault struct {
	at   time.Duration
	kind string
}

const (
	faultKill      = "operator SIGKILLed and restarted"
	faultAPIServer = "kube-apiserver restarted"
	faultHang      = "webhooks hang past their timeout (20 s)"
	faultProm      = "Prometheus stopped (30 s)"
)

// planFaults draws the faults' moments from the seed, within horizon.
func planFaults(rng *rand.Rand, kills int, horizon time.Duration) []fault {
	var spaced []fault
	for range kills {
		spaced = append(spaced, fault{kind: faultKill})
	}
	spaced = append(spaced, fault{kind: faultAPIServer})
	for i := range spaced {
		spaced[i].at = 10*time.Second + time.Duration(rng.Int64N(int64(horizon-20*time.Second)))
	}
	slices.SortFunc(spaced, func(a, b fault) int { return int(a.at - b.at) })
	for i := 1; i < len(spaced); i++ {
		spaced[i].at = max(spaced[i].at, spaced[i-1].at+minFaultGap)
	}
	faults := append(spaced,
		// In the first half, while every kind still has rollouts to run.
		fault{kind: faultHang, at: 5*time.Second + time.Duration(rng.Int64N(int64(horizon/2)))},
		fault{kind: faultProm, at: 5*time.Second + time.Duration(rng.Int64N(int64(horizon/2)))},
	)
	slices.SortFunc(faults, func(a, b fault) int { return int(a.at - b.at) })
	return faults
}

// result is one rollout's outcome.
type result struct {
	lane     *lane
	version  string
	healthy  bool
	phase    sluicev1beta1.CanaryPhase
	problems []string
	took     time.Duration
}

// injected is a fault as it happened.
type injected struct {
	fault
	started time.Time
	// recovery is, for a kill, from the kill until the next operator
	// held the lease; for the API server, how long it was down.
	recovery time.Duration
	detail   string
	err      error
}

func TestChaos(t *testing.T) {
	cfg := readConfig(t)
	t.Logf("chaos seed %d: replay with %s=%d %s=%d %s=%d", cfg.seed, seedEnv, cfg.seed, rolloutsEnv, cfg.rollouts, killsEnv, cfg.kills)
	fmt.Printf("chaos seed %d (%d rollouts, %d kills)\n", cfg.seed, cfg.rollouts, cfg.kills)
	rng := rand.New(rand.NewPCG(cfg.seed, cfg.seed>>1|1))
	ctx := t.Context()

	dir, err := os.MkdirTemp("", "sluice-chaos-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the operators' and Prometheus's logs are kept in %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	})
	bin, err := binary.Build(dir)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := chaos.InstallOperatorRBAC(ctx, cp)
	if err != nil {
		t.Fatal(err)
	}

	e := &env{}
	var closeHooks, closeExporter func()
	e.hooks, closeHooks = chaos.StartHooks()
	t.Cleanup(closeHooks)
	e.exporter, closeExporter = chaos.StartExporter()
	t.Cleanup(closeExporter)
	promDir := filepath.Join(dir, "prometheus")
	if err := os.MkdirAll(promDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if e.prom, err = chaos.StartPrometheus(ctx, promDir, prometheus.Target{Addr: e.exporter.Addr}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.prom.Stop)
	e.charts = helmrepo.NewHTTP(t)
	helmChart(t, e.charts)
	e.git = gitserver.New(t)
	recorder, err := chaos.StartRecorder(ctx, cp.Config, cp.Scheme)
	if err != nil {
		t.Fatal(err)
	}

	// Lanes: two rollouts each, up to 20 lanes at once, each of one kind;
	// the rollouts are healthy or failing as the seed draws (about a
	// third failing).
	lanes := make([]*lane, min((cfg.rollouts+1)/2, 20))
	healthy := make([][]bool, len(lanes))
	for i := range cfg.rollouts {
		healthy[i%len(lanes)] = append(healthy[i%len(lanes)], rng.IntN(3) > 0)
	}
	for i := range lanes {
		lanes[i] = newLane(kinds[i%len(kinds)], i, healthy[i])
	}
	// The faults fall while the rollouts run: an A/B or blue/green
	// rollout takes about 40 s, the others longer.
	horizon := time.Duration(len(healthy[0])) * 40 * time.Second
	faults := planFaults(rng, cfg.kills, horizon)

	operator, err := chaos.Supervise(bin, dir, func() []string {
		return []string{
			"--kubeconfig=" + kubeconfig,
			"--leader-election-namespace=" + chaos.OperatorNamespace,
			"--leader-election-lease-duration=" + leaseDuration.String(),
			"--leader-election-renew-deadline=" + renewDeadline.String(),
			"--leader-election-retry-period=" + retryPeriod.String(),
			"--metrics-bind-address=0",
			"--health-probe-bind-address=0",
			"--receiver-bind-address=0",
			"--log-encoding=console",
			"--concurrent=16",
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(operator.Stop)

	// Set up every lane and wait for its Canary.
	var wg sync.WaitGroup
	setupErrs := make([]error, len(lanes))
	for i, l := range lanes {
		wg.Go(func() {
			if err := l.setup(ctx, e); err != nil {
				setupErrs[i] = fmt.Errorf("%s: %w", l.ns, err)
				return
			}
			setupErrs[i] = l.waitInitialized(ctx, recorder)
		})
	}
	wg.Wait()
	for _, err := range setupErrs {
		if err != nil {
			t.Error(err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// The rollouts and the faults, side by side.
	start := time.Now()
	runCtx, stopFaults := context.WithCancel(ctx)
	var (
		mu      sync.Mutex
		results []result
		done    []injected
	)
	var faultsDone sync.WaitGroup
	faultsDone.Go(func() {
		for _, f := range faults {
			select {
			case <-runCtx.Done():
				return
			case <-time.After(time.Until(start.Add(f.at))):
			}
			record := func() {
				in := inject(runCtx, f, operator, e, recorder)
				mu.Lock()
				done = append(done, in)
				mu.Unlock()
			}
			if f.kind == faultProm {
				// Its 30 s must not hold up the faults planned after it.
				faultsDone.Go(record)
				continue
			}
			record()
		}
	})
	killTimes := func() []time.Time {
		mu.Lock()
		defer mu.Unlock()
		var out []time.Time
		for _, in := range done {
			if in.kind == faultKill {
				out = append(out, in.started)
			}
		}
		return out
	}
	for _, l := range lanes {
		wg.Go(func() {
			for n, ok := range l.healthy {
				r := runRollout(ctx, l, e, recorder, fmt.Sprintf("app:%d", n+2), ok, killTimes)
				mu.Lock()
				results = append(results, r)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	// Faults planned past the last rollout still run: their checks below
	// hold for a quiet cluster too.
	faultsDone.Wait()
	stopFaults()
	slices.SortFunc(done, func(a, b injected) int { return a.started.Compare(b.started) })
	elapsed := time.Since(start)

	var final []string
	final = append(final, finalChecks(ctx, lanes, e)...)
	report(t, cfg, lanes, results, done, operator, e, elapsed)
	for _, r := range results {
		for _, p := range r.problems {
			t.Errorf("%s %s (%s, %s): %s", r.lane.ns, r.version, r.lane.kind, map[bool]string{true: "healthy", false: "failing"}[r.healthy], p)
		}
	}
	for _, in := range done {
		if in.err != nil {
			t.Errorf("fault %q at %s: %v", in.kind, in.at, in.err)
		}
	}
	for _, p := range final {
		t.Error(p)
	}
	if t.Failed() {
		t.Logf("replay with %s=%d %s=%d %s=%d", seedEnv, cfg.seed, rolloutsEnv, cfg.rollouts, killsEnv, cfg.kills)
	}
}

// inject carries out one fault and waits for its recovery.
func inject(ctx context.Context, f fault, operator *chaos.Supervisor, e *env, recorder *chaos.Recorder) injected {
	in := injected{fault: f, started: time.Now()}
	switch f.kind {
	case faultKill:
		old, _ := chaos.LeaseHolder(ctx, cp.Client)
		name, at := operator.Kill()
		in.started = at
		waitCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		holder, took, err := chaos.WaitNewHolder(waitCtx, cp.Client, old)
		if err != nil {
			in.err = fmt.Errorf("after killing %s: %w", name, err)
			return in
		}
		in.recovery = took.Sub(at)
		in.detail = fmt.Sprintf("killed %s; %s took the lease", name, holder)
		if w, ok := recorder.FirstWriteAfter(took); ok {
			in.detail += fmt.Sprintf("; first Canary status write %s after the kill", w.Sub(at).Round(10*time.Millisecond))
		}
	case faultAPIServer:
		down, err := cp.RestartAPIServer(ctx)
		in.recovery, in.err = down, err
	case faultHang:
		e.hooks.Hang(hangFor)
	case faultProm:
		e.prom.Stop()
		select {
		case <-ctx.Done():
		case <-time.After(prometheusOff):
		}
		// Started again even when the run is over, for a clean stop.
		in.err = e.prom.Start(context.WithoutCancel(ctx))
	}
	return in
}

// runRollout releases one version in a lane and checks how it went.
func runRollout(ctx context.Context, l *lane, e *env, recorder *chaos.Recorder, version string, healthy bool, kills func() []time.Time) result {
	r := result{lane: l, version: version, healthy: healthy}
	started := time.Now()
	if err := l.release(ctx, e, version, healthy); err != nil {
		r.problems = append(r.problems, fmt.Sprintf("release: %v", err))
		return r
	}
	var obs []chaos.Observation
	deadline := started.Add(6 * time.Minute)
	for {
		var ended bool
		obs, ended = chaos.Cut(recorder.History(l.key), started)
		if ended {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			last := "no status since the release"
			if len(obs) > 0 {
				last = obs[len(obs)-1].String()
			}
			r.problems = append(r.problems, "did not end within 6 minutes: "+last)
			return r
		}
		time.Sleep(200 * time.Millisecond)
	}
	end := obs[len(obs)-1]
	r.phase, r.took = end.Phase, end.At.Sub(started)
	r.problems = append(r.problems, l.settle(ctx, end)...)
	// Hooks fired after the status write, and the primary's template
	// change, reach the test a moment later.
	time.Sleep(3 * time.Second)
	promotions := chaos.Promotions(recorder.Templates(l.key), started, time.Now())
	r.problems = append(r.problems, chaos.Check(expectation(l, healthy), obs, promotions)...)

	// Run-once hooks: the post-rollout hook once per rollout (at most
	// once when the operator was killed just as it was due: it is fired
	// after the status write), and no rollback hook once rolled back.
	post := callsIn(e.hooks.Calls(l.key, sluicev1beta1.PostRolloutHook), started, time.Now())
	killedNearEnd := slices.ContainsFunc(kills(), func(k time.Time) bool {
		return k.After(end.At.Add(-2*time.Second)) && k.Before(end.At.Add(2*time.Second))
	})
	if len(post) > 1 || (len(post) == 0 && !killedNearEnd) {
		r.problems = append(r.problems, fmt.Sprintf("the post-rollout hook was called %d times, want once", len(post)))
	}
	if end.Phase == sluicev1beta1.CanaryPhaseFailed {
		if late := callsIn(e.hooks.Calls(l.key, sluicev1beta1.RollbackHook), end.At.Add(time.Second), time.Now()); len(late) > 0 {
			r.problems = append(r.problems, fmt.Sprintf("the rollback hook was called %d times after the rollback", len(late)))
		}
	}
	if len(r.problems) > 0 {
		var lines []string
		for _, o := range obs {
			lines = append(lines, "  "+o.String())
		}
		r.problems = append(r.problems, "statuses:\n"+strings.Join(lines, "\n"))
	}
	return r
}

func expectation(l *lane, healthy bool) chaos.Expectation {
	e := l.expect
	e.Healthy = healthy
	return e
}

func callsIn(calls []chaos.Call, from, to time.Time) []chaos.Call {
	var out []chaos.Call
	for _, c := range calls {
		if c.At.After(from) && !c.At.After(to) {
			out = append(out, c)
		}
	}
	return out
}

// finalChecks are what must hold once everything is over: no route split,
// no Helm release pending, no post-rollout hook called twice for one
// revision.
func finalChecks(ctx context.Context, lanes []*lane, e *env) []string {
	var problems []string
	for _, l := range lanes {
		switch {
		case l.gatewayRouted():
			route := &gatewayv1.HTTPRoute{}
			if err := retry(ctx, func(ctx context.Context) error { return cp.Client.Get(ctx, l.key, route) }); err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", l.ns, err))
			} else if split := chaos.RouteSplit(route, "app"); split != "" {
				problems = append(problems, fmt.Sprintf("%s: the route is left split: %s", l.ns, split))
			}
		case l.kind == helmKind:
			if status, err := helmStatus(ctx, l.ns); err != nil || strings.HasPrefix(status, "pending") {
				problems = append(problems, fmt.Sprintf("%s: the Helm release is left %q (%v)", l.ns, status, err))
			}
		}
	}
	type revision struct {
		canary   client.ObjectKey
		checksum string
	}
	posts := map[revision]int{}
	for _, c := range e.hooks.All() {
		if c.Type == sluicev1beta1.PostRolloutHook {
			posts[revision{c.Canary, c.Checksum}]++
		}
	}
	for rev, n := range posts {
		if n > 1 {
			problems = append(problems, fmt.Sprintf("%s: the post-rollout hook was called %d times for revision %s", rev.canary, n, rev.checksum))
		}
	}
	return problems
}

// report prints the table of the run.
func report(t *testing.T, cfg config, lanes []*lane, results []result, faults []injected, operator *chaos.Supervisor, e *env, elapsed time.Duration) {
	var b strings.Builder
	fmt.Fprintf(&b, "\nChaos run, seed %d: %d rollouts in %d lanes, %s (rollouts and faults)\n\n", cfg.seed, len(results), len(lanes), elapsed.Round(time.Second))
	fmt.Fprintf(&b, "| rollout kind | rollouts | healthy → Succeeded | failing → Failed | wrong |\n|---|---|---|---|---|\n")
	totalRight, totalWrong := 0, 0
	for _, k := range kinds {
		n, okHealthy, allHealthy, okFailing, allFailing, wrong := 0, 0, 0, 0, 0, 0
		for _, r := range results {
			if r.lane.kind != k {
				continue
			}
			n++
			right := len(r.problems) == 0
			if r.healthy {
				allHealthy++
				if right {
					okHealthy++
				}
			} else {
				allFailing++
				if right {
					okFailing++
				}
			}
			if !right {
				wrong++
			}
		}
		totalRight += n - wrong
		totalWrong += wrong
		fmt.Fprintf(&b, "| %s | %d | %d/%d | %d/%d | %d |\n", k, n, okHealthy, allHealthy, okFailing, allFailing, wrong)
	}
	fmt.Fprintf(&b, "| **all** | %d | | | %d (%d right) |\n\n", len(results), totalWrong, totalRight)
	var took []time.Duration
	for _, r := range results {
		if r.took > 0 {
			took = append(took, r.took)
		}
	}
	slices.Sort(took)
	if len(took) > 0 {
		fmt.Fprintf(&b, "A rollout took %s (median) and at most %s, from the change to Succeeded or Failed.\n\n", took[len(took)/2].Round(time.Second), took[len(took)-1].Round(time.Second))
	}

	fmt.Fprintf(&b, "| fault | injected |\n|---|---|\n")
	counts := map[string]int{}
	var recoveries []time.Duration
	var apiDown time.Duration
	for _, in := range faults {
		counts[in.kind]++
		switch {
		case in.kind == faultKill && in.err == nil:
			recoveries = append(recoveries, in.recovery)
		case in.kind == faultAPIServer:
			apiDown = in.recovery
		}
	}
	for _, k := range []string{faultKill, faultAPIServer, faultHang, faultProm} {
		fmt.Fprintf(&b, "| %s | %d |\n", k, counts[k])
	}
	exits := operator.Exits()
	fmt.Fprintf(&b, "| operator exits it chose (lost lease, failed start) | %d |\n", len(exits))
	calls := map[sluicev1beta1.HookType]int{}
	for _, c := range e.hooks.All() {
		calls[c.Type]++
	}
	fmt.Fprintf(&b, "| webhook calls that hung (of %d gate, %d rollout and %d rollback calls) | %d |\n\n",
		calls[sluicev1beta1.ConfirmRolloutHook]+calls[sluicev1beta1.ConfirmPromotionHook], calls[sluicev1beta1.RolloutHook], calls[sluicev1beta1.RollbackHook], e.hooks.Hung())

	slices.Sort(recoveries)
	if len(recoveries) > 0 {
		fmt.Fprintf(&b, "Recovery after a kill, from the SIGKILL until the next operator process holds the lease (lease %s, renew deadline %s, retry period %s): median %s, max %s over %d kills.\n",
			leaseDuration, renewDeadline, retryPeriod,
			recoveries[len(recoveries)/2].Round(10*time.Millisecond), recoveries[len(recoveries)-1].Round(10*time.Millisecond), len(recoveries))
	}
	if apiDown > 0 {
		fmt.Fprintf(&b, "kube-apiserver restart: down %s, from the stop until /readyz answered.\n", apiDown.Round(10*time.Millisecond))
	}
	fmt.Fprintf(&b, "\nFaults in order:\n")
	for _, in := range faults {
		line := fmt.Sprintf("  %6s %s", in.at.Round(time.Second), in.kind)
		if in.kind == faultHang {
			n := 0
			for _, c := range e.hooks.All() {
				if c.Type != sluicev1beta1.PostRolloutHook && !c.At.Before(in.started) && c.At.Before(in.started.Add(hangFor)) {
					n++
				}
			}
			line += fmt.Sprintf(" (%d webhook calls of any kind but post-rollout in its window)", n)
		}
		if in.recovery > 0 {
			line += fmt.Sprintf(" (recovered in %s)", in.recovery.Round(10*time.Millisecond))
		}
		if in.detail != "" {
			line += ": " + in.detail
		}
		if in.err != nil {
			line += fmt.Sprintf(" ERROR %v", in.err)
		}
		fmt.Fprintln(&b, line)
	}
	for _, x := range exits {
		fmt.Fprintf(&b, "  operator exit at %s (%s, %v): %s\n", x.At.Format("15:04:05"), x.Name, x.Err, x.Reason)
	}
	fmt.Print(b.String())
	t.Log(b.String())
}
