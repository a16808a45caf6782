package flagger

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/e2e/fixture"
	"sluice.dev/sluice/test/inprocess"
	"sluice.dev/sluice/test/manifests"
)

// The images of podinfo's releases, as Flagger's tests use them.
const (
	podinfo600 = "ghcr.io/stefanprodan/podinfo:6.0.0"
	podinfo601 = "ghcr.io/stefanprodan/podinfo:6.0.1"
	podinfo602 = "ghcr.io/stefanprodan/podinfo:6.0.2"
)

// Phases, shortened.
const (
	initialized      = sluicev1beta1.CanaryPhaseInitialized
	waiting          = sluicev1beta1.CanaryPhaseWaiting
	progressing      = sluicev1beta1.CanaryPhaseProgressing
	waitingPromotion = sluicev1beta1.CanaryPhaseWaitingPromotion
	promoting        = sluicev1beta1.CanaryPhasePromoting
	finalising       = sluicev1beta1.CanaryPhaseFinalising
	succeeded        = sluicev1beta1.CanaryPhaseSucceeded
	failed           = sluicev1beta1.CanaryPhaseFailed
)

// promoted is the phase sequence of a release that Flagger promotes with
// no gate closed: the analysis, the copy of the spec to the primary, the
// traffic moved back to it and the canary scaled down.
var promoted = []sluicev1beta1.CanaryPhase{progressing, promoting, finalising, succeeded}

// checkPhases checks the phases a Canary went through since a mark. A
// wrong sequence does not stop the test: what the release left behind is
// still worth checking.
func (s *scenario) checkPhases(m mark, want []sluicev1beta1.CanaryPhase) {
	s.T.Helper()
	s.caughtUp()
	if got := s.history.phasesSince(m.phases); !slices.Equal(got, want) {
		s.T.Errorf("the release went through phases %v, want Flagger's %v", got, want)
	}
}

// checkPromoted checks Flagger's Promoted condition, which users wait on
// with kubectl wait --for=condition=promoted: its status, and the phase
// as its reason.
func (s *scenario) checkPromoted(c *sluicev1beta1.Canary, status metav1.ConditionStatus) {
	s.T.Helper()
	cond := meta.FindStatusCondition(c.Status.Conditions, sluicev1beta1.PromotedCondition)
	if cond == nil || cond.Status != status || cond.Reason != string(c.Status.Phase) {
		s.T.Errorf("condition Promoted is %+v in phase %s, want %s with the phase as its reason", cond, c.Status.Phase, status)
	}
}

// flaggerAPIVersion is the apiVersion the manifests are stored with, as
// Flagger's users have them.
const flaggerAPIVersion = "flagger.app/v1beta1"

// manifestPath is the path of a scenario manifest.
func manifestPath(name string) string {
	return filepath.Join(controlplane.RepoRoot(), "test", "fixtures", "flagger", "conformance", name)
}

// readManifests decodes every document of a manifest file.
func readManifests(t testing.TB, name string) []*unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(manifestPath(name))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := manifests.SplitYAML(string(data))
	if err != nil {
		t.Fatalf("decode %s: %v", name, err)
	}
	return objs
}

// asSluice makes the one change a Flagger user makes to a manifest: its
// apiVersion.
func asSluice(obj *unstructured.Unstructured) {
	if obj.GetAPIVersion() == flaggerAPIVersion {
		obj.SetAPIVersion(sluicev1beta1.GroupVersion.String())
	}
}

// redirects maps base URLs of in-cluster services the manifests name
// (flagger-loadtester, Prometheus) to the loopback servers that stand in
// for them: the test cluster has no cluster DNS or pod network, so this is
// the one change besides apiVersion that the suite makes to a manifest.
type redirects map[string]string

