package canary_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/workload"
	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/inprocess"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	keda, err := controlplane.KEDACRDs()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(controlplane.RunTests(m, controlplane.Options{CRDDirectoryPaths: append([]string{controlplane.SluiceCRDs()}, keda...)}, &cp))
}

// startOperator runs the operator for one namespace until the test ends
// or stop is called.
func startOperator(t *testing.T, ns string) (stop func()) {
	t.Helper()
	return inprocess.Start(t, cp.Config, ns, testr.NewWithOptions(t, testr.Options{Verbosity: 0}))
}

// hookServer is a webhook receiver on loopback that answers per path and
// records the payloads it gets.
type hookServer struct {
	*httptest.Server
	mu       sync.Mutex
	answers  map[string]int
	payloads map[string][]sluicev1beta1.CanaryWebhookPayload
}

func newHookServer(t *testing.T) *hookServer {
	h := &hookServer{answers: map[string]int{}, payloads: map[string][]sluicev1beta1.CanaryWebhookPayload{}}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p sluicev1beta1.CanaryWebhookPayload
		_ = json.NewDecoder(r.Body).Decode(&p)
		h.mu.Lock()
		h.payloads[r.URL.Path] = append(h.payloads[r.URL.Path], p)
		code, ok := h.answers[r.URL.Path]
		h.mu.Unlock()
		if !ok {
			code = http.StatusOK
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookServer) answer(path string, code int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.answers[path] = code
}

func (h *hookServer) calls(path string) []sluicev1beta1.CanaryWebhookPayload {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.payloads[path])
}

func (h *hookServer) hook(name string, typ sluicev1beta1.HookType) sluicev1beta1.CanaryWebhook {
	return sluicev1beta1.CanaryWebhook{Name: name, Type: typ, URL: h.URL + "/" + name, Timeout: "5s"}
}

type fixture struct {
	t      *testing.T
	ns     string
	labels map[string]string
}

func newFixture(t *testing.T, ns string) *fixture {
	t.Helper()
	if err := cp.Client.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, ns: ns, labels: map[string]string{"app": "podinfo"}}
	t.Cleanup(func() {
		if t.Failed() {
			f.dump()
		}
	})
	return f
}

// dump logs the namespace's pods and Canary events, to tell why a test
// failed.
func (f *fixture) dump() {
	ctx := context.Background()
	c := &sluicev1beta1.Canary{}
	if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: "podinfo"}, c); err == nil {
		f.t.Logf("canary status %+v", c.Status)
	}
	var daemonSets appsv1.DaemonSetList
	if err := cp.Client.List(ctx, &daemonSets, client.InNamespace(f.ns)); err == nil {
		for _, d := range daemonSets.Items {
			f.t.Logf("daemonset %s generation %d status %+v", d.Name, d.Generation, d.Status)
		}
	}
	var deployments appsv1.DeploymentList
	if err := cp.Client.List(ctx, &deployments, client.InNamespace(f.ns)); err == nil {
		for _, d := range deployments.Items {
			f.t.Logf("deployment %s generation %d replicas %d status %+v", d.Name, d.Generation, *d.Spec.Replicas, d.Status)
		}
	}
	var pods corev1.PodList
	if err := cp.Client.List(ctx, &pods, client.InNamespace(f.ns)); err == nil {
		for _, p := range pods.Items {
			f.t.Logf("pod %s node=%q phase=%s ip=%s deleting=%v conditions=%v", p.Name, p.Spec.NodeName, p.Status.Phase, p.Status.PodIP, p.DeletionTimestamp != nil, p.Status.Conditions)
		}
	}
	var events eventsv1.EventList
	if err := cp.Client.List(ctx, &events, client.InNamespace(f.ns)); err == nil {
		for _, e := range events.Items {
			f.t.Logf("event %s %s/%s %s: %s", e.Type, e.Regarding.Kind, e.Regarding.Name, e.Reason, e.Note)
		}
	}
}

func (f *fixture) podSpec(image string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: f.labels},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "podinfo", Image: image, Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 9898}},
		}}},
	}
}

