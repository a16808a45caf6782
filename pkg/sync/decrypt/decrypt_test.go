package decrypt_test

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"sluice.dev/sluice/pkg/sync/build"
	"sluice.dev/sluice/pkg/sync/decrypt"
	"sluice.dev/sluice/test/sopsfile"
)

// fixture holds the keys of a test and a secret value to find or miss.
type fixture struct {
	age, other sopsfile.AgeKey
	pgp        sopsfile.PGPKey
	secret     string
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return fixture{age: sopsfile.NewAgeKey(t), other: sopsfile.NewAgeKey(t), pgp: sopsfile.NewPGPKey(t), secret: "s3cret-" + hex.EncodeToString(b)}
}

// dataOnly encrypts what Flux's docs say to: data and stringData, so that
// kustomize can read the rest.
const dataOnly = "^(data|stringData)$"

func secretYAML(name, key, value string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata:\n  name: %s\ntype: Opaque\nstringData:\n  %s: %s\n", name, key, value)
}

func configMapYAML(name, key, value string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\ndata:\n  %s: %s\n", name, key, value)
}

func ageKeys(keys ...sopsfile.AgeKey) map[string][]byte {
	var lines []string
	for _, k := range keys {
		lines = append(lines, k.Identity)
	}
	return map[string][]byte{"identity.agekey": []byte(strings.Join(lines, "\n") + "\n")}
}

func find(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && strings.HasPrefix(o.GetName(), name) {
			return o
		}
	}
	t.Fatalf("no %s %s among %d objects", kind, name, len(objs))
	return nil
}

