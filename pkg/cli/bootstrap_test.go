package cli

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"golang.org/x/crypto/ssh"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"sluice.dev/sluice/kustomize"
	"sluice.dev/sluice/pkg/sync/build"
	"sluice.dev/sluice/test/manifests"
)

// bootstrapFiles renders the files of layout with the embedded install
// manifests.
func bootstrapFiles(t *testing.T, layout bootstrapLayout) (map[string][]byte, []*unstructured.Unstructured) {
	t.Helper()
	built, err := kustomize.Build()
	if err != nil {
		t.Fatal(err)
	}
	components, err := layout.components(built)
	if err != nil {
		t.Fatal(err)
	}
	syncObjs, err := layout.syncObjects()
	if err != nil {
		t.Fatal(err)
	}
	files, err := layout.files("v1.2.3", components, syncObjs)
	if err != nil {
		t.Fatal(err)
	}
	return files, components
}

func split(t *testing.T, data []byte) []*unstructured.Unstructured {
	t.Helper()
	objs, err := manifests.SplitYAML(string(data))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func TestBootstrapFiles(t *testing.T) {
	base := bootstrapLayout{namespace: "sluice-system", path: "clusters/my-cluster", url: "https://git.example.com/fleet.git", branch: "main", interval: time.Minute, secretName: "sluice-system"}
	withNamespace := base
	withNamespace.namespace, withNamespace.secretName = "gitops", "gitops"
	atRoot := base
	atRoot.path = ""
	public := base
	public.secretName = ""

	tests := []struct {
		name   string
		layout bootstrapLayout
		check  func(t *testing.T, files map[string][]byte, components []*unstructured.Unstructured)
	}{
		{"the components, the sync manifests and their kustomization.yaml go in <path>/<namespace>/", base, func(t *testing.T, files map[string][]byte, _ []*unstructured.Unstructured) {
			got := slices.Sorted(maps.Keys(files))
			want := []string{"clusters/my-cluster/sluice-system/kustomization.yaml", "clusters/my-cluster/sluice-system/sluice-components.yaml", "clusters/my-cluster/sluice-system/sluice-sync.yaml"}
			if !slices.Equal(got, want) {
				t.Errorf("files %q, want %q", got, want)
			}
			if kus := string(files["clusters/my-cluster/sluice-system/kustomization.yaml"]); !strings.Contains(kus, "- sluice-components.yaml\n- sluice-sync.yaml\n") {
				t.Errorf("kustomization.yaml does not list both files:\n%s", kus)
			}
		}},
		{"the components file holds what sluicectl install applies, and names the version", base, func(t *testing.T, files map[string][]byte, _ []*unstructured.Unstructured) {
			data := files["clusters/my-cluster/sluice-system/sluice-components.yaml"]
			if !bytes.Contains(data, []byte("# Sluice version: v1.2.3\n")) {
				t.Errorf("the header does not name the version:\n%s", data[:200])
			}
			built, err := kustomize.Build()
			if err != nil {
				t.Fatal(err)
			}
			if got, want := ids(split(t, data)), ids(built); !slices.Equal(got, want) {
				t.Errorf("objects %q, want the install's %q", got, want)
			}
		}},
		{"the sync file holds a GitRepository on the branch with the secretRef, and a pruning Kustomization of ./<path> from it", base, func(t *testing.T, files map[string][]byte, _ []*unstructured.Unstructured) {
			objs := split(t, files["clusters/my-cluster/sluice-system/sluice-sync.yaml"])
			if got := ids(objs); !slices.Equal(got, []string{"GitRepository/sluice-system/sluice-system", "Kustomization/sluice-system/sluice-system"}) {
				t.Fatalf("objects %q", got)
			}
			repo, ks := objs[0], objs[1]
			for _, c := range []struct {
				obj    *unstructured.Unstructured
				fields []string
				want   any
			}{
				{repo, []string{"apiVersion"}, "source.sluice.dev/v1"},
				{repo, []string{"spec", "url"}, "https://git.example.com/fleet.git"},
				{repo, []string{"spec", "ref", "branch"}, "main"},
				{repo, []string{"spec", "interval"}, "1m0s"},
				{repo, []string{"spec", "secretRef", "name"}, "sluice-system"},
				{ks, []string{"apiVersion"}, "sync.sluice.dev/v1"},
				{ks, []string{"spec", "path"}, "./clusters/my-cluster"},
				{ks, []string{"spec", "prune"}, true},
				{ks, []string{"spec", "interval"}, "10m0s"},
				{ks, []string{"spec", "sourceRef", "kind"}, "GitRepository"},
				{ks, []string{"spec", "sourceRef", "name"}, "sluice-system"},
			} {
				if got, _, _ := unstructured.NestedFieldNoCopy(c.obj.Object, c.fields...); got != c.want {
					t.Errorf("%s %s is %v, want %v", c.obj.GetKind(), strings.Join(c.fields, "."), got, c.want)
				}
			}
		}},
		{"a repository without credentials gets no secretRef", public, func(t *testing.T, files map[string][]byte, _ []*unstructured.Unstructured) {
			repo := split(t, files["clusters/my-cluster/sluice-system/sluice-sync.yaml"])[0]
			if _, found, _ := unstructured.NestedMap(repo.Object, "spec", "secretRef"); found {
				t.Errorf("the GitRepository has a secretRef: %v", repo.Object["spec"])
			}
		}},
		{"an empty path puts the folder at the root and syncs ./", atRoot, func(t *testing.T, files map[string][]byte, _ []*unstructured.Unstructured) {
			data, ok := files["sluice-system/sluice-sync.yaml"]
			if !ok {
				t.Fatalf("files %q, want them in sluice-system/", slices.Sorted(maps.Keys(files)))
			}
			if p, _, _ := unstructured.NestedString(split(t, data)[1].Object, "spec", "path"); p != "./" {
				t.Errorf("Kustomization path %q, want ./", p)
			}
		}},
		{"another namespace moves the operator, its Namespace and its bindings' subjects, and names the folder and the objects", withNamespace, func(t *testing.T, files map[string][]byte, components []*unstructured.Unstructured) {
			if _, ok := files["clusters/my-cluster/gitops/sluice-sync.yaml"]; !ok {
				t.Fatalf("files %q, want them in clusters/my-cluster/gitops/", slices.Sorted(maps.Keys(files)))
			}
			for _, o := range components {
				if o.GetNamespace() == installNamespace || o.GetKind() == "Namespace" && o.GetName() != "gitops" {
					t.Errorf("%s %s/%s stayed in %s", o.GetKind(), o.GetNamespace(), o.GetName(), installNamespace)
				}
				subjects, _, _ := unstructured.NestedSlice(o.Object, "subjects")
				for _, s := range subjects {
					if ns := s.(map[string]any)["namespace"]; ns != nil && ns != "gitops" {
						t.Errorf("%s %s binds a subject in %v", o.GetKind(), o.GetName(), ns)
					}
				}
			}
			for _, o := range split(t, files["clusters/my-cluster/gitops/sluice-sync.yaml"]) {
				if o.GetNamespace() != "gitops" || o.GetName() != "gitops" {
					t.Errorf("%s is %s/%s, want gitops/gitops", o.GetKind(), o.GetNamespace(), o.GetName())
				}
			}
		}},
		{"the operator's build of ./<path> applies the components and the sync objects, as the sync Kustomization will", base, func(t *testing.T, files map[string][]byte, components []*unstructured.Unstructured) {
			files["clusters/my-cluster/apps/app.yaml"] = []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n  namespace: default\n")
			objs, err := build.Build(files, build.Options{Path: "./clusters/my-cluster"})
			if err != nil {
				t.Fatal(err)
			}
			want := append(ids(components), "ConfigMap/default/app", "GitRepository/sluice-system/sluice-system", "Kustomization/sluice-system/sluice-system")
			slices.Sort(want)
			if got := ids(objs); !slices.Equal(got, want) {
				t.Errorf("the build applies %q, want %q", got, want)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files, components := bootstrapFiles(t, tt.layout)
			tt.check(t, files, components)
		})
	}

	t.Run("the same options give the same bytes, so that a second bootstrap commits nothing", func(t *testing.T) {
		a, _ := bootstrapFiles(t, base)
		b, _ := bootstrapFiles(t, base)
		for name := range a {
			if !bytes.Equal(a[name], b[name]) {
				t.Errorf("%s differs between two renders", name)
			}
		}
	})
}

// ids are objs as sorted KIND/NAMESPACE/NAME.
func ids(objs []*unstructured.Unstructured) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetKind()+"/"+o.GetNamespace()+"/"+o.GetName())
	}
	slices.Sort(out)
	return out
}

