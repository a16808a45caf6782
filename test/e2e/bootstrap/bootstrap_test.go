package bootstrap

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	syncv1 "sluice.dev/sluice/api/sync/v1"
	"sluice.dev/sluice/pkg/cli"
	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/gitserver"
	"sluice.dev/sluice/test/inprocess"
)

const (
	namespace   = "sluice-system"
	version     = "v9.9.9-test"
	clusterPath = "clusters/my-cluster"
)

// pushCounter is a reverse proxy in front of the Git server that counts
// the requests of pushes (git-receive-pack), so that a test can tell
// that a run pushed nothing at all, not only that the branch did not
// move.
type pushCounter struct {
	URL    string
	pushes atomic.Int64
}

func countPushes(t *testing.T, target string) *pushCounter {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: u.Scheme, Host: u.Host})
	p := &pushCounter{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/git-receive-pack") || r.URL.Query().Get("service") == "git-receive-pack" {
			p.pushes.Add(1)
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL + u.Path
	return p
}

// bootstrap runs `sluicectl bootstrap git` in process against the
// control plane and returns its progress output.
func bootstrap(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := cli.NewRoot(cli.Streams{Out: &out, Err: &errOut}, cli.WithVersion(version))
	root.SetArgs(append([]string{"--kubeconfig", cp.Kubeconfig, "--timeout", "3m", "bootstrap", "git"}, args...))
	err := root.ExecuteContext(t.Context())
	t.Logf("sluicectl bootstrap git %s\n%s%s", strings.Join(args, " "), out.String(), errOut.String())
	return errOut.String(), err
}

func mustContain(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("the output does not say %q:\n%s", w, out)
		}
	}
}

func get[T client.Object](t *testing.T, obj T, name string) T {
	t.Helper()
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: namespace, Name: name}, obj); err != nil {
		t.Fatal(err)
	}
	return obj
}

// waitApplied waits until the sync Kustomization has applied the
// branch's head and is Ready.
func waitApplied(t *testing.T, server *gitserver.Server) *syncv1.Kustomization {
	t.Helper()
	want := "main@sha1:" + server.Git("rev-parse", "main")
	ks := &syncv1.Kustomization{}
	controlplane.Eventually(t, 2*time.Minute, "the Kustomization at "+want, func(ctx context.Context) (bool, string) {
		if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: namespace}, ks); err != nil {
			return false, err.Error()
		}
		ready := meta.FindStatusCondition(ks.Status.Conditions, "Ready")
		return ready != nil && ready.Status == metav1.ConditionTrue && ks.Status.LastAppliedRevision == want,
			"revision " + ks.Status.LastAppliedRevision + ", conditions " + toJSON(ks.Status.Conditions)
	})
	return ks
}

func toJSON(v any) string {
	data, _ := json.Marshal(v)
	return string(data)
}

// state is what a bootstrap that has nothing to do must leave alone:
// every object of the inventory and the Secret, by resourceVersion. The
// GitRepository and the Kustomization are compared by generation,
// metadata and what sluicectl's field manager wrote instead, since the
// operator writes their status as it reconciles.
func state(t *testing.T, ks *syncv1.Kustomization) map[string]string {
	t.Helper()
	out := map[string]string{}
	ids := []string{namespace + "_" + namespace + "__Secret"}
	for _, e := range ks.Status.Inventory.Entries {
		ids = append(ids, e.ID+"_"+e.Version)
	}
	for _, id := range ids {
		parts := strings.Split(id, "_")
		ns, name, group, kind, v := parts[0], parts[1], parts[2], parts[3], "v1"
		if len(parts) == 5 {
			v = parts[4]
		}
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(schema.GroupVersionKind{Group: group, Version: v, Kind: kind})
		if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
			t.Fatalf("read %s: %v", id, err)
		}
		if !strings.HasSuffix(group, "sluice.dev") || kind == "CustomResourceDefinition" {
			out[id] = u.GetResourceVersion()
			continue
		}
		var mine []metav1.ManagedFieldsEntry
		for _, m := range u.GetManagedFields() {
			if m.Manager == cli.FieldManager {
				mine = append(mine, m)
			}
		}
		out[id] = toJSON([]any{u.GetGeneration(), u.GetLabels(), u.GetAnnotations(), mine})
	}
	return out
}