func (f *fixture) deployment(image string) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: f.ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](3),
			Selector: &metav1.LabelSelector{MatchLabels: f.labels},
			Template: f.podSpec(image),
		},
	}
}

func (f *fixture) canary(kind string, analysis sluicev1beta1.CanaryAnalysis) *sluicev1beta1.Canary {
	if analysis.Interval == "" {
		analysis.Interval = "10s"
	}
	if analysis.Threshold == 0 {
		analysis.Threshold = 2
	}
	return &sluicev1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: f.ns},
		Spec: sluicev1beta1.CanarySpec{
			Provider:                "kubernetes",
			TargetRef:               sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: kind, Name: "podinfo"},
			Service:                 sluicev1beta1.CanaryService{Port: 9898},
			ProgressDeadlineSeconds: ptr.To[int32](60),
			Analysis:                &analysis,
		},
	}
}

func (f *fixture) create(objs ...client.Object) {
	f.t.Helper()
	for _, o := range objs {
		if err := cp.Client.Create(f.t.Context(), o); err != nil {
			f.t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
}

func (f *fixture) get(obj client.Object, name string) {
	f.t.Helper()
	if err := cp.Client.Get(f.t.Context(), client.ObjectKey{Namespace: f.ns, Name: name}, obj); err != nil {
		f.t.Fatalf("get %T %s: %v", obj, name, err)
	}
}

// update reads an object, changes it and writes it back, retrying on
// conflicts with the operator.
func (f *fixture) update(obj client.Object, name string, change func()) {
	f.t.Helper()
	for range 10 {
		f.get(obj, name)
		change()
		err := cp.Client.Update(f.t.Context(), obj)
		if err == nil {
			return
		}
		if !apierrors.IsConflict(err) {
			f.t.Fatal(err)
		}
	}
	f.t.Fatalf("update %s: too many conflicts", name)
}

func (f *fixture) waitPhase(phase sluicev1beta1.CanaryPhase, timeout time.Duration) *sluicev1beta1.Canary {
	f.t.Helper()
	c := &sluicev1beta1.Canary{}
	controlplane.Eventually(f.t, timeout, "phase "+string(phase), func(ctx context.Context) (bool, string) {
		if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: "podinfo"}, c); err != nil {
			return false, err.Error()
		}
		ready := meta.FindStatusCondition(c.Status.Conditions, sluicev1beta1.ReadyCondition)
		return c.Status.Phase == phase, fmt.Sprintf("phase %q, ready %+v", c.Status.Phase, ready)
	})
	return c
}

func (f *fixture) events() []string {
	f.t.Helper()
	var list eventsv1.EventList
	if err := cp.Client.List(f.t.Context(), &list, client.InNamespace(f.ns)); err != nil {
		f.t.Fatal(err)
	}
	var reasons []string
	for _, e := range list.Items {
		if e.Regarding.Kind == "Canary" {
			reasons = append(reasons, e.Reason)
		}
	}
	return reasons
}

func (f *fixture) waitEvent(reason string) {
	f.t.Helper()
	controlplane.Eventually(f.t, 10*time.Second, "event "+reason, func(context.Context) (bool, string) {
		got := f.events()
		return slices.Contains(got, reason), fmt.Sprintf("events %v", got)
	})
}

// initialized waits for the Canary's initialization and checks what it
// leaves: a ready primary serving through the apex Service, the target at
// zero.
func (f *fixture) initialized() {
	f.t.Helper()
	c := f.waitPhase(sluicev1beta1.CanaryPhaseInitialized, time.Minute)
	if !meta.IsStatusConditionTrue(c.Status.Conditions, sluicev1beta1.ReadyCondition) {
		f.t.Fatalf("initialized but not Ready: %+v", c.Status.Conditions)
	}
	apex := &corev1.Service{}
	f.get(apex, "podinfo")
	if apex.Spec.Selector["app"] != "podinfo-primary" {
		f.t.Fatalf("apex selector %v, want the primary", apex.Spec.Selector)
	}
}

func image(obj client.Object) string {
	return workload.PodTemplate(obj).Spec.Containers[0].Image
}