// apply rewrites a Canary's webhook URLs and a MetricTemplate's provider
// address that start with a redirected base URL.
func (r redirects) apply(t testing.TB, obj *unstructured.Unstructured) {
	t.Helper()
	rebase := func(u string) string {
		for from, to := range r {
			if u == from || strings.HasPrefix(u, from+"/") || strings.HasPrefix(u, from+":") {
				return to + strings.TrimPrefix(u, from)
			}
		}
		return u
	}
	switch obj.GetKind() {
	case "Canary":
		hooks, _, _ := unstructured.NestedSlice(obj.Object, "spec", "analysis", "webhooks")
		for i, h := range hooks {
			m := h.(map[string]any)
			if u, ok := m["url"].(string); ok {
				m["url"] = rebase(u)
			}
			hooks[i] = m
		}
		if hooks != nil {
			if err := unstructured.SetNestedSlice(obj.Object, hooks, "spec", "analysis", "webhooks"); err != nil {
				t.Fatal(err)
			}
		}
	case "MetricTemplate":
		if u, ok, _ := unstructured.NestedString(obj.Object, "spec", "provider", "address"); ok {
			if err := unstructured.SetNestedField(obj.Object, rebase(u), "spec", "provider", "address"); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// scenario is one Flagger scenario in a namespace of its own on the
// shared control plane, watched by its own in-process operator, with a
// load tester the manifests' webhooks reach.
type scenario struct {
	// Namespace holds the test, the client and the namespace's name, and
	// creates objects.
	*fixture.Namespace
	// canaryName is the Canary's name (and its target's).
	canaryName string
	loadTester *loadTester
	redirects  redirects
	// history is what the Canary went through.
	history *history
}

// newScenario creates the namespace and starts the operator on it, built
// as in production by operator.New, and the load tester.
func newScenario(t *testing.T, ns, canaryName string) *scenario {
	t.Helper()
	s := &scenario{
		Namespace:  &fixture.Namespace{T: t, Client: cp.Client, Name: ns},
		canaryName: canaryName,
		loadTester: newLoadTester(t),
		history:    &history{},
	}
	s.redirects = redirects{loadTesterHost: s.loadTester.URL}
	s.Create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	t.Cleanup(func() {
		if t.Failed() {
			s.dump()
		}
	})
	watchList(t, &sluicev1beta1.CanaryList{}, ns, func(o client.Object) {
		if c, ok := o.(*sluicev1beta1.Canary); ok && c.Name == canaryName {
			s.history.seen(c)
		}
	})
	inprocess.Start(t, cp.Config, ns, testr.NewWithOptions(t, testr.Options{Verbosity: 0}))
	return s
}

// apply applies manifests, in order, to the scenario's namespace: each
// Flagger object with its apiVersion changed to Sluice's, and webhook and
// metric addresses redirected to the loopback servers.
func (s *scenario) apply(names ...string) {
	s.T.Helper()
	for _, name := range names {
		for _, obj := range readManifests(s.T, name) {
			asSluice(obj)
			s.redirects.apply(s.T, obj)
			obj.SetNamespace(s.Name)
			if err := cp.Client.Create(s.T.Context(), obj); err != nil {
				s.T.Fatalf("%s: create %s %s: %v", name, obj.GetKind(), obj.GetName(), err)
			}
		}
	}
}

// canary reads the Canary.
func (s *scenario) canary() *sluicev1beta1.Canary {
	s.T.Helper()
	c := &sluicev1beta1.Canary{}
	s.get(c, s.canaryName)
	return c
}

// get reads an object of the namespace.
func (s *scenario) get(obj client.Object, name string) {
	s.T.Helper()
	if err := cp.Client.Get(s.T.Context(), client.ObjectKey{Namespace: s.Name, Name: name}, obj); err != nil {
		s.T.Fatalf("get %T %s: %v", obj, name, err)
	}
}

// update changes an object of the namespace, retrying when the operator
// wrote it in between.
func (s *scenario) update(obj client.Object, name string, change func()) {
	s.T.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := cp.Client.Get(s.T.Context(), client.ObjectKey{Namespace: s.Name, Name: name}, obj); err != nil {
			return err
		}
		change()
		return cp.Client.Update(s.T.Context(), obj)
	})
	if err != nil {
		s.T.Fatalf("update %T %s: %v", obj, name, err)
	}
}

// waitFor waits until cond holds for the Canary and returns it.
func (s *scenario) waitFor(what string, timeout time.Duration, cond func(*sluicev1beta1.Canary) bool) *sluicev1beta1.Canary {
	s.T.Helper()
	var c *sluicev1beta1.Canary
	controlplane.Eventually(s.T, timeout, what, func(context.Context) (bool, string) {
		c = s.canary()
		st := c.Status
		return cond(c), fmt.Sprintf("phase %s weight %d iterations %d failed checks %d, phases so far %v, conditions %+v",
			st.Phase, st.CanaryWeight, st.Iterations, st.FailedChecks, s.history.phasesSince(0), st.Conditions)
	})
	return c
}

// waitPhase waits for the Canary's phase.
func (s *scenario) waitPhase(phase sluicev1beta1.CanaryPhase, timeout time.Duration) *sluicev1beta1.Canary {
	s.T.Helper()
	return s.waitFor("phase "+string(phase), timeout, func(c *sluicev1beta1.Canary) bool { return c.Status.Phase == phase })
}

// stays checks that cond holds all through d: that something does not
// happen, which takes waiting for it not to.
func (s *scenario) stays(what string, d time.Duration, cond func(*sluicev1beta1.Canary) bool) {
	s.T.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if c := s.canary(); !cond(c) {
			s.T.Fatalf("%s: no longer so after %s: phase %s, status %+v", what, d-time.Until(deadline), c.Status.Phase, c.Status)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// workload is an empty Deployment or DaemonSet.
func workload(kind string) client.Object {
	if kind == "DaemonSet" {
		return &appsv1.DaemonSet{}
	}
	return &appsv1.Deployment{}
}

// podTemplate is a Deployment's or DaemonSet's pod template.
func podTemplate(obj client.Object) *corev1.PodTemplateSpec {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		return &o.Spec.Template
	case *appsv1.DaemonSet:
		return &o.Spec.Template
	}
	panic(fmt.Sprintf("no pod template in %T", obj))
}

// release changes the image of the target, a Deployment or DaemonSet, as
// `kubectl set image` does in Flagger's tests: a new revision.
func (s *scenario) release(kind, image string) {
	s.T.Helper()
	obj := workload(kind)
	s.update(obj, s.canaryName, func() { podTemplate(obj).Spec.Containers[0].Image = image })
}

// image is the image a workload of the namespace runs.
func (s *scenario) image(kind, name string) string {
	s.T.Helper()
	obj := workload(kind)
	s.get(obj, name)
	return podTemplate(obj).Spec.Containers[0].Image
}

// replicas is a Deployment's spec.replicas.
func (s *scenario) replicas(name string) int32 {
	s.T.Helper()
	d := &appsv1.Deployment{}
	s.get(d, name)
	if d.Spec.Replicas == nil {
		return 1
	}
	return *d.Spec.Replicas
}

// selector is a Service's selector.
func (s *scenario) selector(name string) map[string]string {
	s.T.Helper()
	svc := &corev1.Service{}
	s.get(svc, name)
	return svc.Spec.Selector
}

// events are the events about the Canary.
func (s *scenario) events() []eventsv1.Event {
	s.T.Helper()
	var list eventsv1.EventList
	if err := cp.Client.List(s.T.Context(), &list, client.InNamespace(s.Name)); err != nil {
		s.T.Fatal(err)
	}
	var out []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.Kind == "Canary" && e.Regarding.Name == s.canaryName {
			out = append(out, e)
		}
	}
	return out
}

// waitEventMessage waits for an event of the type (any for "") about the
// Canary whose message holds text, in any case: Flagger users read and
// alert on these messages.
func (s *scenario) waitEventMessage(eventType, text string, timeout time.Duration) {
	s.T.Helper()
	controlplane.Eventually(s.T, timeout, "an event saying "+text, func(context.Context) (bool, string) {
		var seen []string
		for _, e := range s.events() {
			if (eventType == "" || e.Type == eventType) && strings.Contains(strings.ToLower(e.Note), strings.ToLower(text)) {
				return true, ""
			}
			seen = append(seen, e.Type+": "+e.Note)
		}
		return false, fmt.Sprintf("events %q", seen)
	})
}

// dump logs what the namespace holds, to tell why a scenario failed.
func (s *scenario) dump() {
	ctx := context.Background()
	c := &sluicev1beta1.Canary{}
	if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: s.Name, Name: s.canaryName}, c); err == nil {
		s.T.Logf("canary status %+v", c.Status)
	}
	s.T.Logf("phases %v, weights %v, iterations %v", s.history.phasesSince(0), s.history.weightsSince(0), s.history.iterationsSince(0))
	s.T.Logf("load tester calls %s", s.loadTester.paths())
	var deployments appsv1.DeploymentList
	if err := cp.Client.List(ctx, &deployments, client.InNamespace(s.Name)); err == nil {
		for _, d := range deployments.Items {
			s.T.Logf("deployment %s replicas %v image %s status %+v", d.Name, d.Spec.Replicas, d.Spec.Template.Spec.Containers[0].Image, d.Status)
		}
	}
	var routes gatewayv1.HTTPRouteList
	if err := cp.Client.List(ctx, &routes, client.InNamespace(s.Name)); err == nil {
		for _, r := range routes.Items {
			s.T.Logf("httproute %s rules %+v", r.Name, r.Spec.Rules)
		}
	}
	var events eventsv1.EventList
	if err := cp.Client.List(ctx, &events, client.InNamespace(s.Name)); err == nil {
		for _, e := range events.Items {
			s.T.Logf("event %s %s/%s %s: %s", e.Type, e.Regarding.Kind, e.Regarding.Name, e.Reason, e.Note)
		}
	}
}

