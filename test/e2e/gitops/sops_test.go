package gitops

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	syncv1 "sluice.dev/sluice/api/sync/v1"
	"sluice.dev/sluice/pkg/sync/status"
	"sluice.dev/sluice/test/gitserver"
	"sluice.dev/sluice/test/inprocess"
	"sluice.dev/sluice/test/sopsfile"
)

// capturedLog keeps every line the operator logs, at every verbosity.
type capturedLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *capturedLog) add(prefix, args string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, prefix+" "+args)
}

func (l *capturedLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

func randomValue(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + hex.EncodeToString(b)
}

// TestSOPSEncryptedManifestsInGitAreAppliedDecryptedAndNeverShown commits
// an age-encrypted Secret and an encrypted env file a secretGenerator
// reads: with the right key both are applied decrypted; with a wrong key,
// or a key Secret that is missing, the Kustomization is Ready=False
// DecryptionFailed and nothing of its revision is applied. No log line,
// Event or status holds a decrypted value.
func TestSOPSEncryptedManifestsInGitAreAppliedDecryptedAndNeverShown(t *testing.T) {
	const namespace = "sops"
	right, wrong := sopsfile.NewAgeKey(t), sopsfile.NewAgeKey(t)
	password, token := randomValue(t, "pw-"), randomValue(t, "tok-")
	dataOnly := sopsfile.Options{Age: []sopsfile.AgeKey{right}, EncryptedRegex: "^(data|stringData)$"}
	secret := func(name, value string) string {
		return string(sopsfile.Encrypt(t, []byte("apiVersion: v1\nkind: Secret\nmetadata:\n  name: "+name+"\ntype: Opaque\nstringData:\n  password: "+value+"\n"), sopsfile.YAML, dataOnly))
	}
	s := gitserver.New(t)
	s.Commit(map[string]string{
		"app/kustomization.yaml": "resources: [secret.yaml, settings.yaml]\nsecretGenerator:\n- name: generated\n  envs: [token.env]\n",
		"app/secret.yaml":        secret("db", password),
		"app/token.env":          string(sopsfile.Encrypt(t, []byte("TOKEN="+token+"\n"), sopsfile.Dotenv, sopsfile.Options{Age: []sopsfile.AgeKey{right}})),
		"app/settings.yaml":      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app-settings}\ndata: {mode: fast}\n",
		"locked/secret.yaml":     secret("locked-db", password),
		"locked/settings.yaml":   "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: locked-settings}\ndata: {mode: fast}\n",
	})
	gitAuth, repo := s.Source(namespace, "repo", time.Second)
	kustomization := func(name, path, keys string) *syncv1.Kustomization {
		return &syncv1.Kustomization{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}, Spec: syncv1.KustomizationSpec{
			SourceRef: syncv1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: "repo"},
			Path:      path, Prune: true, TargetNamespace: namespace,
			Interval: metav1.Duration{Duration: time.Hour}, RetryInterval: &metav1.Duration{Duration: 2 * time.Second},
			Decryption: &syncv1.Decryption{Provider: syncv1.DecryptionProviderSOPS, SecretRef: &syncv1.LocalObjectReference{Name: keys}},
		}}
	}
	keySecret := func(name string, key sopsfile.AgeKey) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}, Data: map[string][]byte{"identity.agekey": []byte(key.Identity + "\n")}}
	}
	for _, o := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}},
		gitAuth, repo,
		keySecret("sops-age", right), keySecret("wrong-age", wrong),
		kustomization("app", "app", "sops-age"),
		kustomization("wrong-key", "locked", "wrong-age"),
		kustomization("missing-key", "locked", "no-such-secret"),
	} {
		if err := cp.Client.Create(t.Context(), o); err != nil {
			t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
	logs := &capturedLog{}
	inprocess.Start(t, cp.Config, namespace, funcr.New(logs.add, funcr.Options{Verbosity: 10}))

	t.Run("an age-encrypted Secret and a generator's encrypted env file are applied decrypted", func(t *testing.T) {
		waitObject(t, time.Minute, &syncv1.Kustomization{}, client.ObjectKey{Namespace: namespace, Name: "app"}, "the app applied", func(ks *syncv1.Kustomization) bool { return status.Ready(ks) })
		db := &corev1.Secret{}
		if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: namespace, Name: "db"}, db); err != nil {
			t.Fatal(err)
		}
		if got := string(db.Data["password"]); got != password {
			t.Errorf("Secret db password %q, want the decrypted value", got)
		}
		var list corev1.SecretList
		if err := cp.Client.List(t.Context(), &list, client.InNamespace(namespace)); err != nil {
			t.Fatal(err)
		}
		found := false
		for _, s := range list.Items {
			if strings.HasPrefix(s.Name, "generated-") {
				found = true
				if got := string(s.Data["TOKEN"]); got != token {
					t.Errorf("Secret %s TOKEN %q, want the decrypted value", s.Name, got)
				}
			}
		}
		if !found {
			t.Error("the secretGenerator's Secret was not applied")
		}
	})
	t.Run("a wrong key is DecryptionFailed naming the object, and nothing is applied", func(t *testing.T) {
		waitFailure(t, namespace, &syncv1.Kustomization{ObjectMeta: metav1.ObjectMeta{Name: "wrong-key"}}, syncv1.ReasonDecryptionFailed,
			"decrypt Secret sops/locked-db", "age "+right.Recipient, "no key of Secret sops/wrong-age decrypts it")
		noneApplied(t, namespace, "wrong-key")
	})
	t.Run("a missing key Secret is DecryptionFailed naming it, and nothing is applied", func(t *testing.T) {
		waitFailure(t, namespace, &syncv1.Kustomization{ObjectMeta: metav1.ObjectMeta{Name: "missing-key"}}, syncv1.ReasonDecryptionFailed,
			"spec.decryption.secretRef", "Secret sops/no-such-secret")
		noneApplied(t, namespace, "missing-key")
	})
	t.Run("no log line, Event or status holds a decrypted value", func(t *testing.T) {
		lines := logs.all()
		if len(lines) == 0 || !strings.Contains(strings.Join(lines, "\n"), "Kustomization") {
			t.Fatalf("the operator's log was not captured (%d lines)", len(lines))
		}
		for _, l := range lines {
			if strings.Contains(l, password) || strings.Contains(l, token) {
				t.Errorf("a log line holds a decrypted value: %.200s", l)
			}
		}
		var events eventsv1.EventList
		if err := cp.Client.List(t.Context(), &events, client.InNamespace(namespace)); err != nil {
			t.Fatal(err)
		}
		var coreEvents corev1.EventList
		if err := cp.Client.List(t.Context(), &coreEvents, client.InNamespace(namespace)); err != nil {
			t.Fatal(err)
		}
		var kustomizations syncv1.KustomizationList
		if err := cp.Client.List(t.Context(), &kustomizations, client.InNamespace(namespace)); err != nil {
			t.Fatal(err)
		}
		if len(events.Items) == 0 || len(kustomizations.Items) != 3 {
			t.Fatalf("%d Events and %d Kustomizations to look through", len(events.Items), len(kustomizations.Items))
		}
		for what, obj := range map[string]any{"an Event": events, "a core Event": coreEvents, "a Kustomization": kustomizations} {
			data, err := json.Marshal(obj)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(data), password) || strings.Contains(string(data), token) {
				t.Errorf("%s holds a decrypted value", what)
			}
		}
	})
}

