package gitops

import (
	"crypto/tls"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	syncv1 "sluice.dev/sluice/api/sync/v1"
	syncv2 "sluice.dev/sluice/api/sync/v2"
	"sluice.dev/sluice/pkg/source/oci"
	"sluice.dev/sluice/pkg/sync/status"
	"sluice.dev/sluice/test/filetree"
	"sluice.dev/sluice/test/imageregistry"
	"sluice.dev/sluice/test/inprocess"
)

// trustingTLS trusts the PEM certificate of a test registry.
func trustingTLS(t *testing.T, caPEM []byte) *tls.Config {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("the registry's certificate is not PEM")
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// ociRepository is an OCIRepository in namespace ocibad, checked hourly,
// with the given changes.
func ociRepository(name, url string, change func(*sourcev1.OCIRepositorySpec)) *sourcev1.OCIRepository {
	r := &sourcev1.OCIRepository{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ocibad"}, Spec: sourcev1.OCIRepositorySpec{
		URL: url, Reference: &sourcev1.OCIRepositoryRef{Tag: "1.0.0"}, Interval: metav1.Duration{Duration: time.Hour},
		Timeout: &metav1.Duration{Duration: 10 * time.Second},
	}}
	if change != nil {
		change(&r.Spec)
	}
	return r
}