func TestBootstrapOptions(t *testing.T) {
	valid := bootstrapOptions{url: "https://git.example.com/fleet.git", branch: "main", interval: time.Minute, username: "git", authorEmail: "a@example.com"}
	keyFile := filepath.Join(t.TempDir(), "id")
	tests := []struct {
		name   string
		change func(*bootstrapOptions)
		want   string // "" for valid
	}{
		{"an https URL with basic auth is valid", func(o *bootstrapOptions) { o.password = "p" }, ""},
		{"an ssh URL with a private key is valid", func(o *bootstrapOptions) {
			o.url, o.privateKeyFile = "ssh://git@git.example.com/fleet.git", keyFile
		}, ""},
		{"plain http is refused without --allow-insecure-http", func(o *bootstrapOptions) { o.url = "http://git.example.com/fleet.git" }, "--allow-insecure-http"},
		{"plain http is allowed with --allow-insecure-http", func(o *bootstrapOptions) {
			o.url, o.allowInsecureHTTP = "http://git.example.com/fleet.git", true
		}, ""},
		{"an scp-like address is refused for an ssh:// URL", func(o *bootstrapOptions) { o.url = "git@git.example.com:fleet.git" }, "--url"},
		{"an ssh URL without a private key is refused", func(o *bootstrapOptions) { o.url = "ssh://git@git.example.com/fleet.git" }, "--private-key-file"},
		{"a private key with an https URL is refused", func(o *bootstrapOptions) { o.privateKeyFile = keyFile }, "for ssh URLs"},
		{"a bearer token needs --password", func(o *bootstrapOptions) { o.bearerToken = true }, "--with-bearer-token"},
		{"a password in the URL is refused, as the GitRepository would keep it", func(o *bootstrapOptions) {
			o.url = "https://git:secret@git.example.com/fleet.git"
		}, "must not hold a password"},
		{"a path out of the repository is refused", func(o *bootstrapOptions) { o.path = "../other" }, "--path"},
		{"an absolute path is refused", func(o *bootstrapOptions) { o.path = "/clusters" }, "--path"},
		{"a zero interval is refused", func(o *bootstrapOptions) { o.interval = 0 }, "--interval"},
		{"an empty branch is refused", func(o *bootstrapOptions) { o.branch = "" }, "--branch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := valid
			tt.change(&o)
			err := o.validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want one naming %q", err, tt.want)
			}
		})
	}
}

