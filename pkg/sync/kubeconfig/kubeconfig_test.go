package kubeconfig

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"

	syncv1 "sluice.dev/sluice/api/sync/v1"
)

// kubeconfigFor is a kubeconfig whose current context reaches server
// with token, trusting the system's roots.
func kubeconfigFor(server, token string) string {
	return strings.Replace(kubeconfigWithCA(server, token), ", certificate-authority-data: Q0E=", "", 1)
}

// kubeconfigWithCA is kubeconfigFor with an inline certificate authority
// (not a valid one: it is only parsed).
func kubeconfigWithCA(server, token string) string {
	return `apiVersion: v1
kind: Config
current-context: remote
contexts:
- name: other
  context: {cluster: other, user: other}
- name: remote
  context: {cluster: remote, user: remote}
clusters:
- name: other
  cluster: {server: https://other.example:6443}
- name: remote
  cluster: {server: ` + server + `, certificate-authority-data: ` + "Q0E=" + `}
users:
- name: other
  user: {token: other-token}
- name: remote
  user: {token: ` + token + `}
`
}

// secret creates the Secret remote in a namespace of its own, ns, on the
// API server, holding data.
func secret(t *testing.T, ns string, data map[string]string) *corev1.Secret {
	t.Helper()
	if err := cp.Client.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "remote", Namespace: ns}, Data: map[string][]byte{}}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	if err := cp.Client.Create(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestKubeConfigSecretKeyDefaultsToValueThenValueYAML(t *testing.T) {
	for i, tc := range []struct {
		name    string
		data    map[string]string
		key     string
		want    string
		wantErr string
	}{
		{name: "value is read when no key is named", data: map[string]string{"value": "a", "other": "b"}, want: "a"},
		{name: "value.yaml is read when there is no value", data: map[string]string{"value.yaml": "b"}, want: "b"},
		{name: "value wins over value.yaml", data: map[string]string{"value": "a", "value.yaml": "b"}, want: "a"},
		{name: "the named key wins over the defaults", data: map[string]string{"value": "a", "config": "c"}, key: "config", want: "c"},
		{name: "a named key the Secret lacks is refused, not replaced by a default", data: map[string]string{"value": "a"}, key: "config",
			wantErr: `spec.kubeConfig.secretRef: Secret apps/remote has no "config" key`},
		{name: "a Secret with neither default key is refused", data: map[string]string{"kubeconfig": "a"},
			wantErr: `spec.kubeConfig.secretRef: Secret apps/remote has no "value" or "value.yaml" key`},
		{name: "an empty value counts as missing", data: map[string]string{"value": ""},
			wantErr: `has no "value" or "value.yaml" key`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := fmt.Sprintf("key-%d", i)
			secret(t, ns, tc.data)
			ref := &syncv1.KubeConfigReference{SecretRef: &syncv1.SecretKeyReference{Name: "remote", Key: tc.key}}
			got, err := Read(t.Context(), cp.Client, ns, ref)
			if tc.wantErr != "" {
				want := strings.ReplaceAll(tc.wantErr, "apps/", ns+"/")
				if err == nil || !strings.Contains(err.Error(), want) || !IsError(err) {
					t.Fatalf("got %q, %v; want an Error containing %q", got, err, want)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestKubeConfigOfAMissingSecretNamesTheField(t *testing.T) {
	ref := &syncv1.KubeConfigReference{SecretRef: &syncv1.SecretKeyReference{Name: "gone"}}
	_, err := Read(t.Context(), cp.Client, "apps", ref)
	if err == nil || !IsError(err) || !strings.Contains(err.Error(), "spec.kubeConfig.secretRef: read Secret apps/gone") {
		t.Fatalf("got %v", err)
	}
}

func TestKubeConfigParse(t *testing.T) {
	const token = "s3cr3t-t0ken"
	for _, tc := range []struct {
		name    string
		data    string
		wantErr string
		check   func(t *testing.T, host, bearer string, caData []byte)
	}{
		{name: "the current context's cluster and user are used", data: kubeconfigWithCA("https://remote.example:6443", token),
			check: func(t *testing.T, host, bearer string, ca []byte) {
				if host != "https://remote.example:6443" || bearer != token || string(ca) != "CA" {
					t.Fatalf("host %q, token %q, CA %q", host, bearer, ca)
				}
			}},
		{name: "an entry that is no kubeconfig is refused without quoting it", data: "token: [" + token,
			wantErr: "spec.kubeConfig.secretRef: the Secret's entry is not a kubeconfig"},
		{name: "a kubeconfig without a current context is refused", data: strings.Replace(kubeconfigFor("https://r", token), "current-context: remote", "", 1),
			wantErr: "spec.kubeConfig.secretRef: the kubeconfig has no current-context"},
		{name: "a current context that does not exist is refused", data: strings.Replace(kubeconfigFor("https://r", token), "current-context: remote", "current-context: nope", 1),
			wantErr: `current-context "nope" is not among its contexts`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.data))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), token) {
					t.Fatalf("the error quotes the Secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, cfg.Host, cfg.BearerToken, cfg.CAData)
		})
	}
}

func TestKubeConfigDropsWhatReachesTheOperatorsMachine(t *testing.T) {
	data := `apiVersion: v1
kind: Config
current-context: remote
contexts:
- name: remote
  context: {cluster: remote, user: remote}
clusters:
- name: remote
  cluster: {server: https://remote.example, certificate-authority: /etc/ca.crt, insecure-skip-tls-verify: true, proxy-url: http://proxy.example}
users:
- name: remote
  user:
    tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token
    client-certificate: /etc/tls.crt
    client-key: /etc/tls.key
    as: admin
    exec: {apiVersion: client.authentication.k8s.io/v1, command: /bin/sh, args: [-c, "id"]}
`
	cfg, err := Parse([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.CAFile != "" || cfg.CertFile != "" || cfg.KeyFile != "" || cfg.BearerTokenFile != "" || cfg.ExecProvider != nil ||
		cfg.AuthProvider != nil || cfg.Insecure || cfg.Proxy != nil || cfg.Impersonate.UserName != "" {
		t.Fatalf("kept what reaches the operator's machine: %+v", cfg)
	}
}

func TestKubeConfigClientsAreKeptUntilTheSecretChanges(t *testing.T) {
	const ns = "rotate"
	s := secret(t, ns, map[string]string{"value": kubeconfigFor("https://remote.example:6443", "one")})
	c := cp.Client
	clusters := &Clusters{Reader: c, Scheme: scheme.Scheme}
	ref := &syncv1.KubeConfigReference{SecretRef: &syncv1.SecretKeyReference{Name: "remote"}}
	ctx := t.Context()

	first, err := clusters.For(ctx, ns, ref, "")
	if err != nil {
		t.Fatal(err)
	}
	again, err := clusters.For(ctx, ns, ref, "")
	if err != nil || again != first {
		t.Fatalf("the same kubeconfig made new clients: %v", err)
	}
	tenant, err := clusters.For(ctx, ns, ref, "tenant")
	if err != nil {
		t.Fatal(err)
	}
	if got := tenant.Config.Impersonate.UserName; got != "system:serviceaccount:"+ns+":tenant" {
		t.Fatalf("impersonates %q", got)
	}
	if tenant.Mapper != first.Mapper || tenant.Owner != first.Owner || first.Config.Impersonate.UserName != "" {
		t.Fatal("the accounts of one kubeconfig do not share its mapper and owner client")
	}

	s.Data["value"] = []byte(kubeconfigFor("https://remote.example:6443", "two"))
	if err := c.Update(ctx, s); err != nil {
		t.Fatal(err)
	}
	rotated, err := clusters.For(ctx, ns, ref, "")
	if err != nil {
		t.Fatal(err)
	}
	if rotated == first || rotated.Mapper == first.Mapper || rotated.Config.BearerToken != "two" {
		t.Fatal("a rotated Secret kept the old clients")
	}
	if err := c.Delete(ctx, s); err != nil {
		t.Fatal(err)
	}
	if _, err := clusters.For(ctx, ns, ref, ""); !IsError(err) {
		t.Fatalf("a deleted Secret still gives clients: %v", err)
	}
}

// The Remote's memo keeps what a controller derives from it.
func TestKubeConfigMemoBuildsOnce(t *testing.T) {
	r := &Remote{}
	builds := 0
	for range 3 {
		v, err := r.Memo("actor", func() (any, error) { builds++; return builds, nil })
		if err != nil || v != 1 {
			t.Fatalf("got %v, %v", v, err)
		}
	}
}
