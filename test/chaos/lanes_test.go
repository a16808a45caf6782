package chaos_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	syncv1 "sluice.dev/sluice/api/sync/v1"
	syncv2 "sluice.dev/sluice/api/sync/v2"
	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/test/chaos"
	"sluice.dev/sluice/test/gitserver"
	"sluice.dev/sluice/test/helmrepo"
)

// kind is a kind of rollout.
type kind string

const (
	blueGreen kind = "blue/green with gates"
	weighted  kind = "weighted canary, Prometheus"
	abTest    kind = "A/B, header match"
	helmKind  kind = "HelmRelease carrying a Canary"
	gitKind   kind = "Kustomization carrying a Canary"
)

var kinds = []kind{blueGreen, weighted, abTest, helmKind, gitKind}

// interval is every Canary's analysis interval, the shortest allowed.
const interval = 10 * time.Second

// env is what the lanes share: the servers the Canaries call and the
// sources the sync kinds read.
type env struct {
	hooks    *chaos.Hooks
	exporter *chaos.Exporter
	prom     *chaos.Prometheus
	charts   *helmrepo.HTTPRepo
	git      *gitserver.Server
	// gitMu serialises commits: they share one work tree.
	gitMu sync.Mutex
}

// lane releases one Canary, one rollout after the other.
type lane struct {
	kind   kind
	ns     string
	key    client.ObjectKey
	expect chaos.Expectation
	// healthy is, for each rollout, whether its version is healthy.
	healthy []bool
}

func newLane(k kind, i int, healthy []bool) *lane {
	l := &lane{kind: k, ns: fmt.Sprintf("chaos-%02d", i), healthy: healthy}
	l.key = client.ObjectKey{Namespace: l.ns, Name: "app"}
	switch k {
	case weighted:
		l.expect = chaos.Expectation{StepWeights: []int{20, 40, 60}, Interval: interval}
	case blueGreen, abTest:
		l.expect = chaos.Expectation{Iterations: 2, Interval: interval}
	default:
		l.expect = chaos.Expectation{Iterations: 1, Interval: interval}
	}
	return l
}

func (l *lane) gatewayRouted() bool { return l.kind == weighted || l.kind == abTest }

// deployment is the app a Canary releases; its image is the version.
func deployment(ns, image string) string {
	meta := "metadata: {name: app}"
	if ns != "" {
		meta = fmt.Sprintf("metadata: {name: app, namespace: %s}", ns)
	}
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
%s
spec:
  replicas: 1
  selector: {matchLabels: {app: app}}
  template:
    metadata: {labels: {app: app}}
    spec:
      containers: [{name: app, image: %q, ports: [{name: http, containerPort: 8080}]}]
`, meta, image)
}

// syncedCanary is the Canary that the chart and the Git repository ship:
// a blue/green switch judged by a rollout hook. hooks is the hooks' base
// URL, or a template expression that gives it.
func syncedCanary(hooksRollout, hooksPostRollout string) string {
	return fmt.Sprintf(`apiVersion: sluice.dev/v1beta1
kind: Canary
metadata: {name: app}
spec:
  provider: kubernetes
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: app}
  service: {port: 8080}
  analysis:
    interval: 10s
    iterations: 1
    threshold: 4
    webhooks:
      - {name: load, type: rollout, url: %s, timeout: 5s}
      - {name: done, type: post-rollout, url: %s}
`, hooksRollout, hooksPostRollout)
}

// setup creates the lane's namespace and objects.
func (l *lane) setup(ctx context.Context, e *env) error {
	ns := fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata: {name: %s}\n", l.ns)
	hook := func(t sluicev1beta1.HookType) string { return e.hooks.URL + "/" + string(t) }
	switch l.kind {
	case blueGreen:
		return chaos.Apply(ctx, cp.Client, ns+"---\n"+deployment(l.ns, "app:1")+"---\n"+fmt.Sprintf(`apiVersion: sluice.dev/v1beta1
kind: Canary
metadata: {name: app, namespace: %s}
spec:
  provider: kubernetes
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: app}
  service: {port: 8080}
  analysis:
    interval: 10s
    iterations: 2
    # A 20 s hang of the rollout hook fails up to three checks of a
    # healthy version.
    threshold: 4
    webhooks:
      - {name: start, type: confirm-rollout, url: %q, timeout: 2s}
      - {name: load, type: rollout, url: %q, timeout: 5s}
      - {name: promote, type: confirm-promotion, url: %q, timeout: 2s}
      - {name: done, type: post-rollout, url: %q}