// TestBadOCIInputIsNamedWithAWarning gives OCIRepositories, and a
// HelmRelease, input they cannot use: each gets Ready=False with a named
// reason, a message naming what to fix, and a Warning Event; the good
// ways to give credentials and a CA work.
func TestBadOCIInputIsNamedWithAWarning(t *testing.T) {
	const namespace = "ocibad"
	open, locked, private := imageregistry.New(t), imageregistry.New(t, imageregistry.WithBasicAuth()), imageregistry.New(t, imageregistry.WithTLS())
	for _, r := range []*imageregistry.Registry{open, locked, private} {
		layer, err := oci.Pack(filetree.Write(t, map[string]string{"settings.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: s}\n"}), nil)
		if err != nil {
			t.Fatal(err)
		}
		remote := oci.Remote{}
		if r.Auth != nil {
			remote.Auth = r.Auth
		}
		if r.CAPEM != nil {
			remote.TLS = trustingTLS(t, r.CAPEM)
		}
		if _, err := oci.Push(t.Context(), remote, "oci://"+r.Image("app")+":1.0.0", layer, oci.Metadata{Source: "s", Revision: "r"}); err != nil {
			t.Fatal(err)
		}
	}
	secret := func(name string, typ corev1.SecretType, data map[string][]byte) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}, Type: typ, Data: data}
	}
	withSecret := func(name string) func(*sourcev1.OCIRepositorySpec) {
		return func(s *sourcev1.OCIRepositorySpec) { s.SecretRef = &sourcev1.LocalObjectReference{Name: name} }
	}
	url := func(r *imageregistry.Registry) string { return "oci://" + r.Image("app") }
	for _, o := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}},
		secret("right-docker", corev1.SecretTypeDockerConfigJson, map[string][]byte{corev1.DockerConfigJsonKey: locked.DockerConfigJSON()}),
		secret("right-basic", corev1.SecretTypeOpaque, map[string][]byte{"username": []byte(imageregistry.Username), "password": []byte(imageregistry.Password)}),
		secret("wrong-creds", corev1.SecretTypeDockerConfigJson, map[string][]byte{corev1.DockerConfigJsonKey: locked.DockerConfigJSON(imageregistry.Username, "wrong")}),
		secret("no-creds", corev1.SecretTypeOpaque, map[string][]byte{"token": []byte("t")}),
		secret("registry-ca", corev1.SecretTypeOpaque, map[string][]byte{"ca.crt": private.CAPEM}),
		ociRepository("docker-creds", url(locked), withSecret("right-docker")),
		ociRepository("basic-creds", url(locked), withSecret("right-basic")),
		ociRepository("tls", url(private), func(s *sourcev1.OCIRepositorySpec) {
			s.CertSecretRef = &sourcev1.LocalObjectReference{Name: "registry-ca"}
		}),
		ociRepository("missing-tag", url(open), func(s *sourcev1.OCIRepositorySpec) { s.Reference.Tag = "9.9.9" }),
		ociRepository("no-match", url(open), func(s *sourcev1.OCIRepositorySpec) { s.Reference = &sourcev1.OCIRepositoryRef{SemVer: "^5.0"} }),
		ociRepository("unknown-layer", url(open), func(s *sourcev1.OCIRepositorySpec) {
			s.LayerSelector = &sourcev1.OCILayerSelector{MediaType: "application/vnd.example.unknown.v1.tar+gzip"}
		}),
		ociRepository("missing-secret", url(locked), withSecret("nope")),
		ociRepository("wrong-creds", url(locked), withSecret("wrong-creds")),
		ociRepository("no-creds", url(locked), withSecret("no-creds")),
		ociRepository("anonymous", url(locked), nil),
		ociRepository("manifests", url(open), nil),
		// Manifests are no chart: a HelmRelease of them says so.
		&syncv2.HelmRelease{ObjectMeta: metav1.ObjectMeta{Name: "not-a-chart", Namespace: namespace}, Spec: syncv2.HelmReleaseSpec{
			ChartRef: &syncv2.ChartReference{Kind: "OCIRepository", Name: "manifests"},
			Interval: metav1.Duration{Duration: time.Hour},
		}},
	} {
		if err := cp.Client.Create(t.Context(), o); err != nil {
			t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
	inprocess.Start(t, cp.Config, namespace, testr.NewWithOptions(t, testr.Options{Verbosity: 0}))

	for _, good := range []struct{ name, repository string }{
		{"a dockerconfigjson Secret's credentials pull", "docker-creds"},
		{"a Secret's username and password pull", "basic-creds"},
		{"certSecretRef's ca.crt makes a private CA trusted", "tls"},
	} {
		t.Run(good.name, func(t *testing.T) {
			waitObject(t, time.Minute, &sourcev1.OCIRepository{}, client.ObjectKey{Namespace: namespace, Name: good.repository}, "a fetch of "+good.repository, func(r *sourcev1.OCIRepository) bool {
				return status.Ready(r) && r.Status.Artifact != nil && strings.HasPrefix(r.Status.Artifact.Revision, "1.0.0@sha256:")
			})
		})
	}
	tests := []struct {
		name   string
		obj    status.Object
		reason string
		says   []string
	}{
		{"a tag the registry does not have", &sourcev1.OCIRepository{ObjectMeta: metav1.ObjectMeta{Name: "missing-tag"}}, sourcev1.ReasonOCIPullFailed, []string{"app:9.9.9", "not found"}},
		{"a semver range no tag matches", &sourcev1.OCIRepository{ObjectMeta: metav1.ObjectMeta{Name: "no-match"}}, sourcev1.ReasonReadOperationFailed, []string{"spec.ref", `semver "^5.0"`}},
		{"a layer media type the artifact lacks", &sourcev1.OCIRepository{ObjectMeta: metav1.ObjectMeta{Name: "unknown-layer"}}, sourcev1.ReasonOCILayerOperationFailed,
			[]string{"spec.layerSelector", "application/vnd.example.unknown.v1.tar+gzip", oci.ContentMediaType}},
		{"a secretRef naming no Secret", &sourcev1.OCIRepository{ObjectMeta: metav1.ObjectMeta{Name: "missing-secret"}}, sourcev1.ReasonAuthenticationFailed, []string{"spec.secretRef", "Secret nope"}},
		{"a secretRef whose credentials are refused", &sourcev1.OCIRepository{ObjectMeta: metav1.ObjectMeta{Name: "wrong-creds"}}, sourcev1.ReasonAuthenticationFailed, []string{"spec.secretRef (Secret wrong-creds)"}},
		{"a secretRef with no credentials in it", &sourcev1.OCIRepository{ObjectMeta: metav1.ObjectMeta{Name: "no-creds"}}, sourcev1.ReasonAuthenticationFailed, []string{"Secret no-creds", "username and password"}},
		{"a registry that wants credentials none were given for", &sourcev1.OCIRepository{ObjectMeta: metav1.ObjectMeta{Name: "anonymous"}}, sourcev1.ReasonAuthenticationFailed, []string{"spec.secretRef is not set"}},
		{"a chartRef to an artifact that is no chart", &syncv2.HelmRelease{ObjectMeta: metav1.ObjectMeta{Name: "not-a-chart"}}, syncv1.ReasonArtifactFailed, []string{"OCIRepository ocibad/manifests", "not a Helm chart"}},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is a named condition and a Warning Event", func(t *testing.T) {
			waitFailure(t, namespace, tt.obj, tt.reason, tt.says...)
		})
	}
}