// history is what a watch on the API server saw a Canary go through:
// each phase it entered, and each canary weight and iteration count it
// held, in order, without repeats.
type history struct {
	mu         sync.Mutex
	phases     []sluicev1beta1.CanaryPhase
	weights    []int
	iterations []int
}

func (h *history) seen(c *sluicev1beta1.Canary) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.phases = appendChanged(h.phases, c.Status.Phase)
	h.weights = appendChanged(h.weights, c.Status.CanaryWeight)
	h.iterations = appendChanged(h.iterations, c.Status.Iterations)
}

func appendChanged[T comparable](list []T, v T) []T {
	if len(list) > 0 && list[len(list)-1] == v {
		return list
	}
	return append(list, v)
}

// caughtUp waits until the history has seen the Canary's current phase:
// a read of the Canary can get ahead of the watch.
func (s *scenario) caughtUp() {
	s.T.Helper()
	phase := s.canary().Status.Phase
	eventually(s.T, 10*time.Second, "the watch at phase "+string(phase), func() (bool, string) {
		seen := s.history.phasesSince(0)
		return len(seen) > 0 && seen[len(seen)-1] == phase, fmt.Sprintf("phases seen %v", seen)
	})
}

// mark is where the history is now, to read what happens from here on.
type mark struct{ phases, weights, iterations int }

