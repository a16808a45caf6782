// Package controlplane starts a real Kubernetes control plane on this machine
// for tests and the demo: etcd and kube-apiserver under controller-runtime's
// envtest, plus kube-controller-manager, kube-scheduler and kwok with one
// fake node, so that Deployments and DaemonSets roll out and become Ready
// through the real controllers.
//
// The binaries are built from pinned wrapper modules by `make controlplane`,
// which passes their folder in SLUICE_CONTROLPLANE_DIR.
package controlplane

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	sluicescheme "sluice.dev/sluice/pkg/scheme"
)

// Versions of the binaries, as pinned in test/tools/*/go.mod; the Makefile
// names the cache folder after them.
const (
	KubernetesVersion = "1.37.1"
	EtcdVersion       = "3.6.16"
	KwokVersion       = "0.8.0"
)

// DirEnv names the environment variable that holds the folder of the
// control-plane binaries.
const DirEnv = "SLUICE_CONTROLPLANE_DIR"

// NodeName is the name of the (first) fake node that kwok runs pods on.
const NodeName = "kwok-node-0"

// Service, pod and node addresses. They are never routed anywhere.
const (
	serviceCIDR = "10.96.0.0/16"
	podCIDR     = "10.244.0.0/16"
	nodeIP      = "10.244.255.254"
)

// Options configure a control plane.
type Options struct {
	// BinDir holds the binaries; defaults to $SLUICE_CONTROLPLANE_DIR, then
	// to the cache folder `make controlplane` builds into.
	BinDir string

	// CRDDirectoryPaths are installed when the API server is up; defaults
	// to the repository's kustomize/crds.
	CRDDirectoryPaths []string

	// APIOnly runs only etcd and kube-apiserver: enough for tests that
	// create objects but need no workload to run.
	APIOnly bool

	// Controllers are the kube-controller-manager controllers to run;
	// defaults to DefaultControllers. Traffic tests leave out
	// endpointslice, so that the EndpointSlices they write point at real
	// backends rather than at kwok's pods.
	Controllers []string

	// Output receives the processes' logs as they run; they are always kept
	// in files under Dir too.
	Output io.Writer

	// ControllerQPS is kube-controller-manager's client rate, in requests
	// a second (its burst is twice that); 0 is its own default, 20. At
	// 20, the deployment and replica set controllers take minutes to
	// report a thousand Deployments Available: the scale benchmarks raise
	// it, as a control plane sized for thousands of workloads would.
	ControllerQPS int

	// SchedulerQPS is kube-scheduler's client rate, in requests a second
	// (its burst is twice that); 0 is its own default, 50. Each pod it
	// places is a request: at 50, the scale benchmark's 10,000 primaries
	// would wait more than three minutes for the scheduler alone.
	SchedulerQPS int

	// Nodes is how many fake nodes kwok runs pods on, each with room for
	// 20,000 pods; 0 is one, named NodeName. The scale benchmark runs a
	// target and a primary pod for each of 10,000 Canaries, and some
	// more while they release.
	Nodes int
}

// defaultControllerQPS is kube-controller-manager's own default.
const defaultControllerQPS = 20

// ControlPlane is a running control plane.
type ControlPlane struct {
	// Config reaches the API server as a cluster admin.
	Config *rest.Config
	// Client is a client for Config, with the Kubernetes and Sluice kinds
	// registered.
	Client client.Client
	// Scheme holds the Kubernetes, apiextensions and Sluice kinds.
	Scheme *k8sruntime.Scheme
	// Kubeconfig is the path of an admin kubeconfig file for Config.
	Kubeconfig string
	// Dir holds the kubeconfig and the processes' logs; it is removed by
	// Stop.
	Dir string

	env      *envtest.Environment
	procs    []*process
	watchdog *watchdog
	// restarted is the kube-apiserver RestartAPIServer started in place
	// of envtest's; nil until then.
	restarted *process
}