// raceHook is an update hook that, on the first push to main only, moves
// main to a commit of someone else just before the server updates the
// ref, so that the push loses the race as it would to a colleague's.
const raceHook = `#!/bin/sh
if [ "$1" = refs/heads/main ] && [ ! -e "$GIT_DIR/raced" ]; then
  touch "$GIT_DIR/raced"
  c=$(echo x | GIT_AUTHOR_NAME=other GIT_AUTHOR_EMAIL=other@example.com GIT_COMMITTER_NAME=other GIT_COMMITTER_EMAIL=other@example.com \
    git commit-tree -p "$2" -m "Someone else's commit" "$2^{tree}")
  git update-ref refs/heads/main "$c" "$2"
fi
exit 0
`

func TestBootstrapGit(t *testing.T) {
	server := gitserver.New(t)
	server.AllowPush()
	proxy := countPushes(t, server.URL)
	// The operator, through its production wiring, runs in the test;
	// kwok runs the pod of the Deployment bootstrap installs. It watches
	// every namespace, as the installed one does.
	inprocess.Start(t, cp.Config, "", testr.NewWithOptions(t, testr.Options{Verbosity: 0}))
	httpArgs := []string{"--url", proxy.URL, "--allow-insecure-http", "--path", clusterPath, "--username", "sluice", "--password", "s3cret", "--interval", "2s"}

	var ks *syncv1.Kustomization
	t.Run("a first bootstrap of an empty repository commits the three files, installs Sluice, and the cluster syncs itself", func(t *testing.T) {
		out, err := bootstrap(t, httpArgs...)
		if err != nil {
			t.Fatal(err)
		}
		mustContain(t, out, `✔ created branch "main" with the component manifests`, `► installing components in "sluice-system" namespace`,
			"✔ reconciled source secret", `✔ committed and pushed the sync manifests to "main"`, "✔ Kustomization reconciled successfully", "✔ all components are healthy")
		if log := server.Git("log", "--format=%an <%ae>: %s", "main"); log != "Sluice <sluice@users.noreply.sluice.dev>: Add Sluice sync manifests\nSluice <sluice@users.noreply.sluice.dev>: Add Sluice "+version+" component manifests" {
			t.Errorf("history:\n%s", log)
		}
		files := server.Git("ls-tree", "-r", "--name-only", "main")
		if want := "clusters/my-cluster/sluice-system/kustomization.yaml\nclusters/my-cluster/sluice-system/sluice-components.yaml\nclusters/my-cluster/sluice-system/sluice-sync.yaml"; files != want {
			t.Errorf("files on main:\n%s\nwant:\n%s", files, want)
		}

		repo := get(t, &sourcev1.GitRepository{}, namespace)
		if ready := meta.FindStatusCondition(repo.Status.Conditions, "Ready"); ready == nil || ready.Status != metav1.ConditionTrue {
			t.Errorf("GitRepository conditions %s", toJSON(repo.Status.Conditions))
		}
		if repo.Spec.URL != proxy.URL || repo.Spec.Reference.Branch != "main" || repo.Spec.SecretRef == nil || repo.Spec.SecretRef.Name != namespace {
			t.Errorf("GitRepository spec %s", toJSON(repo.Spec))
		}
		ks = waitApplied(t, server)
		if ks.Spec.Path != "./"+clusterPath || !ks.Spec.Prune {
			t.Errorf("Kustomization spec %s", toJSON(ks.Spec))
		}
		var inventory []string
		for _, e := range ks.Status.Inventory.Entries {
			inventory = append(inventory, e.ID)
		}
		for _, id := range []string{
			"_canaries.sluice.dev_apiextensions.k8s.io_CustomResourceDefinition",
			"_kustomizations.sync.sluice.dev_apiextensions.k8s.io_CustomResourceDefinition",
			"sluice-system_sluice_apps_Deployment",
			"sluice-system_sluice-system_source.sluice.dev_GitRepository",
			"sluice-system_sluice-system_sync.sluice.dev_Kustomization",
		} {
			if !slices.Contains(inventory, id) {
				t.Errorf("the Kustomization does not manage %s; inventory %q", id, inventory)
			}
		}
		secret := get(t, &corev1.Secret{}, namespace)
		if got := slices.Sorted(maps.Keys(secret.Data)); !slices.Equal(got, []string{"password", "username"}) || string(secret.Data["username"]) != "sluice" {
			t.Errorf("Secret keys %q", got)
		}
		deploy := get(t, &appsv1.Deployment{}, "sluice")
		if deploy.Status.AvailableReplicas != 1 {
			t.Errorf("the operator Deployment has %d available replicas", deploy.Status.AvailableReplicas)
		}
	})
	if t.Failed() {
		return
	}

	t.Run("a commit under the path is applied by the cluster's own Kustomization", func(t *testing.T) {
		server.CommitTo("main", "Add an app", map[string]string{
			clusterPath + "/apps/app.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n  namespace: default\ndata:\n  greeting: hello\n",
		})
		ks = waitApplied(t, server)
		cm := &corev1.ConfigMap{}
		if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: "default", Name: "app"}, cm); err != nil || cm.Data["greeting"] != "hello" {
			t.Fatalf("ConfigMap default/app: %v %v", cm.Data, err)
		}
	})

	t.Run("a second bootstrap with the same flags commits, pushes and changes nothing", func(t *testing.T) {
		before, head, pushes := state(t, ks), server.Git("rev-parse", "main"), proxy.pushes.Load()
		out, err := bootstrap(t, httpArgs...)
		if err != nil {
			t.Fatal(err)
		}
		mustContain(t, out, "✔ component manifests are up to date", "✔ sync manifests are up to date",
			`✔ components are applied by Kustomization sluice-system/sluice-system from Git`, "✔ Kustomization reconciled successfully")
		if remote := strings.Fields(server.Git("ls-remote", ".", "refs/heads/main"))[0]; remote != head {
			t.Errorf("main moved from %s to %s", head, remote)
		}
		if n := proxy.pushes.Load() - pushes; n != 0 {
			t.Errorf("%d push requests reached the server", n)
		}
		after := state(t, ks)
		for id, v := range before {
			if after[id] != v {
				t.Errorf("%s changed: %s -> %s", id, v, after[id])
			}
		}
	})

	t.Run("a push that loses a race to someone else's commit is made again on top of it, never forced", func(t *testing.T) {
		hook := filepath.Join(server.Git("rev-parse", "--absolute-git-dir"), "hooks", "update")
		if err := os.WriteFile(hook, []byte(raceHook), 0o755); err != nil {
			t.Fatal(err)
		}
		before := server.Git("rev-parse", "main")
		out, err := bootstrap(t, append(slices.Clone(httpArgs), "--interval", "3s", "--commit-message-appendix", "[ci skip]", "--no-wait")...)
		if err != nil {
			t.Fatal(err)
		}
		mustContain(t, out, "on a fresh clone after the branch moved (2 tries)")
		if strings.Contains(out, "◎ waiting") {
			t.Errorf("--no-wait waited:\n%s", out)
		}
		if body := server.Git("log", "-1", "--format=%B", "main"); body != "Add Sluice sync manifests\n\n[ci skip]" {
			t.Errorf("commit message %q, want the appendix after a blank line", body)
		}
		log := server.Git("log", "--format=%s", "main")
		if !strings.HasPrefix(log, "Add Sluice sync manifests\nSomeone else's commit\nAdd an app\n") {
			t.Fatalf("history:\n%s", log)
		}
		other := server.Git("rev-parse", "main^")
		if !server.IsAncestor(before, other) || !server.IsAncestor(other, "main") {
			t.Fatalf("the history was rewritten:\n%s", server.Git("log", "--all", "--graph", "--oneline"))
		}
		if repo := get(t, &sourcev1.GitRepository{}, namespace); repo.Spec.Interval.Duration != 3*time.Second {
			t.Errorf("GitRepository interval %s, want the new 3s", repo.Spec.Interval.Duration)
		}
		waitApplied(t, server)
	})

	t.Run("a bootstrap over SSH moves the sync to the ssh URL and the Secret to the key and the host key it checked", func(t *testing.T) {
		endpoint := server.ServeSSH()
		dir := t.TempDir()
		key, hosts := filepath.Join(dir, "id"), filepath.Join(dir, "known_hosts")
		if err := os.WriteFile(key, endpoint.Identity, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(hosts, endpoint.KnownHosts, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := bootstrap(t, "--url", endpoint.URL, "--private-key-file", key, "--known-hosts-file", hosts, "--path", clusterPath, "--interval", "3s")
		if err != nil {
			t.Fatal(err)
		}
		mustContain(t, out, "✔ component manifests are up to date", `✔ committed and pushed the sync manifests to "main"`, "✔ Kustomization reconciled successfully")
		secret := get(t, &corev1.Secret{}, namespace)
		if got := slices.Sorted(maps.Keys(secret.Data)); !slices.Equal(got, []string{"identity", "known_hosts"}) {
			t.Errorf("Secret keys %q, want the basic auth keys gone", got)
		}
		if !bytes.Equal(secret.Data["known_hosts"], endpoint.KnownHosts) || !bytes.Equal(secret.Data["identity"], endpoint.Identity) {
			t.Errorf("Secret known_hosts %q, want %q", secret.Data["known_hosts"], endpoint.KnownHosts)
		}
		if repo := get(t, &sourcev1.GitRepository{}, namespace); repo.Spec.URL != endpoint.URL {
			t.Errorf("GitRepository URL %s", repo.Spec.URL)
		}
		waitApplied(t, server)
	})

	t.Run("a push the server refuses fails with its reason and leaves the branch and the cluster as they were", func(t *testing.T) {
		server.ProtectBranch("main")
		before := server.Git("rev-parse", "main")
		secret, repo := get(t, &corev1.Secret{}, namespace), get(t, &sourcev1.GitRepository{}, namespace)
		out, err := bootstrap(t, httpArgs...)
		if err == nil || !strings.Contains(err.Error(), "branch main is protected") {
			t.Fatalf("error %v, want the server's refusal\n%s", err, out)
		}
		if after := server.Git("rev-parse", "main"); after != before {
			t.Errorf("main moved from %s to %s", before, after)
		}
		// The ssh sync keeps its key: the basic auth of the refused run
		// was not written.
		if got := get(t, &corev1.Secret{}, namespace); got.ResourceVersion != secret.ResourceVersion {
			t.Errorf("the Secret changed: keys %q", slices.Sorted(maps.Keys(got.Data)))
		}
		if got := get(t, &sourcev1.GitRepository{}, namespace); got.Generation != repo.Generation || got.Spec.URL != repo.Spec.URL {
			t.Errorf("the GitRepository changed: %s", got.Spec.URL)
		}
	})

	t.Run("another path is refused before anything is committed, as it would move the cluster's sync", func(t *testing.T) {
		pushes := proxy.pushes.Load()
		_, err := bootstrap(t, "--url", proxy.URL, "--allow-insecure-http", "--path", "clusters/other", "--username", "sluice", "--password", "s3cret")
		if err == nil || !strings.Contains(err.Error(), `would overwrite the path "./clusters/my-cluster"`) {
			t.Fatalf("error %v", err)
		}
		if n := proxy.pushes.Load() - pushes; n != 0 {
			t.Errorf("%d push requests reached the server", n)
		}
	})

	t.Run("a first push to an empty repository that the server refuses fails with its reason and creates nothing", func(t *testing.T) {
		empty := gitserver.New(t)
		empty.AllowPush()
		empty.ProtectBranch("main")
		secret := get(t, &corev1.Secret{}, namespace)
		_, err := bootstrap(t, "--url", empty.URL, "--allow-insecure-http", "--path", clusterPath, "--username", "sluice", "--password", "s3cret")
		if err == nil || !strings.Contains(err.Error(), "branch main is protected") {
			t.Fatalf("error %v, want the server's refusal", err)
		}
		if empty.HasBranch("main") {
			t.Error("the refused push created main")
		}
		if got := get(t, &corev1.Secret{}, namespace); got.ResourceVersion != secret.ResourceVersion {
			t.Errorf("the Secret changed: keys %q", slices.Sorted(maps.Keys(got.Data)))
		}
	})
}
