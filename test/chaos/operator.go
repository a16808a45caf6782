// Package chaos is the harness of the chaos run (`make chaos`) and of the
// failover test: the sluice binary run out of process as a kubelet would
// run it (started again when it exits), killed at will; the leader lease
// it holds; a recorder of every status a Canary goes through; webhooks
// that count their calls; and a Prometheus that can be stopped and
// started again on the same address.
package chaos

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/manifests"
)

// The operator's namespace and lease, as the install manifests name them.
const (
	OperatorNamespace = "sluice-system"
	LeaseName         = "sluice-leader-election"
)

// InstallOperatorRBAC applies the kustomize install's namespace and RBAC
// and returns a kubeconfig of the operator's ServiceAccount, so that the
// operator runs with exactly the permissions users install.
func InstallOperatorRBAC(ctx context.Context, cp *controlplane.ControlPlane) (string, error) {
	objs, err := manifests.KustomizeBuild(filepath.Join(controlplane.RepoRoot(), "kustomize"))
	if err != nil {
		return "", err
	}
	if err := manifests.Apply(ctx, cp.Client, manifests.OperatorRBAC(objs)); err != nil {
		return "", err
	}
	return cp.KubeconfigFor(manifests.ServiceAccountUser(OperatorNamespace, "sluice"))
}

// Process is one run of the operator binary.
type Process struct {
	// Name tells the runs apart in logs: the log file is Name.log.
	Name string
	// Log is the file its output goes to.
	Log     string
	cmd     *exec.Cmd
	exited  chan struct{}
	err     error
	started time.Time
	ended   time.Time
}

// StartProcess runs bin with args, its output in dir/name.log. It is
// killed with the test process, whatever ends that; the caller stops it.
func StartProcess(bin, dir, name string, args ...string) (*Process, error) {
	p := &Process{Name: name, Log: filepath.Join(dir, name+".log"), exited: make(chan struct{})}
	f, err := os.Create(p.Log)
	if err != nil {
		return nil, fmt.Errorf("create the log of %s: %w", name, err)
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p.started = time.Now()
	go func() {
		p.err = p.cmd.Wait()
		p.ended = time.Now()
		_ = f.Close()
		close(p.exited)
	}()
	return p, nil
}

// Kill sends SIGKILL and waits for the process to be gone.
func (p *Process) Kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// Terminate sends SIGTERM and waits up to timeout for a clean exit, then
// kills.
func (p *Process) Terminate(timeout time.Duration) error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return p.err
	case <-time.After(timeout):
		p.Kill()
		return fmt.Errorf("%s did not exit within %s of SIGTERM", p.Name, timeout)
	}
}

// Exited is closed once the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Err is how the process exited, once Exited is closed.
func (p *Process) Err() error { return p.err }

// Tail is the end of the process's log.
func (p *Process) Tail(n int) string {
	b, err := os.ReadFile(p.Log)
	if err != nil {
		return err.Error()
	}
	return string(b[max(len(b)-n, 0):])
}

// Exit is an exit of a supervised operator that the test did not cause.
type Exit struct {
	At   time.Time
	Name string
	Err  error
	// Reason is the operator's last error line, such as a lost lease.
	Reason string
}

// Supervisor runs the operator as a kubelet runs its container: whenever
// it exits it is started again, at once after a kill and after a second
// otherwise, until Stop.
type Supervisor struct {
	bin, dir string
	args     func() []string

	mu      sync.Mutex
	current *Process
	runs    int
	killed  map[*Process]bool
	exits   []Exit
	startCh chan *Process
	stop    chan struct{}
	done    chan struct{}
}

// Supervise starts the operator binary under a supervisor. args is called
// for each run, so that each gets free ports.
func Supervise(bin, dir string, args func() []string) (*Supervisor, error) {
	s := &Supervisor{bin: bin, dir: dir, args: args, killed: map[*Process]bool{}, stop: make(chan struct{}), done: make(chan struct{}), startCh: make(chan *Process, 1)}
	p, err := s.start()
	if err != nil {
		return nil, err
	}
	go s.loop(p)
	return s, nil
}