// Start starts a control plane. On error everything it started is stopped
// again before it returns.
func Start(ctx context.Context, opts Options) (_ *ControlPlane, err error) {
	binDir, err := binaryDir(opts.BinDir)
	if err != nil {
		return nil, err
	}
	crdPaths := opts.CRDDirectoryPaths
	if crdPaths == nil {
		crdPaths = []string{filepath.Join(RepoRoot(), "kustomize", "crds")}
	}
	// The operator's kinds, and the CRDs themselves.
	scheme, err := sluicescheme.New()
	if err != nil {
		return nil, err
	}
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("build scheme: %w", err)
	}
	dir, err := os.MkdirTemp("", "sluice-controlplane-")
	if err != nil {
		return nil, fmt.Errorf("create control plane folder: %w", err)
	}
	cp := &ControlPlane{Dir: dir, Scheme: scheme}
	defer func() {
		if err != nil {
			err = errors.Join(err, cp.Stop())
		}
	}()

	if cp.watchdog, err = startWatchdog(); err != nil {
		return nil, err
	}

	cp.env = &envtest.Environment{
		BinaryAssetsDirectory: binDir,
		CRDDirectoryPaths:     crdPaths,
		ErrorIfCRDPathMissing: true,
		Scheme:                scheme,
	}
	apiServer := cp.env.ControlPlane.GetAPIServer()
	// The apiserver binds to loopback, which it refuses as its own endpoint
	// address; there is no in-cluster client that needs the kubernetes
	// Service, so endpoint reconciling is turned off.
	apiServer.Configure().Set("endpoint-reconciler-type", "none")
	// envtest's /24 runs out after some 250 Services: three per Canary.
	apiServer.Configure().Set("service-cluster-ip-range", serviceCIDR)
	if opts.Output != nil {
		apiServer.Out, apiServer.Err = opts.Output, opts.Output
	}
	started := time.Now()
	before := childPIDs()
	_, startErr := cp.env.Start()
	// envtest starts etcd and kube-apiserver in their own process groups;
	// hand them to the watchdog even when Start failed half-way.
	for pid := range childPIDs() {
		if !before[pid] {
			cp.watchdog.guard(pid)
		}
	}
	if startErr != nil {
		return nil, fmt.Errorf("start etcd and kube-apiserver from %s: %w", binDir, startErr)
	}

	admin, err := cp.env.AddUser(envtest.User{Name: "sluice-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, fmt.Errorf("add admin user: %w", err)
	}
	cp.Config = admin.Config()
	// Tests create objects in bursts; client-side throttling would only
	// slow them down against a private API server.
	cp.Config.QPS, cp.Config.Burst = 1000, 2000
	kubeconfig, err := admin.KubeConfig()
	if err != nil {
		return nil, fmt.Errorf("render admin kubeconfig: %w", err)
	}
	cp.Kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(cp.Kubeconfig, kubeconfig, 0o600); err != nil {
		return nil, fmt.Errorf("write kubeconfig: %w", err)
	}
	// Strict, as `kubectl apply --server-side` is: a field the API server
	// does not know fails the test instead of being dropped.
	if cp.Client, err = client.New(cp.Config, client.Options{Scheme: scheme, FieldValidation: metav1.FieldValidationStrict}); err != nil {
		return nil, fmt.Errorf("create client: %w", err)
	}
	if opts.APIOnly {
		return cp, nil
	}

	controllers := opts.Controllers
	if controllers == nil {
		controllers = DefaultControllers()
	}
	qps := opts.ControllerQPS
	if qps == 0 {
		qps = defaultControllerQPS
	}
	if err := cp.startWorkloadControllers(binDir, controllers, qps, opts.SchedulerQPS, opts.Output); err != nil {
		return nil, err
	}
	for i := range max(opts.Nodes, 1) {
		if err := cp.addNode(ctx, nodeName(i)); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(logOrDiscard(opts.Output), "control plane ready in %s\n", time.Since(started).Round(time.Millisecond))
	return cp, nil
}

// Stop stops every process the control plane started and removes its
// folder. It is safe to call more than once and on a half-started control
// plane.
func (cp *ControlPlane) Stop() error {
	var errs []error
	// Stop the clients of the API server before the API server itself, so
	// that they do not spend the shutdown retrying.
	for i := len(cp.procs) - 1; i >= 0; i-- {
		if err := cp.procs[i].stop(); err != nil {
			errs = append(errs, err)
		}
	}
	cp.procs = nil
	if cp.restarted != nil {
		// Before etcd, which envtest stops next; envtest finds its own
		// kube-apiserver gone and skips it.
		if err := cp.restarted.stop(); err != nil {
			errs = append(errs, err)
		}
		cp.restarted = nil
	}
	if cp.env != nil {
		if err := cp.env.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("stop etcd and kube-apiserver: %w", err))
		}
		cp.env = nil
	}
	if cp.watchdog != nil {
		cp.watchdog.release()
		cp.watchdog = nil
	}
	if cp.Dir != "" {
		if err := os.RemoveAll(cp.Dir); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", cp.Dir, err))
		}
		cp.Dir = ""
	}
	return errors.Join(errs...)
}

