package gitops

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	syncv2 "sluice.dev/sluice/api/sync/v2"
	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/sync/handoff"
	"sluice.dev/sluice/test/helmrepo"
	"sluice.dev/sluice/test/inprocess"
)

const helmNS = "helmops"

// The chart's Deployment, Canary and settings, as a team would ship them.
// The settings are what Sluice waits for beside the Canary.
const (
	chartSettings   = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: podinfo-settings}\ndata: {image: {{ .Values.image | quote }}}\n"
	chartDeployment = `apiVersion: apps/v1
kind: Deployment
metadata: {name: podinfo}
spec:
  replicas: 2
  selector: {matchLabels: {app: podinfo}}
  template:
    metadata: {labels: {app: podinfo}}
    spec:
      containers: [{name: app, image: {{ .Values.image | quote }}, ports: [{name: http, containerPort: 9898}]}]
`
	chartCanary = `apiVersion: sluice.dev/v1beta1
kind: Canary
metadata: {name: podinfo}
spec:
  provider: kubernetes
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  service: {port: 9898}
  analysis:
    interval: 10s
    iterations: 1
    threshold: 1
    webhooks: [{name: load, type: rollout, url: {{ .Values.hook | quote }}}]
`
)

func TestAValuesChangeIsReleasedByTheCanaryAndTheHelmReleaseWaitsForIt(t *testing.T) {
	var failing atomic.Bool
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if failing.Load() {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(hook.Close)
	repo := helmrepo.NewHTTP(t)
	repo.Add(t, helmrepo.NewChart("podinfo", "6.0.0", map[string]string{"deployment.yaml": chartDeployment, "canary.yaml": chartCanary, "settings.yaml": chartSettings}, map[string]any{"image": "podinfo:1", "hook": ""}))
	hr := &syncv2.HelmRelease{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: helmNS},
		Spec: syncv2.HelmReleaseSpec{
			Interval: metav1.Duration{Duration: time.Hour},
			Timeout:  &metav1.Duration{Duration: time.Minute},
			Chart: &syncv2.HelmChartTemplate{Spec: syncv2.HelmChartTemplateSpec{
				Chart: "podinfo", Version: "6.x",
				SourceRef: syncv2.HelmChartSourceReference{Kind: "HelmRepository", Name: "charts"},
			}},
			Values: values("podinfo:1", hook.URL),
			// Drift detection must not take the engine's work for drift.
			DriftDetection: &syncv2.DriftDetection{Mode: syncv2.DriftDetectionEnabled},
		},
	}
	for _, o := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: helmNS}},
		&sourcev1.HelmRepository{ObjectMeta: metav1.ObjectMeta{Name: "charts", Namespace: helmNS}, Spec: sourcev1.HelmRepositorySpec{URL: repo.URL, Interval: metav1.Duration{Duration: time.Hour}}},
		hr,
	} {
		if err := cp.Client.Create(t.Context(), o); err != nil {
			t.Fatal(err)
		}
	}
	inprocess.Start(t, cp.Config, helmNS, testr.NewWithOptions(t, testr.Options{Verbosity: 0}))

	waitHelmRelease(t, "the first release installed and initialized", func(hr *syncv2.HelmRelease, c *sluicev1beta1.Canary) bool {
		return helmReady(hr) == metav1.ConditionTrue && c.Status.Phase == sluicev1beta1.CanaryPhaseInitialized
	})

	// A new image in the values: Ready only after the promotion.
	setValues(t, hr, values("podinfo:2", hook.URL))
	sawProgressing := false
	waitHelmRelease(t, "podinfo:2 promoted", func(hr *syncv2.HelmRelease, c *sluicev1beta1.Canary) bool {
		upgraded := len(hr.Status.History) > 0 && hr.Status.History[0].Version == 2
		if upgraded && helmReady(hr) == metav1.ConditionUnknown {
			sawProgressing = true
		}
		if upgraded && helmReady(hr) == metav1.ConditionTrue && c.Status.Phase != sluicev1beta1.CanaryPhaseSucceeded {
			t.Fatalf("the HelmRelease is Ready while the Canary is %s", c.Status.Phase)
		}
		return upgraded && helmReady(hr) == metav1.ConditionTrue
	})
	if !sawProgressing {
		t.Error("the HelmRelease never reported the release in progress")
	}
	if img := primaryImageIn(t, helmNS); img != "podinfo:2" {
		t.Fatalf("primary runs %s", img)
	}
	// Another reconcile, with drift detection on, leaves the target at
	// zero replicas where the engine put it.
	if err := cp.Client.Patch(t.Context(), hr, client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"annotations":{"reconcile.fluxcd.io/requestedAt":"again"}}}`))); err != nil {
		t.Fatal(err)
	}
	checked := waitHelmRelease(t, "reconciled again", func(hr *syncv2.HelmRelease, _ *sluicev1beta1.Canary) bool {
		return hr.Status.LastHandledReconcileAt == "again" && helmReady(hr) == metav1.ConditionTrue
	})
	if c := meta.FindStatusCondition(checked.Status.Conditions, "Drifted"); c == nil || c.Reason != "NoDriftDetected" {
		t.Fatalf("Drifted %+v: the engine's fields were taken for drift", c)
	}
	target := &appsv1.Deployment{}
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: helmNS, Name: "podinfo"}, target); err != nil || *target.Spec.Replicas != 0 {
		t.Fatalf("the sync core scaled the canary target back up: %v %v", target.Spec.Replicas, err)
	}

	// A bad version: the Canary rolls back and the HelmRelease says why.
	failing.Store(true)
	setValues(t, hr, values("podinfo:3", hook.URL))
	got := waitHelmRelease(t, "podinfo:3 rolled back", func(hr *syncv2.HelmRelease, _ *sluicev1beta1.Canary) bool {
		return len(hr.Status.History) > 0 && hr.Status.History[0].Version == 3 && helmReady(hr) == metav1.ConditionFalse
	})
	cond := meta.FindStatusCondition(got.Status.Conditions, "Ready")
	if cond.Reason != handoff.ReasonCanaryFailed || !strings.Contains(cond.Message, "Canary helmops/podinfo") {
		t.Fatalf("Ready %+v, want the Canary's reason", cond)
	}
	if img := primaryImageIn(t, helmNS); img != "podinfo:2" {
		t.Fatalf("primary runs %s after the rollback", img)
	}
}

func values(image, hook string) *apiextensionsv1.JSON {
	return &apiextensionsv1.JSON{Raw: fmt.Appendf(nil, `{"image": %q, "hook": %q}`, image, hook)}
}

func setValues(t *testing.T, hr *syncv2.HelmRelease, v *apiextensionsv1.JSON) {
	t.Helper()
	if err := cp.Client.Get(t.Context(), client.ObjectKeyFromObject(hr), hr); err != nil {
		t.Fatal(err)
	}
	// A patch, as kubectl apply sends: the controller writes the status
	// meanwhile, which an Update of the read copy would conflict with.
	before := hr.DeepCopy()
	hr.Spec.Values = v
	if err := cp.Client.Patch(t.Context(), hr, client.MergeFrom(before)); err != nil {
		t.Fatal(err)
	}
}

func helmReady(hr *syncv2.HelmRelease) metav1.ConditionStatus {
	if c := meta.FindStatusCondition(hr.Status.Conditions, "Ready"); c != nil && hr.Status.ObservedGeneration == hr.Generation {
		return c.Status
	}
	return ""
}

func waitHelmRelease(t *testing.T, what string, cond func(*syncv2.HelmRelease, *sluicev1beta1.Canary) bool) *syncv2.HelmRelease {
	t.Helper()
	return waitSynced(t, &syncv2.HelmRelease{}, client.ObjectKey{Namespace: helmNS, Name: "podinfo"}, what, cond)
}