// value is a field of an object, a Secret's data entry decoded.
func value(t *testing.T, o *unstructured.Unstructured, fields ...string) string {
	t.Helper()
	v, ok, err := unstructured.NestedString(o.Object, fields...)
	if err != nil || !ok {
		t.Fatalf("%s %s has no %v: %v", o.GetKind(), o.GetName(), fields, err)
	}
	if o.GetKind() == "Secret" && fields[0] == "data" {
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	return v
}

func noSOPSMetadata(t *testing.T, o *unstructured.Unstructured) {
	t.Helper()
	if _, ok := o.Object["sops"]; ok {
		t.Errorf("%s %s still has its sops metadata", o.GetKind(), o.GetName())
	}
}

func TestADecryptorDecryptsWhatFluxDecrypts(t *testing.T) {
	f := newFixture(t)
	byAge := sopsfile.Options{Age: []sopsfile.AgeKey{f.age}, EncryptedRegex: dataOnly}
	tests := []struct {
		name  string
		keys  map[string][]byte
		files map[string]string
		opts  build.Options
		check func(t *testing.T, objs []*unstructured.Unstructured)
	}{
		{"an age-encrypted Secret is decrypted whole", ageKeys(f.age), map[string]string{
			"app/secret.yaml": string(sopsfile.Encrypt(t, []byte(secretYAML("db", "password", f.secret)), sopsfile.YAML, byAge)),
		}, build.Options{Path: "app"}, func(t *testing.T, objs []*unstructured.Unstructured) {
			s := find(t, objs, "Secret", "db")
			if got := value(t, s, "stringData", "password"); got != f.secret {
				t.Errorf("password %q", got)
			}
			noSOPSMetadata(t, s)
		}},
		{"an OpenPGP-encrypted ConfigMap is decrypted with the armored key of a .asc entry", map[string][]byte{"ops.asc": f.pgp.Private}, map[string]string{
			"app/settings.yaml": string(sopsfile.Encrypt(t, []byte(configMapYAML("settings", "token", f.secret)), sopsfile.YAML, sopsfile.Options{PGP: []sopsfile.PGPKey{f.pgp}, EncryptedRegex: dataOnly})),
		}, build.Options{Path: "app"}, func(t *testing.T, objs []*unstructured.Unstructured) {
			if got := value(t, find(t, objs, "ConfigMap", "settings"), "data", "token"); got != f.secret {
				t.Errorf("token %q", got)
			}
		}},
		{"any identity of a multi-line .agekey entry decrypts", map[string][]byte{"keys.agekey": []byte("# the team's keys\n" + f.other.Identity + "\n\n" + f.age.Identity + "\n")}, map[string]string{
			"app/secret.yaml": string(sopsfile.Encrypt(t, []byte(secretYAML("db", "password", f.secret)), sopsfile.YAML, byAge)),
		}, build.Options{Path: "app"}, func(t *testing.T, objs []*unstructured.Unstructured) {
			if got := value(t, find(t, objs, "Secret", "db"), "stringData", "password"); got != f.secret {
				t.Errorf("password %q", got)
			}
		}},
		{"a file encrypted for two recipients decrypts with the key of either", ageKeys(f.other), map[string]string{
			"app/secret.yaml": string(sopsfile.Encrypt(t, []byte(secretYAML("db", "password", f.secret)), sopsfile.YAML, sopsfile.Options{Age: []sopsfile.AgeKey{f.age, f.other}})),
		}, build.Options{Path: "app"}, func(t *testing.T, objs []*unstructured.Unstructured) {
			if got := value(t, find(t, objs, "Secret", "db"), "stringData", "password"); got != f.secret {
				t.Errorf("password %q", got)
			}
		}},
		{"a secretGenerator's encrypted env file is decrypted before kustomize reads it", ageKeys(f.age), map[string]string{
			"app/kustomization.yaml": "secretGenerator:\n- name: db\n  envs: [db.env]\n",
			"app/db.env":             string(sopsfile.Encrypt(t, []byte("PASSWORD="+f.secret+"\nUSER=app\n"), sopsfile.Dotenv, sopsfile.Options{Age: []sopsfile.AgeKey{f.age}})),
		}, build.Options{Path: "app"}, func(t *testing.T, objs []*unstructured.Unstructured) {
			s := find(t, objs, "Secret", "db-")
			if got := value(t, s, "data", "PASSWORD"); got != f.secret {
				t.Errorf("PASSWORD %q", got)
			}
			if got := value(t, s, "data", "USER"); got != "app" {
				t.Errorf("USER %q", got)
			}
		}},
		{"a configMapGenerator's encrypted JSON file is decrypted by its key's format", ageKeys(f.age), map[string]string{
			"app/kustomization.yaml": "configMapGenerator:\n- name: settings\n  files: [settings.json=committed.json]\n",
			"app/committed.json":     string(sopsfile.Encrypt(t, []byte(`{"token": "`+f.secret+`"}`), sopsfile.JSON, sopsfile.Options{Age: []sopsfile.AgeKey{f.age}})),
		}, build.Options{Path: "app"}, func(t *testing.T, objs []*unstructured.Unstructured) {
			got := value(t, find(t, objs, "ConfigMap", "settings-"), "data", "settings.json")
			if !strings.Contains(got, f.secret) || strings.Contains(got, "sops") {
				t.Errorf("settings.json %q", got)
			}
		}},
		{"a secretGenerator's encrypted YAML file is decrypted", ageKeys(f.age), map[string]string{
			"app/kustomization.yaml": "secretGenerator:\n- name: files\n  files: [config.yaml]\n",
			"app/config.yaml":        string(sopsfile.Encrypt(t, []byte("token: "+f.secret+"\n"), sopsfile.YAML, sopsfile.Options{Age: []sopsfile.AgeKey{f.age}})),
		}, build.Options{Path: "app"}, func(t *testing.T, objs []*unstructured.Unstructured) {
			if got := value(t, find(t, objs, "Secret", "files-"), "data", "config.yaml"); got != "token: "+f.secret+"\n" {
				t.Errorf("config.yaml %q", got)
			}
		}},
		{"an encrypted patch file is decrypted before kustomize applies it", ageKeys(f.age), map[string]string{
			"app/kustomization.yaml": "resources: [secret.yaml]\npatches:\n- path: patch.yaml\n",
			"app/secret.yaml":        secretYAML("db", "user", "app"),
			"app/patch.yaml":         string(sopsfile.Encrypt(t, []byte(secretYAML("db", "password", f.secret)), sopsfile.YAML, byAge)),
		}, build.Options{Path: "app"}, func(t *testing.T, objs []*unstructured.Unstructured) {
			s := find(t, objs, "Secret", "db")
			if got := value(t, s, "stringData", "password"); got != f.secret {
				t.Errorf("password %q", got)
			}
			if got := value(t, s, "stringData", "user"); got != "app" {
				t.Errorf("user %q", got)
			}
		}},
		{"a component's encrypted env file is decrypted", ageKeys(f.age), map[string]string{
			"app/settings.yaml":       configMapYAML("settings", "mode", "fast"),
			"comp/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nsecretGenerator:\n- name: db\n  envs: [db.env]\n",
			"comp/db.env":             string(sopsfile.Encrypt(t, []byte("PASSWORD="+f.secret+"\n"), sopsfile.Dotenv, sopsfile.Options{Age: []sopsfile.AgeKey{f.age}})),
		}, build.Options{Path: "app", Components: []string{"../comp"}}, func(t *testing.T, objs []*unstructured.Unstructured) {
			if got := value(t, find(t, objs, "Secret", "db-"), "data", "PASSWORD"); got != f.secret {
				t.Errorf("PASSWORD %q", got)
			}
		}},
		{"a Secret entry that holds an encrypted file is decrypted", ageKeys(f.age), map[string]string{
			"app/secret.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: files}\ndata:\n  settings.yaml: " +
				base64.StdEncoding.EncodeToString(sopsfile.Encrypt(t, []byte("token: "+f.secret+"\n"), sopsfile.YAML, sopsfile.Options{Age: []sopsfile.AgeKey{f.age}})) + "\n",
		}, build.Options{Path: "app"}, func(t *testing.T, objs []*unstructured.Unstructured) {
			got := value(t, find(t, objs, "Secret", "files"), "data", "settings.yaml")
			if got != "token: "+f.secret+"\n" {
				t.Errorf("settings.yaml %q", got)
			}
		}},
		{"the postBuild substitution sees the decrypted values", ageKeys(f.age), map[string]string{
			"app/secret.yaml": string(sopsfile.Encrypt(t, []byte(secretYAML("db", "url", "postgres://${HOST}/"+f.secret)), sopsfile.YAML, byAge)),
		}, build.Options{Path: "app", Substitute: map[string]string{"HOST": "db.local"}}, func(t *testing.T, objs []*unstructured.Unstructured) {
			if got := value(t, find(t, objs, "Secret", "db"), "stringData", "url"); got != "postgres://db.local/"+f.secret {
				t.Errorf("url %q", got)
			}
		}},
		{"an object annotated decrypt: disabled is left as committed", ageKeys(f.age), map[string]string{
			"app/secret.yaml": string(sopsfile.Encrypt(t, []byte(strings.Replace(secretYAML("db", "password", f.secret), "name: db", "name: db\n  annotations: {kustomize.toolkit.fluxcd.io/decrypt: disabled}", 1)), sopsfile.YAML, byAge)),
		}, build.Options{Path: "app"}, func(t *testing.T, objs []*unstructured.Unstructured) {
			s := find(t, objs, "Secret", "db")
			if got := value(t, s, "stringData", "password"); !strings.HasPrefix(got, "ENC[") {
				t.Errorf("password %q, want it encrypted", got)
			}
		}},
		{"plain objects and files are left as they are", ageKeys(f.age), map[string]string{
			"app/kustomization.yaml": "resources: [settings.yaml]\nconfigMapGenerator:\n- name: env\n  envs: [plain.env]\n",
			"app/settings.yaml":      configMapYAML("settings", "mode", "fast"),
			"app/plain.env":          "MODE=fast\n",
		}, build.Options{Path: "app"}, func(t *testing.T, objs []*unstructured.Unstructured) {
			if got := value(t, find(t, objs, "ConfigMap", "settings"), "data", "mode"); got != "fast" {
				t.Errorf("mode %q", got)
			}
			if got := value(t, find(t, objs, "ConfigMap", "env-"), "data", "MODE"); got != "fast" {
				t.Errorf("MODE %q", got)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dec, err := decrypt.New("sops/keys", tt.keys)
			if err != nil {
				t.Fatal(err)
			}
			files := map[string][]byte{}
			for name, data := range tt.files {
				files[name] = []byte(data)
			}
			opts := tt.opts
			opts.Decrypter = dec
			objs, err := build.Build(files, opts)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, objs)
		})
	}
}

func TestADecryptionFailureNamesWhatFailedAndNeverTheValue(t *testing.T) {
	f := newFixture(t)
	encrypted := sopsfile.Encrypt(t, []byte(secretYAML("db", "password", f.secret)), sopsfile.YAML, sopsfile.Options{Age: []sopsfile.AgeKey{f.age}, EncryptedRegex: dataOnly})
	// A value put back in plain text under the sops metadata: sops quotes
	// such a value in its message.
	plainInside := regexp.MustCompile(`password: ENC\[[^\]]*\]`).ReplaceAll(encrypted, []byte("password: "+f.secret))
	if string(plainInside) == string(encrypted) {
		t.Fatal("the fixture has no encrypted password to replace")
	}
	env := "app/kustomization.yaml"
	tests := []struct {
		name  string
		keys  map[string][]byte
		files map[string][]byte
		says  []string
	}{
		{"a file for another age key names the file and the keys it is for", ageKeys(f.other), map[string][]byte{
			env:          []byte("secretGenerator:\n- name: db\n  envs: [db.env]\n"),
			"app/db.env": sopsfile.Encrypt(t, []byte("PASSWORD="+f.secret+"\n"), sopsfile.Dotenv, sopsfile.Options{Age: []sopsfile.AgeKey{f.age}}),
		}, []string{"decrypt app/db.env", "age " + f.age.Recipient, "no key of Secret sops/keys decrypts it"}},
		{"an object for another key names the object", ageKeys(f.other), map[string][]byte{"app/secret.yaml": encrypted},
			[]string{"decrypt Secret db", "age " + f.age.Recipient}},
		{"an OpenPGP file without its key names the fingerprint", ageKeys(f.age), map[string][]byte{
			"app/secret.yaml": sopsfile.Encrypt(t, []byte(secretYAML("db", "password", f.secret)), sopsfile.YAML, sopsfile.Options{PGP: []sopsfile.PGPKey{f.pgp}, EncryptedRegex: dataOnly}),
		}, []string{"decrypt Secret db", "pgp " + f.pgp.Fingerprint}},
		{"a Secret without key entries says so", map[string][]byte{"README": []byte("keys go here")}, map[string][]byte{"app/secret.yaml": encrypted},
			[]string{"Secret sops/keys has no .agekey or .asc entry"}},
		{"a file made for a cloud KMS is refused as unsupported", ageKeys(f.age), map[string][]byte{
			"app/secret.yaml": sopsfile.Encrypt(t, []byte(secretYAML("db", "password", f.secret)), sopsfile.YAML, sopsfile.Options{KMSARN: "arn:aws:kms:eu-west-1:000000000000:key/test", EncryptedRegex: dataOnly}),
		}, []string{"kms arn:aws:kms:eu-west-1:000000000000:key/test", "only age and OpenPGP keys are supported"}},
		{"a value left in plain text in an encrypted file is not quoted", ageKeys(f.age), map[string][]byte{"app/secret.yaml": plainInside},
			[]string{"decrypt Secret db", "not shown"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dec, err := decrypt.New("sops/keys", tt.keys)
			if err != nil {
				t.Fatal(err)
			}
			_, err = build.Build(tt.files, build.Options{Path: "app", Decrypter: dec})
			t.Logf("message: %v", err)
			var derr *decrypt.Error
			if !errors.As(err, &derr) {
				t.Fatalf("got %v, want a decryption error", err)
			}
			for _, s := range tt.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("%q does not say %q", err, s)
				}
			}
			if strings.Contains(err.Error(), f.secret) {
				t.Errorf("%q holds the secret", err)
			}
		})
	}
}