func (h *history) mark() mark {
	h.mu.Lock()
	defer h.mu.Unlock()
	return mark{len(h.phases), len(h.weights), len(h.iterations)}
}

func (h *history) phasesSince(m int) []sluicev1beta1.CanaryPhase {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.phases[min(m, len(h.phases)):])
}

func (h *history) weightsSince(m int) []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.weights[min(m, len(h.weights)):])
}

func (h *history) iterationsSince(m int) []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.iterations[min(m, len(h.iterations)):])
}

// positive drops the zeros of a weight or iteration history.
func positive(list []int) []int {
	return slices.DeleteFunc(slices.Clone(list), func(v int) bool { return v <= 0 })
}

// watchList calls seen with every version of every object of the list's
// kind in the namespace, from a watch on the API server, until the test
// ends: polling could miss a phase that lasts less than a poll.
func watchList(t *testing.T, list client.ObjectList, ns string, seen func(client.Object)) {
	t.Helper()
	wc, err := client.NewWithWatch(cp.Config, client.Options{Scheme: cp.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	w, err := wc.Watch(ctx, list, client.InNamespace(ns))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			if o, ok := ev.Object.(client.Object); ok {
				seen(o)
			}
		}
	}()
	t.Cleanup(func() {
		w.Stop()
		cancel()
		<-done
	})
}

// eventually polls cond every 100ms until it holds, for checks that are
// not about the Canary.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	controlplane.Eventually(t, timeout, what, func(context.Context) (bool, string) { return cond() })
}