// KubeconfigFor writes a kubeconfig that authenticates as the named user in
// the given groups, with no permissions beyond what RBAC grants them. A
// ServiceAccount is the user system:serviceaccount:<namespace>:<name> in
// the groups system:serviceaccounts and system:serviceaccounts:<namespace>.
func (cp *ControlPlane) KubeconfigFor(name string, groups []string) (string, error) {
	user, err := cp.env.AddUser(envtest.User{Name: name, Groups: groups}, nil)
	if err != nil {
		return "", fmt.Errorf("add user %s: %w", name, err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return "", fmt.Errorf("render kubeconfig of %s: %w", name, err)
	}
	f, err := os.CreateTemp(cp.Dir, "kubeconfig-")
	if err != nil {
		return "", fmt.Errorf("create kubeconfig file: %w", err)
	}
	defer func() { _ = f.Close() }()
	if _, err := f.Write(kubeconfig); err != nil {
		return "", fmt.Errorf("write kubeconfig of %s: %w", name, err)
	}
	return f.Name(), nil
}

// Run starts a process that belongs with the control plane, such as a
// proxy or a test backend: its output goes to Dir/<name>.log, the watchdog
// kills it if the test process dies, and Stop stops it before the API
// server.
func (cp *ControlPlane) Run(name string, cmd *exec.Cmd) error {
	logFile, err := os.Create(filepath.Join(cp.Dir, name+".log"))
	if err != nil {
		return fmt.Errorf("create log file of %s: %w", name, err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, log: logFile, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	cp.procs = append(cp.procs, p)
	cp.watchdog.guard(cmd.Process.Pid)
	return nil
}

// Log returns the end of a process's log, for failure messages.
func (cp *ControlPlane) Log(name string) string { return tail(filepath.Join(cp.Dir, name+".log")) }

// DefaultControllers are the controllers that make workloads real:
// rollouts, pods of DaemonSets, endpoints of Services, garbage collection of
// owned objects and namespace deletion.
func DefaultControllers() []string {
	return []string{"deployment", "replicaset", "daemonset", "endpointslice", "garbagecollector", "namespace"}
}

func (cp *ControlPlane) startWorkloadControllers(binDir string, controllers []string, controllerQPS, schedulerQPS int, output io.Writer) error {
	kwokAddr, err := FreeAddr()
	if err != nil {
		return err
	}
	stages, err := filepath.Glob(filepath.Join(binDir, "kwok-stages", "*.yaml"))
	if err != nil || len(stages) == 0 {
		return fmt.Errorf("no kwok stages in %s: run `make controlplane`", filepath.Join(binDir, "kwok-stages"))
	}
	kwokArgs := []string{
		"--kubeconfig=" + cp.Kubeconfig,
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
		"--manage-nodes-with-label-selector=",
		"--manage-single-node=",
		"--cidr=" + podCIDR,
		"--node-ip=" + nodeIP,
		"--node-lease-duration-seconds=40",
		"--server-address=" + kwokAddr,
	}
	for _, s := range stages {
		kwokArgs = append(kwokArgs, "--config="+s)
	}
	commands := []struct {
		name string
		args []string
	}{
		{"kube-controller-manager", []string{
			"--kubeconfig=" + cp.Kubeconfig,
			"--leader-elect=false",
			"--controllers=" + strings.Join(controllers, ","),
			"--secure-port=0",
			"--use-service-account-credentials=false",
			"--concurrent-deployment-syncs=10",
			"--concurrent-replicaset-syncs=10",
			fmt.Sprintf("--kube-api-qps=%d", controllerQPS),
			fmt.Sprintf("--kube-api-burst=%d", 2*controllerQPS),
		}},
		{"kube-scheduler", schedulerArgs(cp.Kubeconfig, schedulerQPS)},
		{"kwok", kwokArgs},
	}
	for _, c := range commands {
		p, err := startProcess(filepath.Join(binDir, c.name), c.args, filepath.Join(cp.Dir, c.name+".log"), output)
		if err != nil {
			return err
		}
		cp.procs = append(cp.procs, p)
		cp.watchdog.guard(p.cmd.Process.Pid)
	}
	return nil
}

// schedulerArgs are kube-scheduler's flags; a qps of 0 keeps its own
// client rate.
func schedulerArgs(kubeconfig string, qps int) []string {
	args := []string{"--kubeconfig=" + kubeconfig, "--leader-elect=false", "--secure-port=0"}
	if qps > 0 {
		// Deprecated flags, but the only ones without a config file.
		args = append(args, fmt.Sprintf("--kube-api-qps=%d", qps), fmt.Sprintf("--kube-api-burst=%d", 2*qps))
	}
	return args
}

// nodeName is the name of the i-th fake node; the first is NodeName.
func nodeName(i int) string { return fmt.Sprintf("kwok-node-%d", i) }

// addNode registers a fake node, waits until kwok reports it Ready, and
// removes the not-ready taint that the node lifecycle controller would
// remove in a real cluster.
func (cp *ControlPlane) addNode(ctx context.Context, name string) error {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("64"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		// Room for the benchmarks' thousands of pods, which share the
		// node with those of earlier benchmarks in the same package.
		corev1.ResourcePods: resource.MustParse("20000"),
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake"},
			Labels: map[string]string{
				"kubernetes.io/hostname": name,
				"kubernetes.io/os":       "linux",
				"kubernetes.io/arch":     "amd64",
				"type":                   "kwok",
			},
		},
		Status: corev1.NodeStatus{Capacity: capacity, Allocatable: capacity},
	}
	if err := cp.Client.Create(ctx, node); err != nil {
		return fmt.Errorf("create node %s: %w", name, err)
	}
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(node), node); err != nil {
			return false, nil //nolint:nilerr // transient read errors are retried until the timeout
		}
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("wait for node %s to be Ready (kwok log: %s): %w", name, tail(filepath.Join(cp.Dir, "kwok.log")), err)
	}
	patch := client.MergeFrom(node.DeepCopy())
	node.Spec.Taints = nil
	if err := cp.Client.Patch(ctx, node, patch); err != nil {
		return fmt.Errorf("remove taints of node %s: %w", name, err)
	}
	return nil
}

