package source

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	"sluice.dev/sluice/pkg/source/oci"
	"sluice.dev/sluice/test/imageregistry"
)

// pushArtifact packs a folder with one manifest into an artifact and
// pushes it to url, with the registry's credentials.
func pushArtifact(t *testing.T, reg *imageregistry.Registry, url string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app.yaml"), []byte("kind: ConfigMap\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	layer, err := oci.Pack(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	digest, err := oci.Push(t.Context(), oci.Remote{Auth: reg.Auth}, url, layer, oci.Metadata{Source: "https://git.example.com/app", Revision: "main@sha1:" + strings.Repeat("1", 40)})
	if err != nil {
		t.Fatal(err)
	}
	return digest
}

func TestAnOCIRepositoryReachesItsRegistryAsTheSpecSays(t *testing.T) {
	t.Parallel()
	const ns = "oci-ways"
	reg := imageregistry.New(t, imageregistry.WithBasicAuth())
	url := "oci://" + reg.Image("manifests/app")
	digest := pushArtifact(t, reg, url+":1.0.0")
	proxy, forwarded := forwardProxy(t, "sluice", "proxy-pass")
	create(t, ns,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "pull", Namespace: ns}, Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{corev1.DockerConfigJsonKey: reg.DockerConfigJSON()}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "other-registry", Namespace: ns}, Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{"elsewhere.example.com":{"username":"u","password":"p"}}}`)}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "puller", Namespace: ns}, ImagePullSecrets: []corev1.LocalObjectReference{{Name: "other-registry"}, {Name: "pull"}}},
		secret(ns, "proxy", map[string]string{"address": proxy, "username": "sluice", "password": "proxy-pass"}),
		secret(ns, "creds", map[string]string{"username": imageregistry.Username, "password": imageregistry.Password}),
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "pull-only", Namespace: ns}, ImagePullSecrets: []corev1.LocalObjectReference{{Name: "pull"}}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "legacy-pull", Namespace: ns}, Type: corev1.SecretTypeDockercfg, Data: map[string][]byte{corev1.DockerConfigKey: dockercfg(t, reg.DockerConfigJSON())}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "legacy-puller", Namespace: ns}, ImagePullSecrets: []corev1.LocalObjectReference{{Name: "legacy-pull"}}},
	)
	ignore := "*.md\n"
	tests := []struct {
		name  string
		spec  func(*sourcev1.OCIRepositorySpec)
		check func(t *testing.T, got *sourcev1.OCIRepository)
	}{
		{"serviceAccountName's image pull secret for the registry gives the credentials", func(s *sourcev1.OCIRepositorySpec) {
			s.ServiceAccountName = "puller"
		}, nil},
		{"secretRef and serviceAccountName's image pull secrets are merged, as Flux merges them", func(s *sourcev1.OCIRepositorySpec) {
			s.SecretRef = &sourcev1.LocalObjectReference{Name: "other-registry"}
			s.ServiceAccountName = "pull-only"
		}, nil},
		{"an image pull secret in the legacy .dockercfg format gives the credentials", func(s *sourcev1.OCIRepositorySpec) {
			s.ServiceAccountName = "legacy-puller"
		}, nil},
		{"proxySecretRef's address and credentials carry the requests", func(s *sourcev1.OCIRepositorySpec) {
			s.SecretRef = &sourcev1.LocalObjectReference{Name: "creds"}
			s.ProxySecretRef = &sourcev1.LocalObjectReference{Name: "proxy"}
		}, func(t *testing.T, _ *sourcev1.OCIRepository) {
			if forwarded.Load() == 0 {
				t.Fatal("the proxy forwarded nothing")
			}
		}},
		{"the status says which ignore rules and layer selector made the artifact", func(s *sourcev1.OCIRepositorySpec) {
			s.SecretRef = &sourcev1.LocalObjectReference{Name: "creds"}
			s.Ignore = &ignore
			s.LayerSelector = &sourcev1.OCILayerSelector{MediaType: "application/vnd.cncf.flux.content.v1.tar+gzip", Operation: "extract"}
		}, func(t *testing.T, got *sourcev1.OCIRepository) {
			if got.Status.ObservedIgnore == nil || *got.Status.ObservedIgnore != ignore || got.Status.ObservedLayerSelector == nil || got.Status.ObservedLayerSelector.Operation != "extract" {
				t.Fatalf("observedIgnore %v, observedLayerSelector %+v", got.Status.ObservedIgnore, got.Status.ObservedLayerSelector)
			}
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := &sourcev1.OCIRepository{ObjectMeta: metav1.ObjectMeta{Name: "app-" + string(rune('a'+i)), Namespace: ns}, Spec: sourcev1.OCIRepositorySpec{
				URL: url, Reference: &sourcev1.OCIRepositoryRef{Tag: "1.0.0"}, Interval: metav1.Duration{Duration: time.Minute},
			}}
			tt.spec(&repo.Spec)
			if err := cp.Client.Create(t.Context(), repo); err != nil {
				t.Fatal(err)
			}
			r := &OCIRepositoryReconciler{Client: cp.Client, Events: &eventLog{}, Store: NewStore()}
			got := reconcileOCI(t, r, repo)
			if got.Status.Artifact == nil || got.Status.Artifact.Revision != "1.0.0@"+digest {
				t.Fatalf("Ready is %s, artifact %+v", readyOf(got.Status.Conditions), got.Status.Artifact)
			}
			if tt.check != nil {
				tt.check(t, got)
			}
		})
	}
}

// dockercfg is a .dockerconfigjson in the legacy .dockercfg format: the
// auths map alone.
func dockercfg(t *testing.T, dockerConfigJSON []byte) []byte {
	t.Helper()
	var cfg struct {
		Auths json.RawMessage `json:"auths"`
	}
	if err := json.Unmarshal(dockerConfigJSON, &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg.Auths
}

func TestAnOCIRepositoryWhoseCredentialsCannotBeReadSaysWhy(t *testing.T) {
	t.Parallel()
	const ns = "oci-creds-bad"
	reg := imageregistry.New(t, imageregistry.WithBasicAuth())
	url := "oci://" + reg.Image("manifests/app")
	pushArtifact(t, reg, url+":1.0.0")
	create(t, ns,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "pull", Namespace: ns}, Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{corev1.DockerConfigJsonKey: reg.DockerConfigJSON()}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "broken", Namespace: ns}, Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte("auths: {}")}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "broken-first", Namespace: ns}, ImagePullSecrets: []corev1.LocalObjectReference{{Name: "broken"}, {Name: "pull"}}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "no-secrets", Namespace: ns}},
	)
	tests := []struct {
		name string
		sa   string
		says []string
	}{
		{"a malformed image pull secret is not skipped", "broken-first", []string{"spec.serviceAccountName: ServiceAccount broken-first: imagePullSecrets[0]: Secret broken: .dockerconfigjson is not a docker config"}},
		{"a ServiceAccount that does not exist", "nobody", []string{"spec.serviceAccountName: ServiceAccount nobody", "not found"}},
		{"a ServiceAccount without pull secrets, on a registry that asks for credentials", "no-secrets", []string{"no imagePullSecret of spec.serviceAccountName (ServiceAccount no-secrets) has any"}},
	}
	for i, tt := range tests {
		t.Run(tt.name+" is AuthenticationFailed with a Warning Event", func(t *testing.T) {
			repo := &sourcev1.OCIRepository{ObjectMeta: metav1.ObjectMeta{Name: "app-" + string(rune('a'+i)), Namespace: ns}, Spec: sourcev1.OCIRepositorySpec{
				URL: url, Reference: &sourcev1.OCIRepositoryRef{Tag: "1.0.0"}, Interval: metav1.Duration{Duration: time.Minute}, ServiceAccountName: tt.sa,
			}}
			if err := cp.Client.Create(t.Context(), repo); err != nil {
				t.Fatal(err)
			}
			ev := &eventLog{}
			r := &OCIRepositoryReconciler{Client: cp.Client, Events: ev, Store: NewStore()}
			got := reconcileOCI(t, r, repo)
			ready := meta.FindStatusCondition(got.Status.Conditions, "Ready")
			if ready == nil || ready.Status != metav1.ConditionFalse || ready.Reason != sourcev1.ReasonAuthenticationFailed || got.Status.Artifact != nil {
				t.Fatalf("Ready is %s, artifact %+v; want AuthenticationFailed and none", readyOf(got.Status.Conditions), got.Status.Artifact)
			}
			for _, says := range tt.says {
				if !strings.Contains(ready.Message, says) {
					t.Fatalf("Ready message %q does not say %q", ready.Message, says)
				}
			}
			if events := ev.all(); len(events) != 1 || !strings.HasPrefix(events[0], "Warning "+sourcev1.ReasonAuthenticationFailed+": ") || !strings.Contains(events[0], tt.says[0]) {
				t.Fatalf("events %q, want one Warning naming %q", events, tt.says[0])
			}
		})
	}
}

// reconcileOCI runs one reconcile of repo and reads it back.
func reconcileOCI(t *testing.T, r *OCIRepositoryReconciler, repo *sourcev1.OCIRepository) *sourcev1.OCIRepository {
	t.Helper()
	if _, err := r.Reconcile(t.Context(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(repo)}); err != nil {
		t.Fatal(err)
	}
	got := &sourcev1.OCIRepository{}
	if err := cp.Client.Get(t.Context(), client.ObjectKeyFromObject(repo), got); err != nil {
		t.Fatal(err)
	}
	return got
}
