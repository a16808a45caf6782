package cli_test

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"sluice.dev/sluice/pkg/cli"
)

// readyOperator plays the kube-controller-manager: it reports the
// Deployment's rollout as complete.
func readyOperator(d *appsv1.Deployment) {
	d.Status = appsv1.DeploymentStatus{
		ObservedGeneration: d.Generation,
		Replicas:           1, UpdatedReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1,
		Conditions: []appsv1.DeploymentCondition{
			{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable"},
			{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "NewReplicaSetAvailable"},
		},
	}
}

func TestCheck(t *testing.T) {
	nobody, err := cp.KubeconfigFor("nobody", []string{"system:authenticated"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		kubeconfig string
		// setup returns the namespace to look for the operator in.
		setup func(t *testing.T) string
		pre   bool
		code  int
		// want are lines of the output; err is in the error.
		want []string
		err  string
	}{
		{
			name: "--pre passes on the test API server as cluster admin",
			pre:  true,
			want: []string{
				"✔ Kubernetes 1.", // the version itself is the control plane's
				"✔ can create and patch customresourcedefinitions.apiextensions.k8s.io",
				"✔ can create and patch deployments.apps in namespace sluice-system",
				"✔ can create and patch clusterroles.rbac.authorization.k8s.io",
				"✔ all checks passed",
			},
		},
		{
			name:       "--pre fails for a user who may not create the CRDs",
			kubeconfig: nobody,
			pre:        true,
			code:       cli.ExitFailure,
			want:       []string{"✔ Kubernetes 1.", "✗ cannot create or patch customresourcedefinitions.apiextensions.k8s.io"},
			err:        "cannot create or patch customresourcedefinitions.apiextensions.k8s.io",
		},
		{
			name:  "an installation without the operator Deployment fails naming it",
			setup: newNamespace,
			code:  cli.ExitFailure,
			want: []string{
				"✔ CustomResourceDefinition canaries.sluice.dev is established",
				"✔ CustomResourceDefinition helmreleases.sync.sluice.dev is established",
				"✗ operator Deployment NS/sluice not found; run sluicectl install, or name its namespace with --namespace",
			},
			err: "1 checks failed: operator Deployment NS/sluice not found",
		},
		{
			name: "an operator Deployment still rolling out fails",
			setup: func(t *testing.T) string {
				ns := newNamespace(t)
				deployment(t, ns, "sluice", "ghcr.io/sluice-dev/sluice:v0.1.0")
				return ns
			},
			code: cli.ExitFailure,
			want: []string{"✗ operator Deployment NS/sluice is not ready (InProgress)"},
			err:  "operator Deployment NS/sluice is not ready",
		},
		{
			name: "an installation with a Ready operator passes",
			setup: func(t *testing.T) string {
				ns := newNamespace(t)
				deployment(t, ns, "sluice", "ghcr.io/sluice-dev/sluice:v0.1.0")
				updateStatus(t, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "sluice", Namespace: ns}}, readyOperator)
				return ns
			},
			want: []string{"✔ operator Deployment NS/sluice is ready", "✔ all checks passed"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			kubeconfig := cp.Kubeconfig
			if tt.kubeconfig != "" {
				kubeconfig = tt.kubeconfig
			}
			args := []string{"check"}
			if tt.pre {
				args = append(args, "--pre")
			}
			ns := ""
			if tt.setup != nil {
				ns = tt.setup(t)
				args = append(args, "-n", ns)
			}
			r := runWithKubeconfig(t, kubeconfig, args...)
			if r.code != tt.code {
				t.Errorf("exit code %d (%v), want %d\nout:\n%s", r.code, r.error, tt.code, r.out)
			}
			for _, line := range tt.want {
				line = strings.ReplaceAll(line, "NS", ns)
				if !strings.Contains(r.out, line) {
					t.Errorf("the output lacks %q:\n%s", line, r.out)
				}
			}
			if err := strings.ReplaceAll(tt.err, "NS", ns); err != "" && (r.error == nil || !strings.Contains(r.error.Error(), err)) {
				t.Errorf("got error %v, want one with %q", r.error, err)
			}
		})
	}
}