func TestBlueGreenIsPromoted(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "bg-promoted")
	hooks := newHookServer(t)
	startOperator(t, f.ns)
	f.create(f.deployment("podinfo:6.0.0"), f.canary("Deployment", sluicev1beta1.CanaryAnalysis{
		Iterations: 2,
		Webhooks: []sluicev1beta1.CanaryWebhook{
			hooks.hook("acceptance", sluicev1beta1.PreRolloutHook),
			hooks.hook("load", sluicev1beta1.RolloutHook),
			hooks.hook("gate", sluicev1beta1.ConfirmPromotionHook),
			hooks.hook("done", sluicev1beta1.PostRolloutHook),
		},
	}))
	f.initialized()
	target := &appsv1.Deployment{}
	f.get(target, "podinfo")
	if *target.Spec.Replicas != 0 {
		t.Fatalf("target has %d replicas after initialization, want 0", *target.Spec.Replicas)
	}

	f.update(target, "podinfo", func() { target.Spec.Template.Spec.Containers[0].Image = "podinfo:6.0.1" })
	f.waitPhase(sluicev1beta1.CanaryPhaseProgressing, 10*time.Second)
	c := f.waitPhase(sluicev1beta1.CanaryPhaseSucceeded, 90*time.Second)

	primary := &appsv1.Deployment{}
	f.get(primary, "podinfo-primary")
	f.get(target, "podinfo")
	if image(primary) != "podinfo:6.0.1" || *target.Spec.Replicas != 0 || primary.Status.ReadyReplicas != 3 {
		t.Fatalf("primary image %s with %d ready, target replicas %d", image(primary), primary.Status.ReadyReplicas, *target.Spec.Replicas)
	}
	if c.Status.LastPromotedSpec != c.Status.LastTrackedRevision || !meta.IsStatusConditionTrue(c.Status.Conditions, sluicev1beta1.PromotedCondition) {
		t.Fatalf("status after promotion %+v", c.Status)
	}
	// Flagger's order: the first step runs the pre-rollout hooks, every
	// later one the rollout hooks; the gate is asked after the last.
	for path, want := range map[string]int{"/acceptance": 1, "/load": 2, "/gate": 1} {
		if got := len(hooks.calls(path)); got != want {
			t.Errorf("%s called %d times, want %d", path, got, want)
		}
	}
	if p := hooks.calls("/load"); len(p) > 0 && (p[0].Name != "podinfo" || p[0].Namespace != f.ns || p[0].Phase != sluicev1beta1.CanaryPhaseProgressing || p[0].Checksum == "") {
		t.Errorf("rollout payload %+v", p[0])
	}
	f.waitEvent("Promoted")
	controlplane.Eventually(t, 10*time.Second, "the post-rollout hook", func(context.Context) (bool, string) {
		return len(hooks.calls("/done")) == 1, fmt.Sprintf("%d calls", len(hooks.calls("/done")))
	})
	for _, reason := range []string{"Initialized", "NewRevision", "IterationPassed", "Promoting"} {
		if !slices.Contains(f.events(), reason) {
			t.Errorf("no %s event in %v", reason, f.events())
		}
	}
}

func TestBlueGreenIsRolledBackByAFailingWebhook(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "bg-rollback")
	hooks := newHookServer(t)
	hooks.answer("/load", http.StatusInternalServerError)
	startOperator(t, f.ns)
	f.create(f.deployment("podinfo:6.0.0"), f.canary("Deployment", sluicev1beta1.CanaryAnalysis{
		Iterations: 3, Threshold: 1,
		Webhooks: []sluicev1beta1.CanaryWebhook{hooks.hook("load", sluicev1beta1.RolloutHook)},
	}))
	f.initialized()
	target := &appsv1.Deployment{}
	f.update(target, "podinfo", func() { target.Spec.Template.Spec.Containers[0].Image = "podinfo:broken" })
	c := f.waitPhase(sluicev1beta1.CanaryPhaseFailed, 60*time.Second)

	primary := &appsv1.Deployment{}
	f.get(primary, "podinfo-primary")
	f.get(target, "podinfo")
	if image(primary) != "podinfo:6.0.0" || *target.Spec.Replicas != 0 {
		t.Fatalf("after rollback: primary image %s, target replicas %d", image(primary), *target.Spec.Replicas)
	}
	ready := meta.FindStatusCondition(c.Status.Conditions, sluicev1beta1.ReadyCondition)
	if ready == nil || ready.Status != metav1.ConditionFalse || !strings.Contains(ready.Message, "500") ||
		!meta.IsStatusConditionTrue(c.Status.Conditions, sluicev1beta1.StalledCondition) {
		t.Fatalf("conditions after rollback %+v", c.Status.Conditions)
	}
	f.waitEvent("RolledBack")
}