func (s *Supervisor) start() (*Process, error) {
	s.mu.Lock()
	s.runs++
	name := fmt.Sprintf("operator-%02d", s.runs)
	s.mu.Unlock()
	p, err := StartProcess(s.bin, s.dir, name, s.args()...)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.current = p
	s.mu.Unlock()
	return p, nil
}

func (s *Supervisor) loop(p *Process) {
	defer close(s.done)
	for {
		select {
		case <-s.stop:
			_ = p.Terminate(20 * time.Second)
			return
		case <-p.Exited():
		}
		s.mu.Lock()
		killed := s.killed[p]
		if !killed {
			s.exits = append(s.exits, Exit{At: p.ended, Name: p.Name, Err: p.err, Reason: lastError(p.Tail(8 << 10))})
		}
		s.mu.Unlock()
		if !killed {
			select {
			case <-s.stop:
				return
			case <-time.After(time.Second):
			}
		}
		for {
			next, err := s.start()
			if err == nil {
				p = next
				break
			}
			select {
			case <-s.stop:
				return
			case <-time.After(time.Second):
			}
		}
	}
}

// Kill SIGKILLs the running operator; the supervisor starts a new one at
// once. It returns the killed run's name and when it was killed.
func (s *Supervisor) Kill() (string, time.Time) {
	s.mu.Lock()
	p := s.current
	s.killed[p] = true
	s.mu.Unlock()
	at := time.Now()
	p.Kill()
	return p.Name, at
}

// Stop stops the running operator with SIGTERM and supervises no more.
func (s *Supervisor) Stop() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}

// Runs is how many times the operator was started.
func (s *Supervisor) Runs() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runs
}

// Exits are the exits the test did not cause.
func (s *Supervisor) Exits() []Exit {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Exit(nil), s.exits...)
}

// Current is the running operator.
func (s *Supervisor) Current() *Process {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.current
}

// lastError is the last log line that reports an error, for the table of
// exits.
func lastError(log string) string {
	lines := strings.Split(strings.TrimSpace(log), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], "ERROR") || strings.Contains(lines[i], `"level":"error"`) {
			return lines[i]
		}
	}
	if len(lines) > 0 {
		return lines[len(lines)-1]
	}
	return ""
}

// LeaseHolder is the holder of the operator's lease; empty when none.
func LeaseHolder(ctx context.Context, c client.Client) (string, error) {
	var lease coordinationv1.Lease
	if err := c.Get(ctx, client.ObjectKey{Namespace: OperatorNamespace, Name: LeaseName}, &lease); err != nil {
		return "", err
	}
	if lease.Spec.HolderIdentity == nil {
		return "", nil
	}
	return *lease.Spec.HolderIdentity, nil
}

// WaitNewHolder polls the lease every 50ms until a holder other than old
// holds it, and returns the new holder and when it was seen. Read errors
// (an API server restarting) are retried until ctx ends.
func WaitNewHolder(ctx context.Context, c client.Client, old string) (string, time.Time, error) {
	for {
		h, err := LeaseHolder(ctx, c)
		if err == nil && h != "" && h != old {
			return h, time.Now(), nil
		}
		select {
		case <-ctx.Done():
			return "", time.Time{}, fmt.Errorf("the lease stayed with %q: %w", old, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// FreeAddr is controlplane.FreeAddr for a test.
func FreeAddr(t testing.TB) string {
	t.Helper()
	addr, err := controlplane.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// Apply applies a multi-document YAML manifest with server-side apply.
func Apply(ctx context.Context, c client.Client, manifest string) error {
	objs, err := manifests.SplitYAML(manifest)
	if err != nil {
		return err
	}
	return manifests.Apply(ctx, c, objs)
}
