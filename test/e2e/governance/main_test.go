// Package governance runs ReleasePolicies against the operator as
// operator.New wires it, on a real control plane: a queue under a limit
// on concurrent releases, a freeze window that holds a new revision and
// lets it go when it closes, a rollback during a freeze, a stop-the-line
// that survives an operator restart, and policies whose schedule cannot
// be read. The tests run one after the other: a stop-the-line matches
// every Canary of the control plane.
package governance

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/cli"
	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/inprocess"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	os.Exit(controlplane.RunTests(m, controlplane.Options{}, &cp))
}

// testLabel marks the namespace of one test, for its policies' selectors.
const testLabel = "governance.sluice.dev/test"

// namespace creates a namespace labelled for one test.
func namespace(t *testing.T, name string) string {
	t.Helper()
	create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{testLabel: name}}})
	return name
}

func create(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := cp.Client.Create(t.Context(), o); err != nil {
			t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
}

// app creates a one-replica Deployment running image app:1 and its
// blue/green Canary on plain Services, which change may adjust.
func app(t *testing.T, ns, name string, change func(*sluicev1beta1.Canary)) {
	t.Helper()
	labels := map[string]string{"app": name}
	c := &sluicev1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: sluicev1beta1.CanarySpec{
			Provider:  "kubernetes",
			TargetRef: sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
			Service:   sluicev1beta1.CanaryService{Port: 80, TargetPort: intstr.FromString("http")},
			Analysis:  &sluicev1beta1.CanaryAnalysis{Interval: "10s", Iterations: 1, Threshold: 1},
		},
	}
	if change != nil {
		change(c)
	}
	create(t,
		&appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To[int32](1),
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}},
				},
			},
		},
		c,
	)
}

// release changes a Deployment's image: a new revision.
func release(t *testing.T, ns, name, image string) {
	t.Helper()
	d := &appsv1.Deployment{}
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, d); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(d.DeepCopy())
	d.Spec.Template.Spec.Containers[0].Image = image
	if err := cp.Client.Patch(t.Context(), d, patch); err != nil {
		t.Fatal(err)
	}
}

// primaryImage is the image production runs.
func primaryImage(t *testing.T, ns, name string) string {
	t.Helper()
	d := &appsv1.Deployment{}
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name + "-primary"}, d); err != nil {
		t.Fatal(err)
	}
	return d.Spec.Template.Spec.Containers[0].Image
}

// operator starts the operator, as operator.New wires it, on ns.
func operator(t *testing.T, ns string) (stop func()) {
	t.Helper()
	return inprocess.Start(t, cp.Config, ns, testr.NewWithOptions(t, testr.Options{Verbosity: 0}))
}

func canary(t *testing.T, ns, name string) *sluicev1beta1.Canary {
	t.Helper()
	c := &sluicev1beta1.Canary{}
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, c); err != nil {
		t.Fatal(err)
	}
	return c
}

// waitCanary waits until cond holds for the Canary and returns it.
func waitCanary(t *testing.T, ns, name, what string, timeout time.Duration, cond func(*sluicev1beta1.Canary) bool) *sluicev1beta1.Canary {
	t.Helper()
	var c *sluicev1beta1.Canary
	controlplane.Eventually(t, timeout, name+": "+what, func(context.Context) (bool, string) {
		c = canary(t, ns, name)
		return cond(c), describe(c)
	})
	return c
}

// describe is what a failed wait shows of a Canary.
func describe(c *sluicev1beta1.Canary) string {
	s := c.Status
	return fmt.Sprintf("phase %s iterations %d failed checks %d admission %+v conditions %+v", s.Phase, s.Iterations, s.FailedChecks, s.Admission, s.Conditions)
}

// ready is the Canary's Ready condition, never nil.
func ready(c *sluicev1beta1.Canary) metav1.Condition {
	if r := meta.FindStatusCondition(c.Status.Conditions, sluicev1beta1.ReadyCondition); r != nil {
		return *r
	}
	return metav1.Condition{}
}

// phaseIs is a waitCanary condition.
func phaseIs(p sluicev1beta1.CanaryPhase) func(*sluicev1beta1.Canary) bool {
	return func(c *sluicev1beta1.Canary) bool { return c.Status.Phase == p }
}

// policy creates a ReleasePolicy for the test's namespace, and deletes it
// when the test ends.
func policy(t *testing.T, name, ns string, spec sluicev1beta1.ReleasePolicySpec) *sluicev1beta1.ReleasePolicy {
	t.Helper()
	spec.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{testLabel: ns}}
	rp := &sluicev1beta1.ReleasePolicy{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
	create(t, rp)
	t.Cleanup(func() { _ = cp.Client.Delete(context.Background(), rp) })
	return rp
}

// sluicectl runs the CLI with a kubeconfig of the given user.
func sluicectl(t *testing.T, kubeconfig string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := cli.NewRoot(cli.Streams{Out: &out, Err: &errOut})
	root.SetArgs(append([]string{"--kubeconfig", kubeconfig}, args...))
	err := root.ExecuteContext(t.Context())
	return out.String() + errOut.String(), err
}

// warning waits for a Warning Event with reason about a cluster-scoped
// object of kind, whose note says each of says.
func warning(t *testing.T, kind, name, reason string, says ...string) {
	t.Helper()
	controlplane.Eventually(t, 30*time.Second, fmt.Sprintf("Warning %s about %s %s", reason, kind, name), func(ctx context.Context) (bool, string) {
		var list eventsv1.EventList
		if err := cp.Client.List(ctx, &list); err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, e := range list.Items {
			if e.Regarding.Kind != kind || e.Regarding.Name != name {
				continue
			}
			if e.Type == corev1.EventTypeWarning && e.Reason == reason && containsAll(e.Note, says) {
				return true, ""
			}
			seen = append(seen, e.Type+" "+e.Reason+": "+e.Note)
		}
		return false, fmt.Sprintf("events %v", seen)
	})
}

// eventReasons are the reasons of the events about a Canary.
func eventReasons(t *testing.T, ns, name string) []string {
	t.Helper()
	var list eventsv1.EventList
	if err := cp.Client.List(t.Context(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range list.Items {
		if e.Regarding.Kind == "Canary" && e.Regarding.Name == name {
			out = append(out, e.Reason)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