func TestAConfigMapChangeIsANewRevision(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "config")
	startOperator(t, f.ns)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "podinfo-env", Namespace: f.ns}, Data: map[string]string{"COLOR": "blue"}}
	d := f.deployment("podinfo:6.0.0")
	d.Spec.Template.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "podinfo-env"}}}}
	untracked := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "podinfo-static", Namespace: f.ns, Annotations: map[string]string{sluicev1beta1.ConfigTrackingAnnotation: "disabled"}}, Data: map[string]string{"A": "1"}}
	d.Spec.Template.Spec.Volumes = []corev1.Volume{
		{Name: "static", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "podinfo-static"}}}},
		{Name: "optional", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "missing", Optional: ptr.To(true)}}},
	}
	f.create(cm, untracked, d, f.canary("Deployment", sluicev1beta1.CanaryAnalysis{Iterations: 1}))
	f.initialized()

	copied := &corev1.ConfigMap{}
	f.get(copied, "podinfo-env-primary")
	primary := &appsv1.Deployment{}
	f.get(primary, "podinfo-primary")
	volumes := primary.Spec.Template.Spec.Volumes
	if copied.Data["COLOR"] != "blue" || primary.Spec.Template.Spec.Containers[0].EnvFrom[0].ConfigMapRef.Name != "podinfo-env-primary" ||
		volumes[0].ConfigMap.Name != "podinfo-static" {
		t.Fatalf("primary copy %v, envFrom %v, untracked volume %v", copied.Data, primary.Spec.Template.Spec.Containers[0].EnvFrom, volumes[0])
	}
	before := primary.Spec.Template.Annotations[sluicev1beta1.ConfigChecksumAnnotation]

	f.update(untracked, "podinfo-static", func() { untracked.Data["A"] = "2" })
	f.update(cm, "podinfo-env", func() { cm.Data["COLOR"] = "green" })
	f.waitPhase(sluicev1beta1.CanaryPhaseProgressing, 10*time.Second)
	f.waitPhase(sluicev1beta1.CanaryPhaseSucceeded, 60*time.Second)
	f.get(copied, "podinfo-env-primary")
	f.get(primary, "podinfo-primary")
	if copied.Data["COLOR"] != "green" || primary.Spec.Template.Annotations[sluicev1beta1.ConfigChecksumAnnotation] == before {
		t.Fatalf("after promotion: copy %v, checksum %q (was %q)", copied.Data, primary.Spec.Template.Annotations[sluicev1beta1.ConfigChecksumAnnotation], before)
	}
}

func TestADaemonSetIsReleased(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "daemonset")
	startOperator(t, f.ns)
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: f.ns},
		Spec:       appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: f.labels}, Template: f.podSpec("agent:1")},
	}
	f.create(ds, f.canary("DaemonSet", sluicev1beta1.CanaryAnalysis{Iterations: 1}))
	f.initialized()
	f.get(ds, "podinfo")
	if !workload.ScaledToZero(ds) {
		t.Fatalf("target DaemonSet not held at zero: node selector %v", ds.Spec.Template.Spec.NodeSelector)
	}
	f.update(ds, "podinfo", func() { ds.Spec.Template.Spec.Containers[0].Image = "agent:2" })
	f.waitPhase(sluicev1beta1.CanaryPhaseSucceeded, 60*time.Second)
	primary := &appsv1.DaemonSet{}
	f.get(primary, "podinfo-primary")
	f.get(ds, "podinfo")
	if image(primary) != "agent:2" || primary.Status.NumberReady != 1 || !workload.ScaledToZero(ds) {
		t.Fatalf("primary image %s ready %d, target at zero %v", image(primary), primary.Status.NumberReady, workload.ScaledToZero(ds))
	}
}