func TestAKeySecretThatCannotBeUsedIsRefusedWithoutQuotingIt(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name    string
		entries map[string][]byte
		says    string
		hides   string
	}{
		{"an age plugin identity is refused, not run", map[string][]byte{"yubikey.agekey": []byte("AGE-PLUGIN-YUBIKEY-1QQQQQQQQQQQQQ\n")}, "plugins are not supported", ""},
		{"an .agekey line that is no key is named by its number, not quoted", map[string][]byte{"x.agekey": []byte("# ours\n" + f.age.Identity + "\nAGE-SECRET-KEY-1TYPO" + f.secret + "\n")}, "x.agekey: line 3 is a malformed age secret key", f.secret},
		{"an .agekey entry with no key is refused", map[string][]byte{"x.agekey": []byte("# nothing yet\n")}, "no age secret key", ""},
		{"an .asc key protected by a passphrase is refused", map[string][]byte{"ops.asc": f.pgp.ProtectedPrivate(t, f.secret)}, "is protected by a passphrase, which is not supported", f.secret},
		{"an .asc entry with a public key only is refused", map[string][]byte{"ops.asc": f.pgp.Public}, "is a public key: a private key is needed", ""},
		{"an .asc entry that is not armored is refused", map[string][]byte{"ops.asc": []byte(f.secret)}, "no armored OpenPGP private key", f.secret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decrypt.New("sops/keys", tt.entries)
			if err == nil || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("got %v, want an error saying %q", err, tt.says)
			}
			if !errors.As(err, new(*decrypt.Error)) {
				t.Errorf("%v is not a decryption error", err)
			}
			if tt.hides != "" && strings.Contains(err.Error(), tt.hides) {
				t.Errorf("%q quotes the entry", err)
			}
		})
	}
	t.Run("entries of other names are ignored", func(t *testing.T) {
		if _, err := decrypt.New("sops/keys", map[string][]byte{"README": []byte("not a key"), "id.agekey": []byte(f.age.Identity)}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestAMessageQuotingADecryptedValueIsRedacted(t *testing.T) {
	f := newFixture(t)
	dec, err := decrypt.New("sops/keys", ageKeys(f.age))
	if err != nil {
		t.Fatal(err)
	}
	encoded := base64.StdEncoding.EncodeToString([]byte(f.secret + "-in-data"))
	files := map[string][]byte{"app/secret.yaml": sopsfile.Encrypt(t, []byte("apiVersion: v1\nkind: Secret\nmetadata: {name: db}\ndata:\n  password: "+encoded+"\n"), sopsfile.YAML,
		sopsfile.Options{Age: []sopsfile.AgeKey{f.age}, EncryptedRegex: dataOnly})}
	if _, err := build.Build(files, build.Options{Path: "app", Decrypter: dec}); err != nil {
		t.Fatal(err)
	}
	for _, quoted := range []string{encoded, f.secret + "-in-data"} {
		err := dec.RedactError(fmt.Errorf("line 2: %q is not valid: %w", quoted, io.ErrUnexpectedEOF))
		if strings.Contains(err.Error(), f.secret) || strings.Contains(err.Error(), encoded) {
			t.Errorf("%q holds the value", err)
		}
		if !strings.Contains(err.Error(), "line 2: \"<redacted>\" is not valid") || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%q lost the rest of the message or what it wraps", err)
		}
	}
	var none *decrypt.Decryptor
	if err := none.RedactError(io.EOF); err != io.EOF { //nolint:errorlint // the very error must come back, not one wrapping it
		t.Errorf("a nil Decryptor changed an error: %v", err)
	}
}

// The operator's environment and home are not places sops may look for
// keys, and no gpg is run: only the Secret's keys decrypt.
func TestOnlyTheKeySecretDecryptsNotTheEnvironmentHomeOrGPG(t *testing.T) {
	f := newFixture(t)
	byAge := sopsfile.Encrypt(t, []byte(secretYAML("db", "password", f.secret)), sopsfile.YAML, sopsfile.Options{Age: []sopsfile.AgeKey{f.age}, EncryptedRegex: dataOnly})
	byPGP := sopsfile.Encrypt(t, []byte(secretYAML("db", "password", f.secret)), sopsfile.YAML, sopsfile.Options{PGP: []sopsfile.PGPKey{f.pgp}, EncryptedRegex: dataOnly})

	// The places sops looks by default all hold the right age key...
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	if err := os.MkdirAll(filepath.Join(home, ".config", "sops", "age"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(home, ".config", "sops", "age", "keys.txt"), filepath.Join(home, "age.txt")} {
		if err := os.WriteFile(p, []byte(f.age.Identity+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("SOPS_AGE_KEY", f.age.Identity)
	t.Setenv("SOPS_AGE_KEY_FILE", filepath.Join(home, "age.txt"))
	// ...and a gpg that would decrypt anything leaves a mark if run.
	bin, ran := t.TempDir(), filepath.Join(home, "gpg-ran")
	for _, name := range []string{"gpg", "gpg2"} {
		script := "#!/bin/sh\ntouch " + ran + "\necho c2VjcmV0\n"
		if err := os.WriteFile(filepath.Join(bin, name), []byte(script), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", bin)
	t.Setenv("GNUPGHOME", home)

	dec, err := decrypt.New("sops/keys", ageKeys(f.other))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"an age file": byAge, "an OpenPGP file": byPGP} {
		t.Run(name+" is not decrypted with keys from elsewhere", func(t *testing.T) {
			_, err := build.Build(map[string][]byte{"app/secret.yaml": data}, build.Options{Path: "app", Decrypter: dec})
			if !errors.As(err, new(*decrypt.Error)) || !strings.Contains(err.Error(), "no key of Secret sops/keys decrypts it") {
				t.Fatalf("got %v, want the Secret's key to be the only one tried", err)
			}
			if _, err := os.Stat(ran); err == nil {
				t.Fatal("gpg was run")
			}
		})
	}
}