func TestBootstrapCleanRepoPath(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty is the root", "", ""},
		{"a dot is the root", ".", ""},
		{"a leading ./ and a trailing slash are dropped", "./clusters/my-cluster/", "clusters/my-cluster"},
		{"backslashes become slashes", `clusters\dev`, "clusters/dev"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := cleanRepoPath(tt.in)
			if err != nil || got != tt.want {
				t.Fatalf("cleanRepoPath(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestBootstrapCredentials(t *testing.T) {
	t.Run("basic auth is pushed with and stored as username and password", func(t *testing.T) {
		c, err := bootstrapOptions{url: "https://git.example.com/r.git", username: "bot", password: "s3cret"}.credentials()
		if err != nil {
			t.Fatal(err)
		}
		if auth, ok := c.auth.(*githttp.BasicAuth); !ok || auth.Username != "bot" || auth.Password != "s3cret" {
			t.Errorf("auth %#v", c.auth)
		}
		data, err := c.secretData()
		if err != nil || string(data["username"]) != "bot" || string(data["password"]) != "s3cret" || len(data) != 2 {
			t.Errorf("secret data %q, %v", data, err)
		}
	})
	t.Run("a bearer token is pushed with and stored as bearerToken", func(t *testing.T) {
		c, err := bootstrapOptions{url: "https://git.example.com/r.git", password: "t0ken", bearerToken: true}.credentials()
		if err != nil {
			t.Fatal(err)
		}
		if auth, ok := c.auth.(*githttp.TokenAuth); !ok || auth.Token != "t0ken" {
			t.Errorf("auth %#v", c.auth)
		}
		if data, _ := c.secretData(); string(data["bearerToken"]) != "t0ken" || len(data) != 1 {
			t.Errorf("secret data %q", data)
		}
	})
	t.Run("no password means no credentials and no Secret", func(t *testing.T) {
		c, err := bootstrapOptions{url: "https://git.example.com/r.git", username: "git"}.credentials()
		if err != nil {
			t.Fatal(err)
		}
		if c.auth != nil || c.data != nil {
			t.Errorf("auth %#v, data %q", c.auth, c.data)
		}
	})
	t.Run("an SSH key is stored with the host key the push checked, and not before it connected", func(t *testing.T) {
		dir := t.TempDir()
		key, identity := filepath.Join(dir, "id"), newSSHKey(t)
		if err := os.WriteFile(key, identity, 0o600); err != nil {
			t.Fatal(err)
		}
		hosts := filepath.Join(dir, "known_hosts")
		if err := os.WriteFile(hosts, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := bootstrapOptions{url: "ssh://git@git.example.com/r.git", privateKeyFile: key, knownHostsFile: hosts}.credentials()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.secretData(); err == nil {
			t.Error("the Secret was built before any host key was checked")
		}
		c.hostKey.line = "[127.0.0.1]:2222 ssh-ed25519 AAAA"
		data, err := c.secretData()
		if err != nil || !bytes.Equal(data["identity"], identity) || string(data["known_hosts"]) != "[127.0.0.1]:2222 ssh-ed25519 AAAA\n" {
			t.Errorf("secret data %q, %v", data, err)
		}
	})
}

// newSSHKey is a new ed25519 private key in OpenSSH PEM form.
func newSSHKey(t *testing.T) []byte {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(block)
}

func TestTheGitRepositoryFetchesAsTheUserThatPushed(t *testing.T) {
	tests := []struct {
		name, url, username, want string
	}{
		{"an ssh URL without a user gets --username", "ssh://git.example.com/org/fleet.git", "deploy", "ssh://deploy@git.example.com/org/fleet.git"},
		{"an ssh URL that names a user keeps it", "ssh://ops@git.example.com/org/fleet.git", "deploy", "ssh://ops@git.example.com/org/fleet.git"},
		{"an https URL is left as it is", "https://git.example.com/org/fleet.git", "deploy", "https://git.example.com/org/fleet.git"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (bootstrapOptions{url: tt.url, username: tt.username}).syncURL(); got != tt.want {
				t.Fatalf("sync URL %s, want %s", got, tt.want)
			}
		})
	}
}