func TestAnAutoscaledTargetGetsAPrimaryAutoscaler(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "hpa")
	startOperator(t, f.ns)
	hpa := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: f.ns},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"},
			MinReplicas:    ptr.To[int32](2), MaxReplicas: 6,
			Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
				Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To[int32](80)}}}},
		},
	}
	c := f.canary("Deployment", sluicev1beta1.CanaryAnalysis{Iterations: 1})
	c.Spec.AutoscalerRef = &sluicev1beta1.AutoscalerReference{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler", Name: "podinfo",
		PrimaryScalerReplicas: &sluicev1beta1.ScalerReplicas{MinReplicas: ptr.To[int32](3), MaxReplicas: ptr.To[int32](9)}}
	f.create(hpa, f.deployment("podinfo:6.0.0"), c)
	f.initialized()
	primaryHPA := &autoscalingv2.HorizontalPodAutoscaler{}
	f.get(primaryHPA, "podinfo-primary")
	if primaryHPA.Spec.ScaleTargetRef.Name != "podinfo-primary" || *primaryHPA.Spec.MinReplicas != 3 || primaryHPA.Spec.MaxReplicas != 9 || !metav1.IsControlledBy(primaryHPA, c) {
		t.Fatalf("primary HPA %+v", primaryHPA.Spec)
	}
	target := &appsv1.Deployment{}
	f.update(target, "podinfo", func() { target.Spec.Template.Spec.Containers[0].Image = "podinfo:6.0.1" })
	f.waitPhase(sluicev1beta1.CanaryPhaseProgressing, 10*time.Second)
	controlplane.Eventually(t, 10*time.Second, "the canary at the autoscaler's minimum", func(context.Context) (bool, string) {
		f.get(target, "podinfo")
		return *target.Spec.Replicas == 2, fmt.Sprintf("%d replicas", *target.Spec.Replicas)
	})
	f.waitPhase(sluicev1beta1.CanaryPhaseSucceeded, 60*time.Second)
}