func TestTheAPIServerRefusesOCISpecsThatCannotWork(t *testing.T) {
	const namespace = "ocicel"
	if err := cp.Client.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}); err != nil {
		t.Fatal(err)
	}
	repo := func(name string, change func(*sourcev1.OCIRepositorySpec)) *sourcev1.OCIRepository {
		r := ociRepository(name, "oci://ghcr.io/org/app", change)
		r.Namespace = namespace
		return r
	}
	tests := []struct {
		name string
		obj  client.Object
		err  string
	}{
		{"a URL that is not oci://", repo("https", func(s *sourcev1.OCIRepositorySpec) { s.URL = "https://ghcr.io/org/app" }), "spec.url must start with oci://"},
		{"a URL with a tag", repo("tag", func(s *sourcev1.OCIRepositorySpec) { s.URL = "oci://ghcr.io/org/app:1.0.0" }), "spec.url must not have a tag or digest: set spec.ref"},
		{"a ref that selects nothing", repo("empty-ref", func(s *sourcev1.OCIRepositorySpec) { s.Reference = &sourcev1.OCIRepositoryRef{} }), "spec.ref must set one of tag, semver and digest"},
		{"a semver filter without a range", repo("filter", func(s *sourcev1.OCIRepositorySpec) { s.Reference.SemverFilter = "-prod$" }), "spec.ref.semverFilter needs spec.ref.semver"},
		{"a digest that is not sha256:<hex>", repo("digest", func(s *sourcev1.OCIRepositorySpec) { s.Reference = &sourcev1.OCIRepositoryRef{Digest: "latest"} }), "spec.ref.digest"},
		{"a layer operation other than extract or copy", repo("move", func(s *sourcev1.OCIRepositorySpec) {
			s.LayerSelector = &sourcev1.OCILayerSelector{Operation: "move"}
		}), `spec.layerSelector.operation: Unsupported value: "move"`},
		{"a Kustomization of a kind of source Sluice has not", &syncv1.Kustomization{ObjectMeta: metav1.ObjectMeta{Name: "external", Namespace: namespace}, Spec: syncv1.KustomizationSpec{
			SourceRef: syncv1.CrossNamespaceSourceReference{Kind: "ExternalArtifact", Name: "b"}, Interval: metav1.Duration{Duration: time.Minute},
		}}, `spec.sourceRef.kind: Unsupported value: "ExternalArtifact"`},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is refused, naming the field", func(t *testing.T) {
			err := cp.Client.Create(t.Context(), tt.obj)
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("got %v, want an error with %q", err, tt.err)
			}
		})
	}
	for _, ok := range []client.Object{
		repo("flux-style", func(s *sourcev1.OCIRepositorySpec) {
			s.Reference = &sourcev1.OCIRepositoryRef{SemVer: ">=1.0.0", SemverFilter: "-prod$"}
			s.LayerSelector = &sourcev1.OCILayerSelector{MediaType: oci.HelmChartMediaType, Operation: sourcev1.OCILayerCopy}
		}),
		&syncv2.HelmRelease{ObjectMeta: metav1.ObjectMeta{Name: "chart-ref", Namespace: namespace}, Spec: syncv2.HelmReleaseSpec{
			ChartRef: &syncv2.ChartReference{Kind: "OCIRepository", Name: "podinfo"}, Interval: metav1.Duration{Duration: time.Minute},
		}},
	} {
		if err := cp.Client.Create(t.Context(), ok, client.DryRunAll); err != nil {
			t.Errorf("a good %T is refused: %v", ok, err)
		}
	}
}
