package source

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	chart "helm.sh/helm/v4/pkg/chart/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	"sluice.dev/sluice/pkg/source/helm"
	"sluice.dev/sluice/test/helmrepo"
)

// create creates a namespace and the objects, in order.
func create(t *testing.T, ns string, objs ...client.Object) {
	t.Helper()
	for _, o := range append([]client.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}}, objs...) {
		if err := cp.Client.Create(t.Context(), o); err != nil {
			t.Fatal(err)
		}
	}
}

// appChart is a chart whose template and values say which version it is.
func appChart(name, version string) *chart.Chart {
	return helmrepo.NewChart(name, version,
		map[string]string{"configmap.yaml": "kind: ConfigMap\nversion: " + version + "\n"},
		map[string]any{"image": "app:" + version})
}

// helmRepository is a HelmRepository of url in ns, named app, checked
// every minute.
func helmRepository(ns, url string) *sourcev1.HelmRepository {
	return &sourcev1.HelmRepository{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns},
		Spec:       sourcev1.HelmRepositorySpec{URL: url, Interval: metav1.Duration{Duration: time.Minute}},
	}
}

func secret(ns, name string, data map[string]string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, StringData: data}
}

func readyOf(conditions []metav1.Condition) string {
	if c := meta.FindStatusCondition(conditions, "Ready"); c != nil {
		return fmt.Sprintf("%s %s: %s", c.Status, c.Reason, c.Message)
	}
	return "no Ready condition"
}

func reconcileHelmRepository(t *testing.T, r *HelmRepositoryReconciler, repo *sourcev1.HelmRepository) (*sourcev1.HelmRepository, ctrl.Result) {
	t.Helper()
	res, err := r.Reconcile(t.Context(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(repo)})
	if err != nil {
		t.Fatal(err)
	}
	got := &sourcev1.HelmRepository{}
	if err := cp.Client.Get(t.Context(), client.ObjectKeyFromObject(repo), got); err != nil {
		t.Fatal(err)
	}
	return got, res
}