func TestAKEDAScaledTargetGetsAPrimaryScaledObjectAndIsPausedAtZero(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "keda")
	startOperator(t, f.ns)
	trigger := func(name, query string) any {
		return map[string]any{"type": "prometheus", "name": name, "metadata": map[string]any{
			"serverAddress": "http://prometheus:9090", "threshold": "10", "query": query,
		}}
	}
	so := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
		"metadata": map[string]any{"name": "podinfo", "namespace": f.ns},
		"spec": map[string]any{
			"scaleTargetRef":  map[string]any{"name": "podinfo"},
			"minReplicaCount": int64(2), "maxReplicaCount": int64(6),
			"triggers": []any{
				trigger("requests", `sum(rate(http_requests_total{deployment="podinfo"}[1m]))`),
				trigger("latency", `histogram_quantile(0.99, rate(latency_bucket{deployment="podinfo"}[1m]))`),
			},
		},
	}}
	c := f.canary("Deployment", sluicev1beta1.CanaryAnalysis{Iterations: 1})
	c.Spec.AutoscalerRef = &sluicev1beta1.AutoscalerReference{APIVersion: "keda.sh/v1alpha1", Kind: "ScaledObject", Name: "podinfo",
		PrimaryScalerQueries:  map[string]string{"latency": "primary-latency"},
		PrimaryScalerReplicas: &sluicev1beta1.ScalerReplicas{MinReplicas: ptr.To[int32](3), MaxReplicas: ptr.To[int32](9)}}
	c.Spec.RevertOnDeletion = true
	f.create(so, f.deployment("podinfo:6.0.0"), c)
	f.initialized()
	getSO := func(name string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("keda.sh/v1alpha1")
		u.SetKind("ScaledObject")
		f.get(u, name)
		return u
	}
	primary := getSO("podinfo-primary")
	spec := primary.Object["spec"].(map[string]any)
	triggers := spec["triggers"].([]any)
	queries := []any{triggers[0].(map[string]any)["metadata"].(map[string]any)["query"], triggers[1].(map[string]any)["metadata"].(map[string]any)["query"]}
	if fmt.Sprint(spec["scaleTargetRef"]) != "map[name:podinfo-primary]" || spec["minReplicaCount"] != int64(3) || spec["maxReplicaCount"] != int64(9) ||
		queries[0] != `sum(rate(http_requests_total{deployment="podinfo-primary"}[1m]))` || queries[1] != "primary-latency" || !metav1.IsControlledBy(primary, c) {
		t.Fatalf("primary ScaledObject %v, queries %q", spec, queries)
	}
	paused := func() string { return getSO("podinfo").GetAnnotations()["autoscaling.keda.sh/paused-replicas"] }
	if p := paused(); p != "0" {
		t.Fatalf("the target's ScaledObject is not paused at 0 while the canary is at zero: %q", p)
	}
	target := &appsv1.Deployment{}
	f.update(target, "podinfo", func() { target.Spec.Template.Spec.Containers[0].Image = "podinfo:6.0.1" })
	controlplane.Eventually(t, 20*time.Second, "the canary at the ScaledObject's minimum, its ScaledObject resumed", func(context.Context) (bool, string) {
		f.get(target, "podinfo")
		return *target.Spec.Replicas == 2 && paused() == "", fmt.Sprintf("%d replicas, paused %q", *target.Spec.Replicas, paused())
	})
	f.waitPhase(sluicev1beta1.CanaryPhaseSucceeded, 60*time.Second)
	controlplane.Eventually(t, 20*time.Second, "the target's ScaledObject paused again", func(context.Context) (bool, string) {
		return paused() == "0", fmt.Sprintf("paused %q", paused())
	})

	// Deleting the Canary gives the target back with its ScaledObject
	// resumed: a paused one would keep it at zero for good.
	if err := cp.Client.Delete(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	controlplane.Eventually(t, time.Minute, "the target back and its ScaledObject resumed", func(context.Context) (bool, string) {
		f.get(target, "podinfo")
		return *target.Spec.Replicas > 0 && paused() == "", fmt.Sprintf("%d replicas, paused %q", *target.Spec.Replicas, paused())
	})
}

