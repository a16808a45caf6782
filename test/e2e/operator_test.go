package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/test/binary"
	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/manifests"
)

var buildOperator = sync.OnceValues(func() (string, error) { return binary.Build(workDir) })

// operatorBinary builds cmd/sluice once per test run.
func operatorBinary(t *testing.T) string {
	t.Helper()
	bin, err := buildOperator()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// operatorProcess is the operator binary with its endpoints.
type operatorProcess struct {
	*binary.Operator
	metricsAddr string
	probeAddr   string
}

func freeAddr(t *testing.T) string {
	t.Helper()
	addr, err := controlplane.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

func startOperator(t *testing.T, kubeconfig string, extraArgs ...string) *operatorProcess {
	t.Helper()
	p := &operatorProcess{metricsAddr: freeAddr(t), probeAddr: freeAddr(t)}
	args := append([]string{
		"--kubeconfig=" + kubeconfig,
		"--leader-election-namespace=sluice-system",
		"--metrics-bind-address=" + p.metricsAddr,
		"--health-probe-bind-address=" + p.probeAddr,
		"--receiver-bind-address=" + freeAddr(t),
		"--log-encoding=console",
	}, extraArgs...)
	p.Operator = binary.Start(t, operatorBinary(t), args...)
	return p
}

func (p *operatorProcess) get(path string) (int, string, error) {
	addr := p.probeAddr
	if path == "/metrics" {
		addr = p.metricsAddr
	}
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// stop sends SIGTERM and returns the exit code.
func (p *operatorProcess) stop(t *testing.T) int {
	t.Helper()
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Exited():
	case <-time.After(45 * time.Second):
		t.Fatal("the operator did not exit within 45s of SIGTERM")
	}
	var exit *exec.ExitError
	if errors.As(p.Err(), &exit) {
		return exit.ExitCode()
	}
	return 0
}

func leaseHolder(ctx context.Context) (string, error) {
	var lease coordinationv1.Lease
	if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: "sluice-system", Name: "sluice-leader-election"}, &lease); err != nil {
		return "", err
	}
	if lease.Spec.HolderIdentity == nil {
		return "", nil
	}
	return *lease.Spec.HolderIdentity, nil
}

// installRBAC applies the kustomize namespace and RBAC for real and returns
// a kubeconfig of the operator's ServiceAccount, so that the operator runs
// with exactly the permissions users install.
func installRBAC(t *testing.T) string {
	t.Helper()
	apply(t, manifests.OperatorRBAC(kustomizeBuild(t)))
	kubeconfig, err := cp.KubeconfigFor(manifests.ServiceAccountUser("sluice-system", "sluice"))
	if err != nil {
		t.Fatal(err)
	}
	return kubeconfig
}

func TestOperatorBinary(t *testing.T) {
	kubeconfig := installRBAC(t)
	first := startOperator(t, kubeconfig)

	t.Run("it becomes ready", func(t *testing.T) {
		controlplane.Eventually(t, 30*time.Second, "/readyz answers 200", func(context.Context) (bool, string) {
			code, body, err := first.get("/readyz")
			return code == http.StatusOK, fmt.Sprintf("%d %s %v", code, body, err)
		})
		if code, _, err := first.get("/healthz"); code != http.StatusOK {
			t.Fatalf("/healthz: %d %v", code, err)
		}
	})

	t.Run("it holds the leader lease", func(t *testing.T) {
		controlplane.Eventually(t, 30*time.Second, "the lease has a holder", func(ctx context.Context) (bool, string) {
			holder, err := leaseHolder(ctx)
			return holder != "", fmt.Sprintf("holder %q, %v", holder, err)
		})
	})

	t.Run("it serves metrics, leadership among them", func(t *testing.T) {
		controlplane.Eventually(t, 10*time.Second, "/metrics reports leadership", func(context.Context) (bool, string) {
			code, body, err := first.get("/metrics")
			ok := code == http.StatusOK &&
				strings.Contains(body, `sluice_info{default_provider="kubernetes",version="dev"} 1`) &&
				strings.Contains(body, `leader_election_master_status{name="sluice-leader-election"} 1`)
			return ok, fmt.Sprintf("%d %v\n%s", code, err, body)
		})
	})

	firstHolder, err := leaseHolder(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	second := startOperator(t, kubeconfig)

	t.Run("a second replica is ready but waits for the lease", func(t *testing.T) {
		controlplane.Eventually(t, 30*time.Second, "/readyz of the second replica answers 200", func(context.Context) (bool, string) {
			code, body, err := second.get("/readyz")
			return code == http.StatusOK, fmt.Sprintf("%d %s %v", code, body, err)
		})
		if holder, err := leaseHolder(t.Context()); err != nil || holder != firstHolder {
			t.Fatalf("lease holder %q (%v), want the first replica %q", holder, err, firstHolder)
		}
	})

	t.Run("it exits 0 on SIGTERM and hands the lease over", func(t *testing.T) {
		if code := first.stop(t); code != 0 {
			t.Fatalf("exit code %d\n%s", code, first.Output)
		}
		controlplane.Eventually(t, 30*time.Second, "the second replica takes the lease", func(ctx context.Context) (bool, string) {
			holder, err := leaseHolder(ctx)
			return holder != "" && holder != firstHolder, fmt.Sprintf("holder %q, %v", holder, err)
		})
		if code := second.stop(t); code != 0 {
			t.Fatalf("second replica exit code %d\n%s", code, second.Output)
		}
		holder, err := leaseHolder(t.Context())
		if err != nil || holder != "" {
			t.Fatalf("the lease was not released on shutdown: holder %q, %v", holder, err)
		}
	})
}

func TestOperatorRejectsBadFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"an unknown default provider", []string{"--default-provider=envoy"}, `default provider "envoy" is not one of`},
		{"an unknown log level", []string{"--log-level=loud"}, `log level "loud"`},
		{"an unknown flag", []string{"--mesh=istio"}, "flag provided but not defined: -mesh"},
		{"a stray argument", []string{"start"}, "unexpected arguments [start]"},
		{"a renew deadline longer than the lease", []string{"--leader-election-lease-duration=4s", "--leader-election-renew-deadline=5s"}, "--leader-election-renew-deadline (5s) must be shorter than --leader-election-lease-duration (4s)"},
		{"a retry period as long as the renew deadline", []string{"--leader-election-renew-deadline=3s", "--leader-election-retry-period=3s"}, "--leader-election-renew-deadline (3s) must be more than 1.2 times --leader-election-retry-period (3s)"},
		{"a lease duration that is no duration", []string{"--leader-election-lease-duration=soon"}, `invalid value "soon" for flag -leader-election-lease-duration`},
		{"a watch label selector that does not parse", []string{"--watch-label-selector=team in (web"}, `--watch-label-selector: label selector "team in (web"`},
		{"a shard key that is no label value", []string{"--shard-key=team a"}, `--shard-key: shard key "team a" is not a label value`},
		{"a shard key beside a watch label selector", []string{"--shard-key=a", "--watch-label-selector=team=web"}, "--shard-key and --watch-label-selector exclude each other"},
	}
	for _, tt := range tests {
		t.Run(tt.name+" exits 2 and says why", func(t *testing.T) {
			out, err := exec.Command(operatorBinary(t), tt.args...).CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 2 {
				t.Fatalf("want exit code 2, got %v\n%s", err, out)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Fatalf("output lacks %q:\n%s", tt.want, out)
			}
		})
	}
}
