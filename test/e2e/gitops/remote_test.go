package gitops

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	syncv1 "sluice.dev/sluice/api/sync/v1"
	syncv2 "sluice.dev/sluice/api/sync/v2"
	"sluice.dev/sluice/pkg/sync/status"
	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/gitserver"
	"sluice.dev/sluice/test/helmrepo"
	"sluice.dev/sluice/test/inprocess"
)

// remoteDeployment is a one-replica Deployment, which the remote
// cluster's controllers and kwok roll out.
const remoteDeployment = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: app, image: "web:1"}]
`

const remoteSettings = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web-settings}\ndata: {MODE: fast}\n"

// TestRemoteClusters runs a second control plane, a plain cluster without
// Sluice's CRDs, and checks that spec.kubeConfig puts everything a
// Kustomization or a HelmRelease does there, and nothing here.
func TestRemoteClusters(t *testing.T) {
	remote, err := controlplane.Start(t.Context(), controlplane.Options{CRDDirectoryPaths: []string{}})
	t.Cleanup(func() {
		if remote != nil {
			if err := remote.Stop(); err != nil {
				t.Errorf("stop the remote control plane: %v", err)
			}
		}
	})
	if err != nil {
		t.Fatalf("start the remote control plane: %v", err)
	}
	admin, err := os.ReadFile(remote.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	// kubeconfigSecret holds the remote's admin kubeconfig under key.
	kubeconfigSecret := func(namespace, name, key string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}, Data: map[string][]byte{key: admin}}
	}
	ref := func(name string) *syncv1.KubeConfigReference {
		return &syncv1.KubeConfigReference{SecretRef: &syncv1.SecretKeyReference{Name: name}}
	}
	create := func(t *testing.T, c client.Client, objs ...client.Object) {
		t.Helper()
		for _, o := range objs {
			if err := c.Create(t.Context(), o); err != nil {
				t.Fatalf("create %T %s: %v", o, o.GetName(), err)
			}
		}
	}
	namespace := func(name string) *corev1.Namespace {
		return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	}

	t.Run("a Kustomization applies, waits for, prunes and deletes on the remote cluster", func(t *testing.T) {
		const local, target = "remote-ks", "remote-apps"
		s := gitserver.New(t)
		first := s.Commit(map[string]string{"app/deploy.yaml": remoteDeployment, "app/settings.yaml": remoteSettings})
		secret, repo := s.Source(local, "repo", time.Second)
		ks := &syncv1.Kustomization{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: local}, Spec: syncv1.KustomizationSpec{
			SourceRef: syncv1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: "repo"},
			Path:      "app", Prune: true, TargetNamespace: target, Interval: metav1.Duration{Duration: time.Hour},
			Wait: true, KubeConfig: ref("remote-kubeconfig"),
		}}
		create(t, remote.Client, namespace(target))
		create(t, cp.Client, namespace(local), secret, repo, kubeconfigSecret(local, "remote-kubeconfig", "value"), ks)
		inprocess.Start(t, cp.Config, local, testr.NewWithOptions(t, testr.Options{Verbosity: 0}))
		key := client.ObjectKeyFromObject(ks)

		waitStatus(t, &syncv1.Kustomization{}, key, "the first commit applied to the remote cluster", func(ks *syncv1.Kustomization) bool {
			return ks.Status.LastAppliedRevision == "main@sha1:"+first && status.Ready(ks)
		})
		// Ready with wait means healthy, which only the remote's
		// controllers can have made the Deployment.
		d := &appsv1.Deployment{}
		if err := remote.Client.Get(t.Context(), client.ObjectKey{Namespace: target, Name: "web"}, d); err != nil || d.Status.ReadyReplicas != 1 {
			t.Fatalf("the remote Deployment: %d ready, %v", d.Status.ReadyReplicas, err)
		}
		mustExist(t, remote.Client, target, "web-settings", &corev1.ConfigMap{})
		mustNotExist(t, cp.Client, target, "web", &appsv1.Deployment{})
		mustNotExist(t, cp.Client, target, "web-settings", &corev1.ConfigMap{})
		mustNotExist(t, cp.Client, local, "web", &appsv1.Deployment{})

		// A commit without the ConfigMap prunes it on the remote cluster.
		second := s.Commit(map[string]string{"app/settings.yaml": ""})
		waitStatus(t, &syncv1.Kustomization{}, key, "the ConfigMap's removal applied", func(ks *syncv1.Kustomization) bool {
			return ks.Status.LastAppliedRevision == "main@sha1:"+second && status.Ready(ks)
		})
		mustNotExist(t, remote.Client, target, "web-settings", &corev1.ConfigMap{})
		mustExist(t, remote.Client, target, "web", &appsv1.Deployment{})

		// Deleting the Kustomization (deletionPolicy MirrorPrune, with
		// prune) deletes what it applied on the remote cluster.
		if err := cp.Client.Delete(t.Context(), ks); err != nil {
			t.Fatal(err)
		}
		controlplane.Eventually(t, time.Minute, "the Kustomization and its remote Deployment gone", func(ctx context.Context) (bool, string) {
			err := cp.Client.Get(ctx, key, &syncv1.Kustomization{})
			if !apierrors.IsNotFound(err) {
				return false, fmt.Sprintf("the Kustomization: %v", err)
			}
			err = remote.Client.Get(ctx, client.ObjectKey{Namespace: target, Name: "web"}, &appsv1.Deployment{})
			return apierrors.IsNotFound(err), fmt.Sprintf("the remote Deployment: %v", err)
		})
	})

	t.Run("the Canary hand-off reads the remote cluster's Canaries", func(t *testing.T) {
		const local, target = "remote-handoff", "remote-handoff-apps"
		// The remote cluster knows Canaries, and one targets the
		// Deployment there; no operator runs it. Here there is none.
		data, err := os.ReadFile(filepath.Join(controlplane.RepoRoot(), "kustomize", "crds", "sluice.dev_canaries.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.Unmarshal(data, crd); err != nil {
			t.Fatal(err)
		}
		create(t, remote.Client, crd, namespace(target))
		controlplane.Eventually(t, 30*time.Second, "the remote Canary CRD established", func(ctx context.Context) (bool, string) {
			got := &apiextensionsv1.CustomResourceDefinition{}
			if err := remote.Client.Get(ctx, client.ObjectKeyFromObject(crd), got); err != nil {
				return false, err.Error()
			}
			for _, c := range got.Status.Conditions {
				if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
					return true, ""
				}
			}
			return false, fmt.Sprintf("conditions %+v", got.Status.Conditions)
		})
		s := gitserver.New(t)
		s.Commit(map[string]string{"app/deploy.yaml": remoteDeployment, "app/canary.yaml": `apiVersion: sluice.dev/v1beta1