`, l.ns, hook(sluicev1beta1.ConfirmRolloutHook), hook(sluicev1beta1.RolloutHook), hook(sluicev1beta1.ConfirmPromotionHook), hook(sluicev1beta1.PostRolloutHook)))
	case weighted:
		e.exporter.Set(l.key, 0)
		return chaos.Apply(ctx, cp.Client, ns+"---\n"+deployment(l.ns, "app:1")+"---\n"+fmt.Sprintf(`apiVersion: sluice.dev/v1beta1
kind: MetricTemplate
metadata: {name: error-ratio, namespace: %[1]s}
spec:
  provider: {type: prometheus, address: %[2]q, timeout: 5s}
  query: '%[3]s{namespace="{{ namespace }}",canary="{{ target }}"}'
---
apiVersion: sluice.dev/v1beta1
kind: Canary
metadata: {name: app, namespace: %[1]s}
spec:
  provider: gatewayapi:v1
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: app}
  service:
    port: 8080
    gatewayRefs: [{name: public, namespace: gateways}]
  analysis:
    interval: 10s
    # A 30 s Prometheus outage fails up to four checks of a healthy
    # version; a failing one fails every check.
    threshold: 5
    stepWeights: [20, 40, 60]
    metrics:
      - name: error-ratio
        templateRef: {name: error-ratio}
        thresholdRange: {max: 0.5}
        interval: 10s
    webhooks:
      - {name: done, type: post-rollout, url: %[4]q}
`, l.ns, e.prom.URL, chaos.ErrorRatioMetric, hook(sluicev1beta1.PostRolloutHook)))
	case abTest:
		return chaos.Apply(ctx, cp.Client, ns+"---\n"+deployment(l.ns, "app:1")+"---\n"+fmt.Sprintf(`apiVersion: sluice.dev/v1beta1
kind: Canary
metadata: {name: app, namespace: %s}
spec:
  provider: gatewayapi:v1
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: app}
  service:
    port: 8080
    gatewayRefs: [{name: public, namespace: gateways}]
  analysis:
    interval: 10s
    iterations: 2
    threshold: 2
    match:
      - headers:
          x-canary: {exact: insider}
    webhooks:
      - {name: abort, type: rollback, url: %q, timeout: 5s}
      - {name: promote, type: confirm-promotion, url: %q, timeout: 2s}
      - {name: done, type: post-rollout, url: %q}
`, l.ns, hook(sluicev1beta1.RollbackHook), hook(sluicev1beta1.ConfirmPromotionHook), hook(sluicev1beta1.PostRolloutHook)))
	case helmKind:
		if err := chaos.Apply(ctx, cp.Client, ns+"---\n"+deployer(l.ns)); err != nil {
			return err
		}
		for _, o := range []client.Object{
			&sourcev1.HelmRepository{ObjectMeta: metav1.ObjectMeta{Name: "charts", Namespace: l.ns}, Spec: sourcev1.HelmRepositorySpec{URL: e.charts.URL, Interval: metav1.Duration{Duration: time.Hour}}},
			&syncv2.HelmRelease{
				ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: l.ns},
				Spec: syncv2.HelmReleaseSpec{
					Interval: metav1.Duration{Duration: time.Hour},
					Timeout:  &metav1.Duration{Duration: 2 * time.Minute},
					Chart: &syncv2.HelmChartTemplate{Spec: syncv2.HelmChartTemplateSpec{
						Chart: "app", Version: "1.x",
						SourceRef: syncv2.HelmChartSourceReference{Kind: "HelmRepository", Name: "charts"},
					}},
					Values:             helmValues("app:1", e.hooks.URL),
					ServiceAccountName: "deployer",
				},
			},
		} {
			if err := cp.Client.Create(ctx, o); err != nil {
				return fmt.Errorf("create %T: %w", o, err)
			}
		}
		return nil
	case gitKind:
		if err := chaos.Apply(ctx, cp.Client, ns+"---\n"+deployer(l.ns)); err != nil {
			return err
		}
		e.commit(l.ns, "app:1")
		secret, repo := e.git.Source(l.ns, "repo", time.Hour)
		for _, o := range []client.Object{
			secret, repo,
			&syncv1.Kustomization{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: l.ns}, Spec: syncv1.KustomizationSpec{
				SourceRef: syncv1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: "repo"},
				Path:      "lanes/" + l.ns, Prune: true, TargetNamespace: l.ns, Interval: metav1.Duration{Duration: time.Hour},
				PostBuild: &syncv1.PostBuild{Substitute: map[string]string{"HOOKS": e.hooks.URL}},
				Wait:      true, Timeout: &metav1.Duration{Duration: 2 * time.Minute},
				ServiceAccountName: "deployer",
			}},
		} {
			if err := cp.Client.Create(ctx, o); err != nil {
				return fmt.Errorf("create %T: %w", o, err)
			}
		}
		return nil
	}
	return fmt.Errorf("unknown kind %q", l.kind)
}

// deployer is the ServiceAccount the lane's HelmRelease or Kustomization
// applies as: the operator's own role may not create Canaries or
// Deployments, as a multi-tenant install would have it.
func deployer(ns string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: ServiceAccount
metadata: {name: deployer, namespace: %[1]s}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: deployer, namespace: %[1]s}
rules:
  - apiGroups: ["", apps, sluice.dev]
    resources: ["*"]
    verbs: ["*"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: deployer, namespace: %[1]s}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: deployer}
subjects: [{kind: ServiceAccount, name: deployer, namespace: %[1]s}]
`, ns)
}