// noneApplied checks that the Kustomization name applied nothing: its
// plain ConfigMap is absent and its inventory empty.
func noneApplied(t *testing.T, namespace, name string) {
	t.Helper()
	err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: namespace, Name: "locked-settings"}, &corev1.ConfigMap{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("the plain ConfigMap beside the undecryptable Secret was applied, or could not be read: %v", err)
	}
	ks := &syncv1.Kustomization{}
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: namespace, Name: name}, ks); err != nil {
		t.Fatal(err)
	}
	if ks.Status.Inventory != nil && len(ks.Status.Inventory.Entries) > 0 {
		t.Errorf("inventory %v, want nothing applied", ks.Status.Inventory.Entries)
	}
}

func TestTheAPIServerRefusesCloudKMSDecryption(t *testing.T) {
	const namespace = "sopscel"
	if err := cp.Client.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}); err != nil {
		t.Fatal(err)
	}
	ks := func(name string, dec *syncv1.Decryption) *syncv1.Kustomization {
		return &syncv1.Kustomization{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}, Spec: syncv1.KustomizationSpec{
			SourceRef: syncv1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: "repo"},
			Interval:  metav1.Duration{Duration: time.Minute}, Decryption: dec,
		}}
	}
	tests := []struct {
		name string
		obj  client.Object
		err  string
	}{
		{"a decryption serviceAccountName for cloud KMS workload identity", ks("kms", &syncv1.Decryption{Provider: "sops", ServiceAccountName: "kms-reader"}),
			`spec.decryption.serviceAccountName: Invalid value: "kms-reader": decryption.serviceAccountName: cloud KMS workload identity is not supported`},
		{"a provider other than sops", ks("vault", &syncv1.Decryption{Provider: "vault"}), `spec.decryption.provider: Unsupported value: "vault"`},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is refused, naming the field", func(t *testing.T) {
			err := cp.Client.Create(t.Context(), tt.obj)
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("got %v, want an error with %q", err, tt.err)
			}
		})
	}
	if err := cp.Client.Create(t.Context(), ks("flux-style", &syncv1.Decryption{Provider: "sops", SecretRef: &syncv1.LocalObjectReference{Name: "sops-age"}}), client.DryRunAll); err != nil {
		t.Errorf("Flux's decryption spec is refused: %v", err)
	}
}