kind: Canary
metadata: {name: web}
spec:
  provider: kubernetes
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  service: {port: 9898}
  analysis: {interval: 10s, iterations: 1, threshold: 1}
`})
		secret, repo := s.Source(local, "repo", time.Second)
		create(t, cp.Client, namespace(local), namespace(target), secret, repo, kubeconfigSecret(local, "remote-kubeconfig", "value"),
			&syncv1.Kustomization{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: local}, Spec: syncv1.KustomizationSpec{
				SourceRef: syncv1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: "repo"},
				Path:      "app", Prune: true, TargetNamespace: target, Interval: metav1.Duration{Duration: time.Hour},
				KubeConfig: ref("remote-kubeconfig"),
			}})
		inprocess.Start(t, cp.Config, local, testr.NewWithOptions(t, testr.Options{Verbosity: 0}))
		says := "Canary " + target + "/web has not picked up revision"
		waitStatus(t, &syncv1.Kustomization{}, client.ObjectKey{Namespace: local, Name: "app"}, "waiting for the remote Canary", func(ks *syncv1.Kustomization) bool {
			c := meta.FindStatusCondition(ks.Status.Conditions, "Ready")
			return c != nil && c.Status == metav1.ConditionUnknown && strings.Contains(c.Message, says)
		})
		mustExist(t, remote.Client, target, "web", &appsv1.Deployment{})
		mustNotExist(t, cp.Client, target, "web", &appsv1.Deployment{})
	})

	t.Run("a HelmRelease installs, upgrades, corrects drift and uninstalls on the remote cluster", func(t *testing.T) {
		const local, target = "remote-helm", "remote-helm-apps"
		repo := helmrepo.NewHTTP(t)
		repo.Add(t, helmrepo.NewChart("hello", "1.0.0", map[string]string{
			"deployment.yaml": remoteDeployment,
			"settings.yaml":   "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: hello}\ndata: {greeting: {{ .Values.greeting | quote }}}\n",
		}, map[string]any{"greeting": "hello"}))
		hr := &syncv2.HelmRelease{
			ObjectMeta: metav1.ObjectMeta{Name: "hello", Namespace: local},
			Spec: syncv2.HelmReleaseSpec{
				Interval: metav1.Duration{Duration: time.Hour},
				Timeout:  &metav1.Duration{Duration: time.Minute},
				Chart: &syncv2.HelmChartTemplate{Spec: syncv2.HelmChartTemplateSpec{
					Chart: "hello", Version: "1.x",
					SourceRef: syncv2.HelmChartSourceReference{Kind: "HelmRepository", Name: "charts"},
				}},
				TargetNamespace: target,
				Values:          greetingValues("hello"),
				KubeConfig:      ref("remote-kubeconfig"),
				DriftDetection:  &syncv2.DriftDetection{Mode: syncv2.DriftDetectionEnabled},
			},
		}
		// Helm's records stay in the HelmRelease's namespace, as in
		// Flux: that namespace on the remote cluster.
		create(t, remote.Client, namespace(target), namespace(local))
		create(t, cp.Client, namespace(local), kubeconfigSecret(local, "remote-kubeconfig", "value"),
			&sourcev1.HelmRepository{ObjectMeta: metav1.ObjectMeta{Name: "charts", Namespace: local}, Spec: sourcev1.HelmRepositorySpec{URL: repo.URL, Interval: metav1.Duration{Duration: time.Hour}}},
			hr)
		inprocess.Start(t, cp.Config, local, testr.NewWithOptions(t, testr.Options{Verbosity: 0}))
		key := client.ObjectKeyFromObject(hr)
		release := target + "-hello"
		released := func(version int) func(*syncv2.HelmRelease) bool {
			return func(hr *syncv2.HelmRelease) bool {
				return len(hr.Status.History) > 0 && hr.Status.History[0].Version == version && helmReady(hr) == metav1.ConditionTrue
			}
		}

		waitStatus(t, &syncv2.HelmRelease{}, key, "the chart installed on the remote cluster", released(1))
		// Helm waited for the Deployment: only the remote's controllers
		// can have made it ready.
		d := &appsv1.Deployment{}
		if err := remote.Client.Get(t.Context(), client.ObjectKey{Namespace: target, Name: "web"}, d); err != nil || d.Status.ReadyReplicas != 1 {
			t.Fatalf("the remote Deployment: %d ready, %v", d.Status.ReadyReplicas, err)
		}
		if g := greeting(t, remote.Client, target); g != "hello" {
			t.Fatalf("the remote ConfigMap greets %q", g)
		}
		if n := helmRecords(t, remote.Client, local, release); n != 1 {
			t.Fatalf("%d Helm records on the remote cluster, want 1", n)
		}
		if n := helmRecords(t, cp.Client, local, release); n != 0 {
			t.Fatalf("%d Helm records on this cluster", n)
		}
		mustNotExist(t, cp.Client, local, "hello", &corev1.ConfigMap{})
		mustNotExist(t, cp.Client, target, "hello", &corev1.ConfigMap{})

		// New values upgrade the release on the remote cluster.
		setValues(t, hr, greetingValues("bonjour"))
		waitStatus(t, &syncv2.HelmRelease{}, key, "the values change upgraded", released(2))
		if g := greeting(t, remote.Client, target); g != "bonjour" {
			t.Fatalf("the remote ConfigMap greets %q after the upgrade", g)
		}
		if n := helmRecords(t, remote.Client, local, release); n != 2 {
			t.Fatalf("%d Helm records on the remote cluster, want 2", n)
		}

		// Drift on the remote cluster is found there and corrected.
		cm := &corev1.ConfigMap{}
		if err := remote.Client.Get(t.Context(), client.ObjectKey{Namespace: target, Name: "hello"}, cm); err != nil {
			t.Fatal(err)
		}
		cm.Data["greeting"] = "drifted"
		if err := remote.Client.Update(t.Context(), cm); err != nil {
			t.Fatal(err)
		}
		annotateReconcile(t, hr, "drift")
		got := waitStatus(t, &syncv2.HelmRelease{}, key, "the drift corrected", func(hr *syncv2.HelmRelease) bool {
			return hr.Status.LastHandledReconcileAt == "drift" && helmReady(hr) == metav1.ConditionTrue
		})
		if c := meta.FindStatusCondition(got.Status.Conditions, syncv2.DriftedCondition); c == nil || c.Reason != syncv2.ReasonDriftDetected || !strings.Contains(c.Message, "ConfigMap/"+target+"/hello") {
			t.Fatalf("Drifted %+v: the remote drift was not found", c)
		}
		if g := greeting(t, remote.Client, target); g != "bonjour" {
			t.Fatalf("the remote ConfigMap greets %q after the correction", g)
		}

		// Deleting the HelmRelease uninstalls the release from the remote
		// cluster, records and all.
		if err := cp.Client.Delete(t.Context(), hr); err != nil {
			t.Fatal(err)
		}
		controlplane.Eventually(t, time.Minute, "the release uninstalled from the remote cluster", func(ctx context.Context) (bool, string) {
			if err := cp.Client.Get(ctx, key, &syncv2.HelmRelease{}); !apierrors.IsNotFound(err) {
				return false, fmt.Sprintf("the HelmRelease: %v", err)
			}
			if err := remote.Client.Get(ctx, client.ObjectKey{Namespace: target, Name: "hello"}, &corev1.ConfigMap{}); !apierrors.IsNotFound(err) {
				return false, fmt.Sprintf("the remote ConfigMap: %v", err)
			}
			return helmRecords(t, remote.Client, local, release) == 0, "Helm records are left on the remote cluster"
		})
	})

	t.Run("a missing Secret or key fails naming spec.kubeConfig.secretRef and touches nothing here", func(t *testing.T) {
		const local = "remote-bad"
		const leaked = "token-that-must-not-leak"
		s := gitserver.New(t)
		first := s.Commit(map[string]string{"app/settings.yaml": remoteSettings})
		secret, repo := s.Source(local, "repo", time.Second)
		kustomization := func(name, secretName string) *syncv1.Kustomization {
			return &syncv1.Kustomization{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: local}, Spec: syncv1.KustomizationSpec{
				SourceRef: syncv1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: "repo"},
				Path:      "app", Prune: true, TargetNamespace: local, Interval: metav1.Duration{Duration: time.Hour}, KubeConfig: ref(secretName),
			}}
		}
		chartRepo := helmrepo.NewHTTP(t)
		chartRepo.Add(t, helmrepo.NewChart("hello", "1.0.0", map[string]string{"settings.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: hello}\n"}, map[string]any{}))
		create(t, remote.Client, namespace(local))
		create(t, cp.Client, namespace(local), secret, repo,
			kubeconfigSecret(local, "wrong-key", "kubeconfig"),
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "garbled", Namespace: local}, StringData: map[string]string{"value": "token: [" + leaked}},
			kustomization("missing", "remote-kubeconfig"),
			kustomization("no-value", "wrong-key"),
			kustomization("garbled", "garbled"),
			&sourcev1.HelmRepository{ObjectMeta: metav1.ObjectMeta{Name: "charts", Namespace: local}, Spec: sourcev1.HelmRepositorySpec{URL: chartRepo.URL, Interval: metav1.Duration{Duration: time.Hour}}},
			&syncv2.HelmRelease{ObjectMeta: metav1.ObjectMeta{Name: "missing-helm", Namespace: local}, Spec: syncv2.HelmReleaseSpec{
				Interval: metav1.Duration{Duration: time.Hour},
				Chart: &syncv2.HelmChartTemplate{Spec: syncv2.HelmChartTemplateSpec{
					Chart: "hello", Version: "1.x", SourceRef: syncv2.HelmChartSourceReference{Kind: "HelmRepository", Name: "charts"},
				}},
				KubeConfig: ref("remote-kubeconfig"),
			}},
		)
		inprocess.Start(t, cp.Config, local, testr.NewWithOptions(t, testr.Options{Verbosity: 0}))

		for _, tc := range []struct {
			obj    status.Object
			reason string
			says   string
		}{
			{&syncv1.Kustomization{ObjectMeta: metav1.ObjectMeta{Name: "missing"}}, syncv1.ReasonFailed, "spec.kubeConfig.secretRef: read Secret remote-bad/remote-kubeconfig"},
			{&syncv1.Kustomization{ObjectMeta: metav1.ObjectMeta{Name: "no-value"}}, syncv1.ReasonFailed, `spec.kubeConfig.secretRef: Secret remote-bad/wrong-key has no "value" or "value.yaml" key`},
			{&syncv1.Kustomization{ObjectMeta: metav1.ObjectMeta{Name: "garbled"}}, syncv1.ReasonFailed, "spec.kubeConfig.secretRef: the Secret's entry is not a kubeconfig"},
			{&syncv2.HelmRelease{ObjectMeta: metav1.ObjectMeta{Name: "missing-helm"}}, syncv2.ReasonRESTClientError, "spec.kubeConfig.secretRef: read Secret remote-bad/remote-kubeconfig"},
		} {
			waitFailure(t, local, tc.obj, tc.reason, tc.says)
			warnedNaming(t, local, tc.obj, tc.says)
		}
		// Nothing reached either cluster, and no message quotes the
		// Secret.
		mustNotExist(t, cp.Client, local, "web-settings", &corev1.ConfigMap{})
		mustNotExist(t, remote.Client, local, "web-settings", &corev1.ConfigMap{})
		mustNotExist(t, cp.Client, local, "hello", &corev1.ConfigMap{})
		if n := helmRecords(t, cp.Client, local, "missing-helm"); n != 0 {
			t.Fatalf("%d Helm records on this cluster", n)
		}
		var events eventsv1.EventList
		if err := cp.Client.List(t.Context(), &events, client.InNamespace(local)); err != nil {
			t.Fatal(err)
		}
		for _, e := range events.Items {
			if strings.Contains(e.Note, leaked) {
				t.Fatalf("an Event quotes the Secret: %s", e.Note)
			}
		}
		garbled := &syncv1.Kustomization{}
		if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: local, Name: "garbled"}, garbled); err != nil {
			t.Fatal(err)
		}
		for _, c := range garbled.Status.Conditions {
			if strings.Contains(c.Message, leaked) {
				t.Fatalf("condition %s quotes the Secret: %s", c.Type, c.Message)
			}
		}

		// The Secret, once created, is used at once: its change wakes the
		// Kustomization, whose interval is an hour.
		create(t, cp.Client, kubeconfigSecret(local, "remote-kubeconfig", "value"))
		waitStatus(t, &syncv1.Kustomization{}, client.ObjectKey{Namespace: local, Name: "missing"}, "the Secret picked up", func(ks *syncv1.Kustomization) bool {
			return ks.Status.LastAppliedRevision == "main@sha1:"+first && status.Ready(ks)
		})
		mustExist(t, remote.Client, local, "web-settings", &corev1.ConfigMap{})
		mustNotExist(t, cp.Client, local, "web-settings", &corev1.ConfigMap{})
	})

	t.Run("serviceAccountName is impersonated on the remote cluster", func(t *testing.T) {
		const local, target = "remote-tenant", "tenant-apps"
		const user = "system:serviceaccount:" + local + ":tenant"
		s := gitserver.New(t)
		first := s.Commit(map[string]string{"app/settings.yaml": remoteSettings})
		secret, repo := s.Source(local, "repo", time.Second)
		// ConfigMaps are all the commit and the chart hold, and Helm keeps
		// its records in Secrets. (The built-in admin role is empty here:
		// no controller aggregates it.)
		admin := func(namespace string) []client.Object {
			return []client.Object{
				&rbacv1.Role{
					ObjectMeta: metav1.ObjectMeta{Name: "tenant", Namespace: namespace},
					Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps", "secrets"}, Verbs: []string{"*"}}},
				},
				&rbacv1.RoleBinding{
					ObjectMeta: metav1.ObjectMeta{Name: "tenant", Namespace: namespace},
					RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "tenant"},
					Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
				},
			}
		}
		chartRepo := helmrepo.NewHTTP(t)
		chartRepo.Add(t, helmrepo.NewChart("hello", "1.0.0", map[string]string{"settings.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: hello}\n"}, map[string]any{}))
		// Here the account may do all it needs, so an apply or a release
		// impersonating it here would succeed; on the remote cluster it
		// may do nothing yet.
		create(t, remote.Client, namespace(target), namespace(local))
		create(t, cp.Client, append(append([]client.Object{namespace(local), namespace(target)}, admin(target)...), admin(local)...)...)
		hr := &syncv2.HelmRelease{ObjectMeta: metav1.ObjectMeta{Name: "tenant-helm", Namespace: local}, Spec: syncv2.HelmReleaseSpec{
			Interval: metav1.Duration{Duration: time.Hour},
			Chart: &syncv2.HelmChartTemplate{Spec: syncv2.HelmChartTemplateSpec{
				Chart: "hello", Version: "1.x", SourceRef: syncv2.HelmChartSourceReference{Kind: "HelmRepository", Name: "charts"},
			}},
			TargetNamespace: target, ServiceAccountName: "tenant", KubeConfig: ref("remote-kubeconfig"),
		}}
		create(t, cp.Client,
			&sourcev1.HelmRepository{ObjectMeta: metav1.ObjectMeta{Name: "charts", Namespace: local}, Spec: sourcev1.HelmRepositorySpec{URL: chartRepo.URL, Interval: metav1.Duration{Duration: time.Hour}}},
			hr,
			&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "tenant", Namespace: local}},
			secret, repo, kubeconfigSecret(local, "remote-kubeconfig", "value"),
			&syncv1.Kustomization{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: local}, Spec: syncv1.KustomizationSpec{
				SourceRef: syncv1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: "repo"},
				Path:      "app", Prune: true, TargetNamespace: target,
				Interval: metav1.Duration{Duration: time.Hour}, RetryInterval: &metav1.Duration{Duration: time.Second},
				ServiceAccountName: "tenant", KubeConfig: ref("remote-kubeconfig"),
			}},
		)
		inprocess.Start(t, cp.Config, local, testr.NewWithOptions(t, testr.Options{Verbosity: 0}))

		waitFailure(t, local, &syncv1.Kustomization{ObjectMeta: metav1.ObjectMeta{Name: "app"}}, syncv1.ReasonFailed, "forbidden", `User "`+user+`"`)
		// Helm's storage is read as the account, on the remote cluster.
		waitFailure(t, local, &syncv2.HelmRelease{ObjectMeta: metav1.ObjectMeta{Name: "tenant-helm"}}, syncv2.ReasonInitFailed, "forbidden", `User "`+user+`" cannot list resource "secrets"`)
		mustNotExist(t, cp.Client, target, "web-settings", &corev1.ConfigMap{})
		mustNotExist(t, remote.Client, target, "web-settings", &corev1.ConfigMap{})
		mustNotExist(t, cp.Client, target, "hello", &corev1.ConfigMap{})
		if n := helmRecords(t, cp.Client, local, target+"-tenant-helm"); n != 0 {
			t.Fatalf("%d Helm records on this cluster", n)
		}

		// Granted on the remote cluster, the account applies and releases
		// there.
		create(t, remote.Client, append(admin(target), admin(local)...)...)
		waitStatus(t, &syncv1.Kustomization{}, client.ObjectKey{Namespace: local, Name: "app"}, "applied as the account once granted", func(ks *syncv1.Kustomization) bool {
			return ks.Status.LastAppliedRevision == "main@sha1:"+first && status.Ready(ks)
		})
		annotateReconcile(t, hr, "granted")
		waitStatus(t, &syncv2.HelmRelease{}, client.ObjectKeyFromObject(hr), "released as the account once granted", func(hr *syncv2.HelmRelease) bool {
			return hr.Status.LastHandledReconcileAt == "granted" && helmReady(hr) == metav1.ConditionTrue
		})
		mustExist(t, remote.Client, target, "web-settings", &corev1.ConfigMap{})
		mustExist(t, remote.Client, target, "hello", &corev1.ConfigMap{})
		if n := helmRecords(t, remote.Client, local, target+"-tenant-helm"); n != 1 {
			t.Fatalf("%d Helm records on the remote cluster, want 1", n)
		}
		mustNotExist(t, cp.Client, target, "web-settings", &corev1.ConfigMap{})
		mustNotExist(t, cp.Client, target, "hello", &corev1.ConfigMap{})
	})
}

func greetingValues(greeting string) *apiextensionsv1.JSON {
	return &apiextensionsv1.JSON{Raw: fmt.Appendf(nil, `{"greeting": %q}`, greeting)}
}

func greeting(t *testing.T, c client.Client, namespace string) string {
	t.Helper()
	cm := &corev1.ConfigMap{}
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: namespace, Name: "hello"}, cm); err != nil {
		t.Fatal(err)
	}
	return cm.Data["greeting"]
}

// helmRecords counts the release Secrets Helm keeps of release in
// namespace.
func helmRecords(t *testing.T, c client.Client, namespace, release string) int {
	t.Helper()
	var list corev1.SecretList
	if err := c.List(context.Background(), &list, client.InNamespace(namespace), client.MatchingLabels{"owner": "helm", "name": release}); err != nil {
		t.Fatal(err)
	}
	return len(list.Items)
}

func mustExist(t *testing.T, c client.Client, namespace, name string, obj client.Object) {
	t.Helper()
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: namespace, Name: name}, obj); err != nil {
		t.Fatalf("%T %s/%s: %v", obj, namespace, name, err)
	}
}

func mustNotExist(t *testing.T, c client.Client, namespace, name string, obj client.Object) {
	t.Helper()
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: namespace, Name: name}, obj); !apierrors.IsNotFound(err) {
		t.Fatalf("%T %s/%s should not exist: %v", obj, namespace, name, err)
	}
}

// warnedNaming waits for a Warning Event on obj whose note holds says.
func warnedNaming(t *testing.T, namespace string, obj client.Object, says string) {
	t.Helper()
	controlplane.Eventually(t, 30*time.Second, "a Warning Event naming "+says, func(ctx context.Context) (bool, string) {
		var list eventsv1.EventList
		if err := cp.Client.List(ctx, &list, client.InNamespace(namespace)); err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, e := range list.Items {
			if e.Regarding.Name == obj.GetName() && e.Type == corev1.EventTypeWarning {
				if strings.Contains(e.Note, says) {
					return true, ""
				}
				seen = append(seen, e.Note)
			}
		}
		return false, fmt.Sprintf("warnings %q", seen)
	})
}

// waitStatus waits a minute for cond on the object at key, and says what
// its conditions were when it gives up.
func waitStatus[T status.Object](t *testing.T, obj T, key client.ObjectKey, what string, cond func(T) bool) T {
	t.Helper()
	controlplane.Eventually(t, time.Minute, what, func(context.Context) (bool, string) {
		// The test's context: the poll's own expires with the last look,
		// whose error would hide the conditions.
		if err := cp.Client.Get(t.Context(), key, obj); err != nil {
			return false, err.Error()
		}
		return cond(obj), fmt.Sprintf("%T status %+v", obj, obj.GetConditions())
	})
	return obj
}

// TestRemoteKubeConfigConfigMapRefIsRefusedByTheCRD: Flux's configMapRef
// needs a cloud or workload identity, which Sluice does not support.
func TestRemoteKubeConfigConfigMapRefIsRefusedByTheCRD(t *testing.T) {
	const local = "remote-refused"
	if err := cp.Client.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: local}}); err != nil {
		t.Fatal(err)
	}
	byConfigMap := &syncv1.KubeConfigReference{ConfigMapRef: &syncv1.LocalObjectReference{Name: "cluster"}}
	for _, tc := range []struct {
		name string
		obj  client.Object
		says string
	}{
		{"a Kustomization with configMapRef", &syncv1.Kustomization{ObjectMeta: metav1.ObjectMeta{Name: "by-configmap", Namespace: local}, Spec: syncv1.KustomizationSpec{
			SourceRef: syncv1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: "repo"}, Interval: metav1.Duration{Duration: time.Hour}, KubeConfig: byConfigMap,
		}}, "spec.kubeConfig.configMapRef is not supported"},
		{"a HelmRelease with configMapRef", &syncv2.HelmRelease{ObjectMeta: metav1.ObjectMeta{Name: "by-configmap", Namespace: local}, Spec: syncv2.HelmReleaseSpec{
			Interval: metav1.Duration{Duration: time.Hour}, ChartRef: &syncv2.ChartReference{Kind: "HelmChart", Name: "chart"}, KubeConfig: byConfigMap,
		}}, "spec.kubeConfig.configMapRef is not supported"},
		{"a Kustomization with an empty kubeConfig", &syncv1.Kustomization{ObjectMeta: metav1.ObjectMeta{Name: "empty", Namespace: local}, Spec: syncv1.KustomizationSpec{
			SourceRef: syncv1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: "repo"}, Interval: metav1.Duration{Duration: time.Hour}, KubeConfig: &syncv1.KubeConfigReference{},
		}}, "spec.kubeConfig.secretRef is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := cp.Client.Create(t.Context(), tc.obj)
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.says) || !strings.Contains(err.Error(), "spec.kubeConfig") {
				t.Fatalf("got %v, want the CRD to refuse it saying %q", err, tc.says)
			}
		})
	}
}