// commit writes a lane's version to Git.
func (e *env) commit(ns, image string) {
	e.gitMu.Lock()
	defer e.gitMu.Unlock()
	e.git.Commit(map[string]string{
		"lanes/" + ns + "/deploy.yaml": deployment("", image),
		"lanes/" + ns + "/canary.yaml": syncedCanary(`"${HOOKS}/rollout"`, `"${HOOKS}/post-rollout"`),
	})
}

func helmValues(image, hooks string) *apiextensionsv1.JSON {
	return &apiextensionsv1.JSON{Raw: fmt.Appendf(nil, `{"image": %q, "hooks": %q}`, image, hooks)}
}

// chart is what the HelmRelease lanes install: the app and its Canary.
func chart() map[string]string {
	return map[string]string{
		"deployment.yaml": deployment("", "{{ .Values.image }}"),
		"canary.yaml":     syncedCanary(`{{ printf "%s/rollout" .Values.hooks | quote }}`, `{{ printf "%s/post-rollout" .Values.hooks | quote }}`),
	}
}

// release starts the lane's rollout of version n: a new image, healthy or
// failing as the seed drew it.
func (l *lane) release(ctx context.Context, e *env, image string, healthy bool) error {
	e.hooks.SetFailing(l.key, !healthy)
	if l.kind == weighted {
		ratio := 0.0
		if !healthy {
			ratio = 1
		}
		e.exporter.Set(l.key, ratio)
	}
	switch l.kind {
	case helmKind:
		return retry(ctx, func(ctx context.Context) error {
			hr := &syncv2.HelmRelease{}
			if err := cp.Client.Get(ctx, l.key, hr); err != nil {
				return err
			}
			before := hr.DeepCopy()
			hr.Spec.Values = helmValues(image, e.hooks.URL)
			return cp.Client.Patch(ctx, hr, client.MergeFrom(before))
		})
	case gitKind:
		e.commit(l.ns, image)
		// As `flux reconcile source git` asks.
		return retry(ctx, func(ctx context.Context) error {
			repo := &sourcev1.GitRepository{ObjectMeta: metav1.ObjectMeta{Name: "repo", Namespace: l.ns}}
			patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, sourcev1.ReconcileRequestAnnotation, time.Now().Format(time.RFC3339Nano))
			return cp.Client.Patch(ctx, repo, client.RawPatch("application/merge-patch+json", []byte(patch)))
		})
	default:
		return retry(ctx, func(ctx context.Context) error { return chaos.SetImage(ctx, cp.Client, l.key, image) })
	}
}