func TestRevertOnDeletionGivesTheTargetBack(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "revert")
	startOperator(t, f.ns)
	c := f.canary("Deployment", sluicev1beta1.CanaryAnalysis{Iterations: 1})
	c.Spec.RevertOnDeletion = true
	f.create(f.deployment("podinfo:6.0.0"), c)
	f.initialized()
	f.get(c, "podinfo")
	if !slices.Contains(c.Finalizers, sluicev1beta1.Finalizer) {
		t.Fatalf("finalizers %v", c.Finalizers)
	}
	if err := cp.Client.Delete(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	controlplane.Eventually(t, time.Minute, "the Canary is gone", func(ctx context.Context) (bool, string) {
		err := cp.Client.Get(ctx, client.ObjectKeyFromObject(c), &sluicev1beta1.Canary{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
	target := &appsv1.Deployment{}
	f.get(target, "podinfo")
	apex := &corev1.Service{}
	f.get(apex, "podinfo")
	if *target.Spec.Replicas != 3 || target.Status.ReadyReplicas != 3 || apex.Spec.Selector["app"] != "podinfo" || len(apex.OwnerReferences) != 0 {
		t.Fatalf("after deletion: target %d replicas (%d ready), apex selector %v owners %v", *target.Spec.Replicas, target.Status.ReadyReplicas, apex.Spec.Selector, apex.OwnerReferences)
	}
	controlplane.Eventually(t, time.Minute, "the primary is garbage collected", func(ctx context.Context) (bool, string) {
		err := cp.Client.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: "podinfo-primary"}, &appsv1.Deployment{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
}

func TestAnOperatorRestartedMidRolloutFinishesItCorrectly(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "restart")
	hooks := newHookServer(t)
	stop := startOperator(t, f.ns)
	f.create(f.deployment("podinfo:6.0.0"), f.canary("Deployment", sluicev1beta1.CanaryAnalysis{
		Iterations: 3,
		Webhooks:   []sluicev1beta1.CanaryWebhook{hooks.hook("load", sluicev1beta1.RolloutHook)},
	}))
	f.initialized()
	target := &appsv1.Deployment{}
	f.update(target, "podinfo", func() { target.Spec.Template.Spec.Containers[0].Image = "podinfo:6.0.1" })
	// Events are best effort: one still queued in the broadcaster when the
	// manager stops is dropped, so stop only after the first is stored.
	controlplane.Eventually(t, 30*time.Second, "one iteration, recorded", func(ctx context.Context) (bool, string) {
		c := &sluicev1beta1.Canary{}
		f.get(c, "podinfo")
		passed := countOf(f.events(), "IterationPassed")
		return c.Status.Iterations >= 1 && passed >= 1, fmt.Sprintf("iterations %d, %d events", c.Status.Iterations, passed)
	})
	stop()
	startOperator(t, f.ns)
	c := f.waitPhase(sluicev1beta1.CanaryPhaseSucceeded, 90*time.Second)
	primary := &appsv1.Deployment{}
	f.get(primary, "podinfo-primary")
	if image(primary) != "podinfo:6.0.1" {
		t.Fatalf("primary image %s", image(primary))
	}
	// Four steps: the first runs the pre-rollout hooks, the next three the
	// rollout hook once each (the last of them promotes).
	if n := len(hooks.calls("/load")); n != 3 {
		t.Fatalf("the rollout hook ran %d times, want 3: a step was repeated or skipped", n)
	}
	if passed := countOf(f.events(), "IterationPassed"); passed != 3 {
		t.Fatalf("%d iterations recorded, want 3", passed)
	}
	if c.Status.FailedChecks != 0 {
		t.Fatalf("failed checks %d", c.Status.FailedChecks)
	}
}

func countOf(list []string, s string) int {
	n := 0
	for _, v := range list {
		if v == s {
			n++
		}
	}
	return n
}

func TestASpecTheProviderCannotCarryOutChangesNothing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		ns       string
		analysis sluicev1beta1.CanaryAnalysis
		reason   string
		message  string
	}{
		{"weights on the kubernetes provider", "unsupported-weights", sluicev1beta1.CanaryAnalysis{StepWeight: 10}, "UnsupportedStrategy", "analysis.stepWeight"},
		{"a metric whose template is missing", "no-template", sluicev1beta1.CanaryAnalysis{Iterations: 2, Metrics: []sluicev1beta1.CanaryMetric{
			{Name: "errors", TemplateRef: &sluicev1beta1.CrossNamespaceObjectReference{Name: "absent"}, ThresholdRange: &sluicev1beta1.CanaryThresholdRange{Max: ptr.To(1.0)}}}},
			"MetricTemplateNotFound", "spec.analysis.metrics[0] (errors).templateRef: MetricTemplate no-template/absent not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.ns)
			startOperator(t, f.ns)
			f.create(f.deployment("podinfo:6.0.0"), f.canary("Deployment", tt.analysis))
			controlplane.Eventually(t, 30*time.Second, "a condition naming the field", func(ctx context.Context) (bool, string) {
				c := &sluicev1beta1.Canary{}
				f.get(c, "podinfo")
				ready := meta.FindStatusCondition(c.Status.Conditions, sluicev1beta1.ReadyCondition)
				return ready != nil && ready.Status == metav1.ConditionFalse && ready.Reason == tt.reason && strings.Contains(ready.Message, tt.message) &&
					meta.IsStatusConditionTrue(c.Status.Conditions, sluicev1beta1.StalledCondition), fmt.Sprintf("conditions %+v", c.Status.Conditions)
			})
			f.waitEvent(tt.reason)
			target := &appsv1.Deployment{}
			f.get(target, "podinfo")
			err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: f.ns, Name: "podinfo-primary"}, &appsv1.Deployment{})
			if *target.Spec.Replicas != 3 || !apierrors.IsNotFound(err) {
				t.Fatalf("the workload was touched: target replicas %d, primary %v", *target.Spec.Replicas, err)
			}
		})
	}
}