// indexDigest downloads a repository's index.yaml as a client with its
// credentials and CA would, and returns the digest of what was served.
func indexDigest(t *testing.T, r *helmrepo.HTTPRepo) string {
	t.Helper()
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if r.CAPEM != nil {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(r.CAPEM)
		transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, r.URL+"/index.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(helmrepo.Username, helmrepo.Password)
	resp, err := (&http.Client{Transport: transport}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func TestAHelmRepositoryIsReadyWithItsIndexOrSaysWhyNot(t *testing.T) {
	t.Parallel()
	private := helmrepo.NewHTTP(t, helmrepo.WithBasicAuth())
	private.Add(t, appChart("app", "1.0.0"))
	private.Add(t, appChart("other", "1.0.0"))
	secure := helmrepo.NewHTTP(t, helmrepo.WithTLS())
	secure.Add(t, appChart("app", "1.0.0"))
	registry := helmrepo.NewOCI(t)
	registry.Push(t, appChart("app", "1.0.0"))
	auth := func(password string) map[string]string {
		return map[string]string{"username": helmrepo.Username, "password": password}
	}
	tests := []struct {
		name    string
		ns      string
		url     string
		oci     bool
		secret  map[string]string
		certs   map[string]string
		ready   metav1.ConditionStatus
		reason  string
		message string
		// index is the repository whose index digest is the artifact's
		// revision; nil for no artifact.
		index *helmrepo.HTTPRepo
		// noInterval leaves spec.interval unset.
		noInterval bool
	}{
		{
			name: "a repository behind basic auth is ready with the digest of its index", ns: "helmrepo-basic-auth",
			url: private.URL, secret: auth(helmrepo.Password),
			ready: metav1.ConditionTrue, reason: sourcev1.ReasonSucceeded, message: "(2 charts)", index: private,
		},
		{
			name: "a wrong password is an authentication failure naming the Secret", ns: "helmrepo-wrong-password",
			url: private.URL, secret: auth("nope"),
			ready: metav1.ConditionFalse, reason: sourcev1.ReasonAuthenticationFailed, message: "spec.secretRef (Secret helm)",
		},
		{
			name: "no credentials is an authentication failure saying secretRef is not set", ns: "helmrepo-no-credentials",
			url:   private.URL,
			ready: metav1.ConditionFalse, reason: sourcev1.ReasonAuthenticationFailed, message: "spec.secretRef is not set",
		},
		{
			name: "a repository over TLS is ready with the CA of spec.certSecretRef", ns: "helmrepo-tls",
			url: secure.URL, certs: map[string]string{"ca.crt": string(secure.CAPEM)},
			ready: metav1.ConditionTrue, reason: sourcev1.ReasonSucceeded, message: "(1 chart)", index: secure,
		},
		{
			name: "a repository over TLS is ready with the CA in secretRef's deprecated caFile", ns: "helmrepo-tls-legacy",
			url: secure.URL, secret: map[string]string{"caFile": string(secure.CAPEM)},
			ready: metav1.ConditionTrue, reason: sourcev1.ReasonSucceeded, message: "(1 chart)", index: secure,
		},
		{
			name: "a repository without spec.interval is checked every minute", ns: "helmrepo-default-interval",
			url: secure.URL, certs: map[string]string{"ca.crt": string(secure.CAPEM)}, noInterval: true,
			ready: metav1.ConditionTrue, reason: sourcev1.ReasonSucceeded, message: "(1 chart)", index: secure,
		},
		{
			// httptest signs every server with one certificate, so the
			// untrusted case is the one without spec.certSecretRef.
			name: "a repository over TLS without spec.certSecretRef cannot be indexed", ns: "helmrepo-tls-untrusted",
			url:   secure.URL,
			ready: metav1.ConditionFalse, reason: ReasonIndexationFailed, message: "certificate",
		},
		{
			name: "an OCI repository is ready without an artifact", ns: "helmrepo-oci",
			url: registry.URL, oci: true,
			ready: metav1.ConditionTrue, reason: sourcev1.ReasonSucceeded, message: "Helm repository is ready",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			repo := helmRepository(tt.ns, tt.url)
			var objs []client.Object
			if tt.secret != nil {
				objs = append(objs, secret(tt.ns, "helm", tt.secret))
				repo.Spec.SecretRef = &sourcev1.LocalObjectReference{Name: "helm"}
			}
			if tt.certs != nil {
				objs = append(objs, secret(tt.ns, "certs", tt.certs))
				repo.Spec.CertSecretRef = &sourcev1.LocalObjectReference{Name: "certs"}
			}
			if tt.oci {
				repo.Spec.Type, repo.Spec.Insecure = sourcev1.HelmRepositoryTypeOCI, true
			}
			if tt.noInterval {
				repo.Spec.Interval = metav1.Duration{}
			}
			create(t, tt.ns, append(objs, repo)...)
			ev := &events{}
			r := &HelmRepositoryReconciler{Client: cp.Client, Events: ev, Fetcher: &helm.Fetcher{}}

			got, res := reconcileHelmRepository(t, r, repo)
			ready := meta.FindStatusCondition(got.Status.Conditions, "Ready")
			if ready == nil || ready.Status != tt.ready || ready.Reason != tt.reason || !strings.Contains(ready.Message, tt.message) {
				t.Fatalf("Ready is %s, want %s %s saying %q", readyOf(got.Status.Conditions), tt.ready, tt.reason, tt.message)
			}
			if got.Status.ObservedGeneration != got.Generation {
				t.Fatalf("observed generation %d of %d", got.Status.ObservedGeneration, got.Generation)
			}
			switch {
			case tt.index == nil && got.Status.Artifact != nil:
				t.Fatalf("artifact %+v, want none", got.Status.Artifact)
			case tt.index != nil:
				want := indexDigest(t, tt.index)
				if a := got.Status.Artifact; a == nil || a.Revision != want || a.Digest != want {
					t.Fatalf("artifact %+v, want the index digest %s as revision and digest", a, want)
				}
			}
			wantRequeue := time.Minute
			if tt.oci {
				wantRequeue = 0
			}
			if res.RequeueAfter != wantRequeue {
				t.Fatalf("requeue after %s, want %s", res.RequeueAfter, wantRequeue)
			}
			if tt.ready == metav1.ConditionFalse && fmt.Sprint(ev.reasons) != "["+tt.reason+"]" {
				t.Fatalf("events %v, want one %s warning", ev.reasons, tt.reason)
			}
		})
	}
}

func TestAHelmRepositoryAnnouncesEachNewIndexOnce(t *testing.T) {
	t.Parallel()
	s := helmrepo.NewHTTP(t)
	s.Add(t, appChart("app", "1.0.0"))
	repo := helmRepository("helmrepo-new-index", s.URL)
	repo.Annotations = map[string]string{sourcev1.ReconcileRequestAnnotation: "now"}
	create(t, repo.Namespace, repo)
	ev := &events{}
	r := &HelmRepositoryReconciler{Client: cp.Client, Events: ev, Fetcher: &helm.Fetcher{}}

	got, _ := reconcileHelmRepository(t, r, repo)
	first := got.Status.Artifact
	if first == nil || first.Revision != indexDigest(t, s) || got.Status.LastHandledReconcileAt != "now" {
		t.Fatalf("status %+v", got.Status)
	}
	got, _ = reconcileHelmRepository(t, r, got)
	if !got.Status.Artifact.LastUpdateTime.Equal(&first.LastUpdateTime) || len(ev.reasons) != 1 {
		t.Fatalf("an unchanged index made a new artifact %+v (events %v)", got.Status.Artifact, ev.reasons)
	}

	s.Add(t, appChart("app", "1.1.0"))
	got, _ = reconcileHelmRepository(t, r, got)
	if got.Status.Artifact.Revision == first.Revision || got.Status.Artifact.Revision != indexDigest(t, s) {
		t.Fatalf("after a new version the revision is %s", got.Status.Artifact.Revision)
	}
	if fmt.Sprint(ev.reasons) != "[NewArtifact NewArtifact]" {
		t.Fatalf("events %v, want one NewArtifact per index", ev.reasons)
	}
}

func TestHelmOptionsReadTheRepositoryAndItsSecrets(t *testing.T) {
	t.Parallel()
	const ns = "helmrepo-options"
	registry := helmrepo.NewOCI(t, helmrepo.WithTLS())
	create(t, ns,
		secret(ns, "auth", map[string]string{"username": "u", "password": "p"}),
		secret(ns, "user-only", map[string]string{"username": "u"}),
		secret(ns, "ca", map[string]string{"ca.crt": string(registry.CAPEM)}),
		secret(ns, "empty", map[string]string{"other": "x"}),
		secret(ns, "cert-only", map[string]string{"tls.crt": string(registry.CAPEM)}),
		secret(ns, "docker", map[string]string{".dockerconfigjson": `{"auths": {"registry.example": {"auth": "dTpw"}}}`}),
		secret(ns, "legacy-tls", map[string]string{"username": "u", "password": "p", "caFile": string(registry.CAPEM)}),
		secret(ns, "auth-tls", map[string]string{"username": "u", "password": "p", "ca.crt": string(registry.CAPEM)}),
	)
	ref := func(name string) *sourcev1.LocalObjectReference { return &sourcev1.LocalObjectReference{Name: name} }
	tests := []struct {
		name  string
		spec  sourcev1.HelmRepositorySpec
		check func(helm.Options) error
		err   string
	}{
		{
			name: "a bare repository is of type default with a 60s timeout",
			spec: sourcev1.HelmRepositorySpec{URL: "https://charts.example"},
			check: func(o helm.Options) error {
				if o.URL != "https://charts.example" || o.Type != helm.TypeDefault || o.Timeout != 60*time.Second || o.TLS != nil || o.Username != "" || o.PlainHTTP {
					return fmt.Errorf("options %+v", o)
				}
				return nil
			},
		},
		{
			name: "an insecure OCI repository with credentials, a CA and a timeout has them all",
			spec: sourcev1.HelmRepositorySpec{
				URL: registry.URL, Type: sourcev1.HelmRepositoryTypeOCI, Insecure: true, Timeout: &metav1.Duration{Duration: time.Second},
				SecretRef: ref("auth"), CertSecretRef: ref("ca"),
			},
			check: func(o helm.Options) error {
				if o.Type != helm.TypeOCI || !o.PlainHTTP || o.Timeout != time.Second || o.Username != "u" || o.Password != "p" || o.TLS == nil || o.TLS.RootCAs == nil {
					return fmt.Errorf("options %+v", o)
				}
				return nil
			},
		},
		{
			name: "passCredentials sends the credentials to chart URLs on other hosts too",
			spec: sourcev1.HelmRepositorySpec{URL: "https://charts.example", SecretRef: ref("auth"), PassCredentials: true},
			check: func(o helm.Options) error {
				if !o.PassCredentials || o.Username != "u" {
					return fmt.Errorf("options %+v", o)
				}
				return nil
			},
		},
		{
			name: "a kubernetes.io/dockerconfigjson Secret gives an OCI repository the registry's credentials",
			spec: sourcev1.HelmRepositorySpec{URL: "oci://registry.example/charts", Type: sourcev1.HelmRepositoryTypeOCI, SecretRef: ref("docker")},
			check: func(o helm.Options) error {
				if o.Username != "u" || o.Password != "p" {
					return fmt.Errorf("options %+v", o)
				}
				return nil
			},
		},
		{name: "a kubernetes.io/dockerconfigjson Secret without the registry is refused naming the hosts it has", spec: sourcev1.HelmRepositorySpec{URL: "oci://other.example/charts", Type: sourcev1.HelmRepositoryTypeOCI, SecretRef: ref("docker")}, err: "no credentials for other.example"},
		{
			name: "secretRef's deprecated caFile is read as certSecretRef's ca.crt",
			spec: sourcev1.HelmRepositorySpec{URL: "https://charts.example", SecretRef: ref("legacy-tls")},
			check: func(o helm.Options) error {
				if o.TLS == nil || o.TLS.RootCAs == nil || o.Username != "u" {
					return fmt.Errorf("options %+v", o)
				}
				return nil
			},
		},
		{
			name: "secretRef's ca.crt is read as certSecretRef's too",
			spec: sourcev1.HelmRepositorySpec{URL: "https://charts.example", SecretRef: ref("auth-tls")},
			check: func(o helm.Options) error {
				if o.TLS == nil || o.TLS.RootCAs == nil {
					return fmt.Errorf("options %+v", o)
				}
				return nil
			},
		},
		{
			name: "certSecretRef wins over secretRef's TLS keys",
			spec: sourcev1.HelmRepositorySpec{URL: "https://charts.example", SecretRef: ref("legacy-tls"), CertSecretRef: ref("cert-only")},
			err:  "both tls.crt and tls.key",
		},
		{name: "a missing Secret names spec.secretRef", spec: sourcev1.HelmRepositorySpec{URL: "https://charts.example", SecretRef: ref("nope")}, err: "spec.secretRef: Secret nope"},
		{name: "a username without a password is refused", spec: sourcev1.HelmRepositorySpec{URL: "https://charts.example", SecretRef: ref("user-only")}, err: "needs both username and password"},
		{name: "a missing cert Secret names spec.certSecretRef", spec: sourcev1.HelmRepositorySpec{URL: "https://charts.example", CertSecretRef: ref("nope")}, err: "spec.certSecretRef: Secret nope"},
		{name: "a cert Secret without certificates is refused", spec: sourcev1.HelmRepositorySpec{URL: "https://charts.example", CertSecretRef: ref("empty")}, err: "none of ca.crt, tls.crt and tls.key"},
		{name: "a client certificate without its key is refused", spec: sourcev1.HelmRepositorySpec{URL: "https://charts.example", CertSecretRef: ref("cert-only")}, err: "both tls.crt and tls.key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := &sourcev1.HelmRepository{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns}, Spec: tt.spec}
			opts, err := HelmOptions(t.Context(), cp.Client, repo)
			switch {
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("error %v, want one saying %q", err, tt.err)
			case tt.err == "" && err != nil:
				t.Fatal(err)
			case tt.check != nil:
				if err := tt.check(opts); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func TestAccessFromIsAcceptedAndTheProviderDefaultsToGeneric(t *testing.T) {
	t.Parallel()
	const ns = "helmrepo-access-from"
	access := &sourcev1.AccessFrom{NamespaceSelectors: []sourcev1.NamespaceSelector{{MatchLabels: map[string]string{"team": "web"}}}}
	repo := helmRepository(ns, "https://charts.example")
	repo.Spec.AccessFrom = access
	hc := helmChart(ns, "app", "app", "*", "HelmRepository", "app")
	hc.Spec.AccessFrom = access
	create(t, ns, repo, hc)
	gotRepo, gotChart := &sourcev1.HelmRepository{}, &sourcev1.HelmChart{}
	if err := cp.Client.Get(t.Context(), client.ObjectKeyFromObject(repo), gotRepo); err != nil {
		t.Fatal(err)
	}
	if err := cp.Client.Get(t.Context(), client.ObjectKeyFromObject(hc), gotChart); err != nil {
		t.Fatal(err)
	}
	if gotRepo.Spec.Provider != sourcev1.HelmRepositoryProviderGeneric {
		t.Errorf("provider %q, want generic by default", gotRepo.Spec.Provider)
	}
	if gotRepo.Spec.AccessFrom == nil || gotChart.Spec.AccessFrom == nil || gotChart.Spec.AccessFrom.NamespaceSelectors[0].MatchLabels["team"] != "web" {
		t.Errorf("accessFrom not kept: %+v, %+v", gotRepo.Spec.AccessFrom, gotChart.Spec.AccessFrom)
	}
}