// settle checks, once a rollout has ended, what the router and the sync
// kinds were left with: routes back on the primary, the sync object's
// Ready agreeing with the Canary, no Helm release pending.
func (l *lane) settle(ctx context.Context, end chaos.Observation) []string {
	var problems []string
	if l.gatewayRouted() {
		// The route is written before the status: read live, it must be
		// back on the primary already.
		route := &gatewayv1.HTTPRoute{}
		if err := retry(ctx, func(ctx context.Context) error { return cp.Client.Get(ctx, l.key, route) }); err != nil {
			problems = append(problems, err.Error())
		} else if split := chaos.RouteSplit(route, "app"); split != "" {
			problems = append(problems, fmt.Sprintf("the route is split after %s: %s", end.Phase, split))
		}
	}
	wantReady := metav1.ConditionTrue
	if end.Phase != sluicev1beta1.CanaryPhaseSucceeded {
		wantReady = metav1.ConditionFalse
	}
	if l.kind != helmKind && l.kind != gitKind {
		return problems
	}
	deadline := time.Now().Add(90 * time.Second)
	var last string
	for {
		ready, err := l.syncReady(ctx)
		status, serr := helmStatus(ctx, l.ns)
		done := err == nil && ready != nil && ready.Status == wantReady && (l.kind != helmKind || (serr == nil && !strings.HasPrefix(status, "pending")))
		if done {
			return problems
		}
		last = fmt.Sprintf("Ready %+v (%v); Helm release %q (%v)", ready, err, status, serr)
		if time.Now().After(deadline) || ctx.Err() != nil {
			return append(problems, fmt.Sprintf("the %s is not Ready=%s 90s after the Canary %s: %s", l.kind, wantReady, end.Phase, last))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// syncReady is the Ready condition of the lane's HelmRelease or
// Kustomization, once it has acted on its latest spec.
func (l *lane) syncReady(ctx context.Context) (*metav1.Condition, error) {
	var conditions []metav1.Condition
	if l.kind == helmKind {
		hr := &syncv2.HelmRelease{}
		if err := cp.Client.Get(ctx, l.key, hr); err != nil {
			return nil, err
		}
		if hr.Status.ObservedGeneration != hr.Generation {
			return nil, fmt.Errorf("HelmRelease generation %d not observed yet", hr.Generation)
		}
		conditions = hr.Status.Conditions
	} else {
		ks := &syncv1.Kustomization{}
		if err := cp.Client.Get(ctx, l.key, ks); err != nil {
			return nil, err
		}
		conditions = ks.Status.Conditions
	}
	return meta.FindStatusCondition(conditions, "Ready"), nil
}

// helmStatus is the status label of the latest record of the lane's
// release in Helm's storage.
func helmStatus(ctx context.Context, ns string) (string, error) {
	var list corev1.SecretList
	if err := cp.Client.List(ctx, &list, client.InNamespace(ns), client.MatchingLabels{"owner": "helm"}); err != nil {
		return "", err
	}
	latest, status := "", ""
	for _, s := range list.Items {
		if v := s.Labels["version"]; len(v) > len(latest) || (len(v) == len(latest) && v > latest) {
			latest, status = v, s.Labels["status"]
		}
	}
	return status, nil
}

// retry runs f until it succeeds, for up to two minutes: the API server
// may be restarting.
func retry(ctx context.Context, f func(context.Context) error) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		err := f(ctx)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// waitInitialized waits for the lane's Canary to be ready for its first
// rollout.
func (l *lane) waitInitialized(ctx context.Context, r *chaos.Recorder) error {
	deadline := time.Now().Add(3 * time.Minute)
	for {
		h := r.History(l.key)
		if len(h) > 0 && h[len(h)-1].Phase == sluicev1beta1.CanaryPhaseInitialized {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			last := "no status"
			if len(h) > 0 {
				last = h[len(h)-1].String()
			}
			return fmt.Errorf("%s: the Canary did not initialize within 3 minutes: %s%s", l.ns, last, l.describe(context.WithoutCancel(ctx)))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// helmChart adds the lanes' chart to the repository.
func helmChart(t *testing.T, repo *helmrepo.HTTPRepo) {
	repo.Add(t, helmrepo.NewChart("app", "1.0.0", chart(), map[string]any{"image": "app:1", "hooks": ""}))
}

// describe says where the lane's sync object and its source stand, for
// failure messages.
func (l *lane) describe(ctx context.Context) string {
	var b strings.Builder
	objs := map[string]client.Object{}
	switch l.kind {
	case helmKind:
		objs["HelmRelease"] = &syncv2.HelmRelease{}
		objs["HelmRepository"] = &sourcev1.HelmRepository{}
		objs["HelmChart"] = &sourcev1.HelmChart{}
	case gitKind:
		objs["Kustomization"] = &syncv1.Kustomization{}
		objs["GitRepository"] = &sourcev1.GitRepository{}
	default:
		return ""
	}
	for kind, o := range objs {
		name := l.key.Name
		switch kind {
		case "HelmRepository":
			name = "charts"
		case "GitRepository":
			name = "repo"
		case "HelmChart":
			name = l.ns + "-app"
		}
		if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: l.ns, Name: name}, o); err != nil {
			fmt.Fprintf(&b, "; %s %s: %v", kind, name, err)
			continue
		}
		fmt.Fprintf(&b, "; %s %s: %+v", kind, name, statusOf(o))
	}
	return b.String()
}

func statusOf(o client.Object) any {
	switch o := o.(type) {
	case *syncv2.HelmRelease:
		return o.Status
	case *sourcev1.HelmRepository:
		return o.Status
	case *sourcev1.HelmChart:
		return o.Status
	case *syncv1.Kustomization:
		return o.Status
	case *sourcev1.GitRepository:
		return o.Status
	}
	return nil
}