// binaryDir finds the control-plane binaries and says how to build them when
// they are missing. Without an explicit folder it looks where `make
// controlplane` builds: a folder named after the versions and a hash of the
// wrapper modules.
func binaryDir(dir string) (string, error) {
	if dir == "" {
		dir = os.Getenv(DirEnv)
	}
	if dir == "" {
		cache := os.Getenv("XDG_CACHE_HOME")
		if cache == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", fmt.Errorf("find the control plane binaries: %w", err)
			}
			cache = filepath.Join(home, ".cache")
		}
		pattern := filepath.Join(cache, "sluice", "controlplane",
			fmt.Sprintf("k8s-%s-etcd-%s-kwok-%s-*", KubernetesVersion, EtcdVersion, KwokVersion), ".complete")
		found, _ := filepath.Glob(pattern)
		if len(found) == 0 {
			return "", fmt.Errorf("no control plane binaries match %s: run `make controlplane` (or `make test`, which builds them)", pattern)
		}
		dir = filepath.Dir(found[len(found)-1])
	}
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err != nil {
		return "", fmt.Errorf("control plane binaries are missing in %s: run `make controlplane` (or `make test`, which builds them)", dir)
	}
	return dir, nil
}

// RepoRoot is the root of the Sluice repository this package was built from.
func RepoRoot() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "."
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}

type process struct {
	name string
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
}

func startProcess(path string, args []string, logPath string, output io.Writer) (*process, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create log file: %w", err)
	}
	cmd := exec.Command(path, args...)
	var out io.Writer = logFile
	if output != nil {
		out = io.MultiWriter(logFile, output)
	}
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, so that a Ctrl-C meant for the test does not
	// race Stop, and so that the watchdog can kill it with its children.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("start %s: %w", filepath.Base(path), err)
	}
	p := &process{name: filepath.Base(path), cmd: cmd, log: logFile, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *process) stop() error {
	defer func() { _ = p.log.Close() }()
	select {
	case <-p.done:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(10 * time.Second):
	}
	if err := syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill %s: %w", p.name, err)
	}
	<-p.done
	return nil
}

// watchdog is a shell process, outside the test's process group, that kills
// the control plane's processes if the test process dies without stopping
// them (a panic, a timeout, a SIGKILL). It learns their process ids over a
// pipe and acts when the pipe closes without a "done" line, which the kernel
// does however the test process ends.
type watchdog struct {
	cmd   *exec.Cmd
	pipe  io.WriteCloser
	guard func(pid int)
}

const watchdogScript = `pids=""
while read -r line; do
  if [ "$line" = done ]; then exit 0; fi
  pids="$pids $line"
done
for p in $pids; do kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null; done
`

func startWatchdog() (*watchdog, error) {
	cmd := exec.Command("/bin/sh", "-c", watchdogScript)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pipe, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("watchdog pipe: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start watchdog: %w", err)
	}
	w := &watchdog{cmd: cmd, pipe: pipe}
	w.guard = func(pid int) { _, _ = fmt.Fprintf(pipe, "%d\n", pid) }
	return w, nil
}

func (w *watchdog) release() {
	_, _ = io.WriteString(w.pipe, "done\n")
	_ = w.pipe.Close()
	_ = w.cmd.Wait()
}

// childPIDs returns the live child processes of this process.
func childPIDs() map[int]bool {
	pids := map[int]bool{}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return pids
	}
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// The command name in parentheses may hold spaces; the parent id is
		// the second field after its closing parenthesis.
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(self) {
			pids[pid] = true
		}
	}
	return pids
}

// FreeAddr returns a loopback address with a port nothing listens on, for
// a process the caller is about to start.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String(), nil
}

// tail returns the end of a log file, for error messages.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	const max = 2000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return strings.TrimSpace(string(b))
}

func logOrDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}
