package cli_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/cli"
	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/output"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	os.Exit(controlplane.RunTests(m, controlplane.Options{APIOnly: true}, &cp))
}

// testVersion is the client version the tests build sluicectl with.
const testVersion = "v1.2.3-test"

// result is what one run of sluicectl wrote and returned.
type result struct {
	out, err string
	error    error
	code     int
}

// run runs sluicectl with args against the test API server.
func run(t *testing.T, args ...string) result {
	t.Helper()
	return runWithKubeconfig(t, cp.Kubeconfig, args...)
}

// runWithKubeconfig runs sluicectl with --kubeconfig set to kubeconfig,
// or without the flag when it is "".
func runWithKubeconfig(t *testing.T, kubeconfig string, args ...string) result {
	t.Helper()
	if kubeconfig != "" {
		args = append([]string{"--kubeconfig", kubeconfig}, args...)
	}
	var out, errOut bytes.Buffer
	err := execute(t.Context(), &out, &errOut, args...)
	return result{out: out.String(), err: errOut.String(), error: err, code: cli.ExitCode(err)}
}

func execute(ctx context.Context, out, errOut io.Writer, args ...string) error {
	root := cli.NewRoot(cli.Streams{Out: out, Err: errOut}, cli.WithVersion(testVersion))
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}

// mustSucceed fails the test unless the run exited 0.
func (r result) mustSucceed(t *testing.T) result {
	t.Helper()
	if r.error != nil {
		t.Fatalf("sluicectl failed with code %d: %v\nout:\n%s\nerr:\n%s", r.code, r.error, r.out, r.err)
	}
	return r
}

var columns = regexp.MustCompile(`\s{2,}`)

// rows splits a table into its cells. Columns are at least three spaces
// apart and no cell has two spaces in a row.
func rows(out string) [][]string {
	var rows [][]string
	for line := range strings.Lines(out) {
		if line = strings.TrimSpace(line); line != "" {
			rows = append(rows, columns.Split(line, -1))
		}
	}
	return rows
}

// syncBuffer is written while the test reads it.
type syncBuffer = output.Buffer

// waitForOutput waits until the buffer holds s.
func waitForOutput(t *testing.T, b *syncBuffer, s string) {
	t.Helper()
	controlplane.Eventually(t, 30*time.Second, "output "+s, func(context.Context) (bool, string) {
		out := b.String()
		return strings.Contains(out, s), "output so far:\n" + out
	})
}

// newNamespace creates a namespace for one test.
func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "cli-"}}
	create(t, ns)
	return ns.Name
}

func create(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := cp.Client.Create(t.Context(), o); err != nil {
			t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
}

// updateStatus plays the operator: it reads obj again, changes it with
// set and writes its status.
func updateStatus[T client.Object](t *testing.T, obj T, set func(T)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := cp.Client.Get(t.Context(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		set(obj)
		return cp.Client.Status().Update(t.Context(), obj)
	})
	if err != nil {
		t.Fatalf("update the status of %T %s: %v", obj, obj.GetName(), err)
	}
}

// deployment creates a Deployment whose first container runs image.
func deployment(t *testing.T, ns, name, image string) {
	t.Helper()
	labels := map[string]string{"app": name}
	create(t, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}, {Name: "sidecar", Image: "envoy:v1"}}},
			},
		},
	})
}

// daemonSet creates a DaemonSet whose first container runs image.
func daemonSet(t *testing.T, ns, name, image string) {
	t.Helper()
	labels := map[string]string{"app": name}
	create(t, &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "agent", Image: image}}},
			},
		},
	})
}

// newCanary creates a Canary of the workload kind/name, with two metrics
// and a threshold of 5.
func newCanary(t *testing.T, ns, name, kind, target string) *sluicev1beta1.Canary {
	t.Helper()
	c := &sluicev1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: sluicev1beta1.CanarySpec{
			TargetRef:               sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: kind, Name: target},
			Service:                 sluicev1beta1.CanaryService{Port: 9898},
			ProgressDeadlineSeconds: ptr.To[int32](60),
			Analysis: &sluicev1beta1.CanaryAnalysis{
				Interval: "1m", Threshold: 5, StepWeight: 10, MaxWeight: 50,
				Metrics: []sluicev1beta1.CanaryMetric{
					{Name: "request-success-rate", Interval: "1m", ThresholdRange: &sluicev1beta1.CanaryThresholdRange{Min: ptr.To(99.0)}},
					{Name: "request-duration", Interval: "1m", ThresholdRange: &sluicev1beta1.CanaryThresholdRange{Max: ptr.To(500.0)}},
				},
			},
		},
	}
	create(t, c)
	return c
}

// progressing sets a Canary's status to the middle of a release: weight
// 20, one failed check, the phase changed three minutes ago.
func progressing(c *sluicev1beta1.Canary) {
	c.Status.Phase = sluicev1beta1.CanaryPhaseProgressing
	c.Status.CanaryWeight = 20
	c.Status.FailedChecks = 1
	c.Status.Iterations = 2
	c.Status.LastTransitionTime = metav1.NewTime(time.Now().Add(-72 * time.Hour)) // whole days: a second of skew does not change "3d"
	setCondition(&c.Status.Conditions, sluicev1beta1.ReadyCondition, metav1.ConditionUnknown, "Progressing", "New revision detected, progressing canary analysis.")
}

func setCondition(conds *[]metav1.Condition, typ string, status metav1.ConditionStatus, reason, message string) {
	meta.SetStatusCondition(conds, metav1.Condition{Type: typ, Status: status, Reason: reason, Message: message})
}
