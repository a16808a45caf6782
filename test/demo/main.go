// Command demo runs Sluice on this machine with no cluster: it starts the
// test control plane (etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler and kwok with a fake node), installs the CRDs and RBAC from
// kustomize/, runs the operator as its ServiceAccount, and deploys a sample
// Deployment with a Canary. It runs until Ctrl-C, then stops everything it
// started. `make demo` builds what it needs and runs it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/manifests"
)

func main() {
	operator := flag.String("operator", "bin/sluice", "Path of the operator binary.")
	kubeconfigOut := flag.String("kubeconfig-out", "bin/kubeconfig", "Where to write an admin kubeconfig for the demo cluster.")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *operator, *kubeconfigOut); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, operatorBin, kubeconfigOut string) (err error) {
	if _, err := os.Stat(operatorBin); err != nil {
		return fmt.Errorf("operator binary: %w (run `make demo`, which builds it)", err)
	}
	fmt.Println("starting the control plane...")
	cp, err := controlplane.Start(ctx, controlplane.Options{})
	if err != nil {
		return err
	}
	defer func() {
		fmt.Println("stopping the control plane...")
		err = errors.Join(err, cp.Stop())
	}()

	kubeconfig, err := os.ReadFile(cp.Kubeconfig)
	if err != nil {
		return fmt.Errorf("read kubeconfig: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(kubeconfigOut), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(kubeconfigOut), err)
	}
	if err := os.WriteFile(kubeconfigOut, kubeconfig, 0o600); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	defer func() { _ = os.Remove(kubeconfigOut) }()

	install, err := manifests.KustomizeBuild(filepath.Join(controlplane.RepoRoot(), "kustomize"))
	if err != nil {
		return err
	}
	if err := manifests.Apply(ctx, cp.Client, manifests.OperatorRBAC(install)); err != nil {
		return fmt.Errorf("install RBAC: %w", err)
	}
	saKubeconfig, err := cp.KubeconfigFor(manifests.ServiceAccountUser("sluice-system", "sluice"))
	if err != nil {
		return err
	}

	metricsAddr, err := controlplane.FreeAddr()
	if err != nil {
		return err
	}
	probeAddr, err := controlplane.FreeAddr()
	if err != nil {
		return err
	}
	logPath := filepath.Join(cp.Dir, "sluice.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("create operator log: %w", err)
	}
	defer func() { _ = logFile.Close() }()
	op := exec.Command(operatorBin,
		"--kubeconfig="+saKubeconfig,
		"--leader-election-namespace=sluice-system",
		"--metrics-bind-address="+metricsAddr,
		"--health-probe-bind-address="+probeAddr,
		"--log-encoding=console",
	)
	op.Stdout, op.Stderr = logFile, logFile
	// Its own process group: Ctrl-C reaches the demo, which stops the
	// operator in order, before the control plane.
	op.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := op.Start(); err != nil {
		return fmt.Errorf("start operator: %w", err)
	}
	exited := make(chan struct{})
	var exitErr error
	go func() {
		exitErr = op.Wait()
		close(exited)
	}()
	defer func() {
		fmt.Println("stopping the operator...")
		_ = op.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = op.Process.Kill()
			<-exited
		}
	}()
	if err := waitReady(ctx, "http://"+probeAddr+"/readyz", exited); err != nil {
		return fmt.Errorf("operator did not become ready (log %s): %w", logPath, err)
	}

	if err := deploySample(ctx, cp.Client); err != nil {
		return err
	}

	abs, _ := filepath.Abs(kubeconfigOut)
	fmt.Printf(`
Sluice is running against a local control plane.

  kubeconfig        %[1]s
  operator log      %[2]s
  operator metrics  http://%[3]s/metrics

The sample Deployment demo/podinfo runs on a fake kwok node. Its Canary
made podinfo-primary, which now serves through the podinfo Service, and
scaled podinfo to zero. Try, with kubectl if you have it:

  export KUBECONFIG=%[1]s
  kubectl -n demo get canaries,deployments,services
  kubectl -n demo set image deployment/podinfo podinfo=ghcr.io/stefanprodan/podinfo:6.7.1
  kubectl -n demo get canary podinfo -w      # Progressing, 5 checks 30s apart, then Succeeded
  kubectl -n demo get events --field-selector involvedObject.kind=Canary

Press Ctrl-C to stop everything.
`, abs, logPath, metricsAddr)

	select {
	case <-ctx.Done():
		return nil
	case <-exited:
		return fmt.Errorf("the operator exited (log %s): %w", logPath, exitErr)
	}
}

func deploySample(ctx context.Context, c client.Client) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "demo"}}
	labels := map[string]string{"app": "podinfo"}
	deploy := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: ns.Name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](3),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name:  "podinfo",
					Image: "ghcr.io/stefanprodan/podinfo:6.7.0",
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 9898}},
				}}},
			},
		},
	}
	canary := &sluicev1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: ns.Name},
		Spec: sluicev1beta1.CanarySpec{
			Provider:  "kubernetes",
			TargetRef: sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"},
			Service:   sluicev1beta1.CanaryService{Port: 9898},
			Analysis:  &sluicev1beta1.CanaryAnalysis{Interval: "30s", Threshold: 2, Iterations: 5},
		},
	}
	for _, obj := range []client.Object{ns, deploy, canary} {
		if err := c.Create(ctx, obj); err != nil {
			return fmt.Errorf("create %T %s: %w", obj, obj.GetName(), err)
		}
	}
	return nil
}

func waitReady(ctx context.Context, url string, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-exited:
			return errors.New("the operator exited")
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		resp, err := http.Get(url)
		if err != nil {
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return nil
		}
	}
}
