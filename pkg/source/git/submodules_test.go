package git

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"sluice.dev/sluice/test/gitserver"
)

func TestFetchChecksOutSubmodulesAtTheRecordedCommitWhenAsked(t *testing.T) {
	t.Parallel()
	lib := gitserver.New(t)
	lib.Commit(map[string]string{"lib.yaml": "v: 1\n"})
	nested := gitserver.New(t)
	nested.Commit(map[string]string{"deep.yaml": "deep: 1\n"})
	lib.AddSubmodule(nested.URL, "nested")
	app := gitserver.New(t)
	app.Commit(map[string]string{"app.yaml": "app: 1\n"})
	app.AddSubmodule(lib.URL, "vendor/lib")
	// The submodule's branch moves on: the tree still records the
	// commit it was added at.
	lib.Commit(map[string]string{"lib.yaml": "v: 2\n"})

	opts := Options{URL: app.URL, Ref: Ref{Branch: "main"}, Auth: auth}
	without, err := Fetch(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := without.Files["vendor/lib/lib.yaml"]; ok {
		t.Fatal("the submodule was checked out without RecurseSubmodules")
	}
	opts.RecurseSubmodules = true
	with, err := Fetch(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"app.yaml": "app: 1\n", "vendor/lib/lib.yaml": "v: 1\n", "vendor/lib/nested/deep.yaml": "deep: 1\n"}
	if len(with.Files) != len(want) {
		t.Fatalf("files %v, want %v (no .gitmodules, no .git)", keys(with.Files), want)
	}
	for name, content := range want {
		if string(with.Files[name]) != content {
			t.Fatalf("%s is %q, want %q", name, with.Files[name], content)
		}
	}
	if with.Revision != without.Revision || with.Digest == without.Digest {
		t.Fatalf("revisions %s and %s, digests %s and %s: want the parent's revision and a digest of the submodules too", with.Revision, without.Revision, with.Digest, without.Digest)
	}

	app.UpdateSubmodule("vendor/lib")
	moved, err := Fetch(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(moved.Files["vendor/lib/lib.yaml"]); got != "v: 2\n" || moved.Revision == with.Revision {
		t.Fatalf("after the submodule update: lib.yaml %q at %s", got, moved.Revision)
	}
}

func TestSubmodulesGetTheCredentialsOnlyOnTheRepositorysHost(t *testing.T) {
	t.Parallel()
	lib := gitserver.New(t)
	lib.Commit(map[string]string{"lib.yaml": "v: 1\n"})
	app := gitserver.New(t)
	app.Commit(map[string]string{"app.yaml": "app: 1\n"})
	// The same server by another name: a host the credentials are not
	// for.
	app.AddSubmodule(strings.Replace(lib.URL, "127.0.0.1", "localhost", 1), "vendor/lib")
	_, err := Fetch(t.Context(), Options{URL: app.URL, Ref: Ref{Branch: "main"}, Auth: auth, RecurseSubmodules: true})
	if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "submodule vendor/lib") {
		t.Fatalf("error %v, want an auth failure of submodule vendor/lib", err)
	}
}

func TestAFileSubmoduleIsRefused(t *testing.T) {
	t.Parallel()
	local := filepath.Join(t.TempDir(), "local")
	for _, args := range [][]string{{"init", "--quiet", local}, {"-C", local, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "--quiet", "--allow-empty", "-m", "x"}} {
		if out, err := exec.Command("git", args...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	app := gitserver.New(t)
	app.Commit(map[string]string{"app.yaml": "app: 1\n"})
	app.AddSubmodule("file://"+local, "local")
	_, err := Fetch(t.Context(), Options{URL: app.URL, Ref: Ref{Branch: "main"}, Auth: auth, RecurseSubmodules: true})
	if err == nil || !strings.Contains(err.Error(), "is not an http, https or ssh URL") {
		t.Fatalf("error %v, want the file URL refused", err)
	}
}

func TestSubmoduleURLs(t *testing.T) {
	tests := []struct {
		name, parent, raw, want string
	}{
		{"an absolute URL is kept", "https://git.example.com/org/app.git", "https://other.example.com/lib.git", "https://other.example.com/lib.git"},
		{"a sibling is resolved against the parent's URL", "https://git.example.com/org/app.git", "../lib.git", "https://git.example.com/org/lib.git"},
		{"so is a relative URL of an ssh parent", "ssh://git@git.example.com/org/app.git", "../../other/lib.git", "ssh://git@git.example.com/other/lib.git"},
		{"a file URL is refused", "https://git.example.com/org/app.git", "file:///etc", ""},
		{"an scp-like URL is ssh, and kept", "https://git.example.com/org/app.git", "git@git.example.com:org/lib.git", "git@git.example.com:org/lib.git"},
		{"a relative URL of an scp-like parent stays scp-like", "git@git.example.com:org/app.git", "../lib.git", "git@git.example.com:org/lib.git"},
		{"a local path is refused", "https://git.example.com/org/app.git", "/srv/git/lib.git", ""},
		{"a URL of another scheme is refused", "https://git.example.com/org/app.git", "git://git.example.com/lib.git", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := submoduleURL(tt.parent, tt.raw)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("got %s, want an error", got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %s, %v, want %s", got, err, tt.want)
			}
		})
	}
}

func TestSubmodulesGetTheParentsCredentialsOnlyOnItsHostAndScheme(t *testing.T) {
	tests := []struct {
		name, parent, sub string
		want              bool
	}{
		{"the same https host", "https://git.example.com/org/app.git", "https://git.example.com/org/lib.git", true},
		{"the same host on another port", "https://git.example.com/org/app.git", "https://git.example.com:8443/org/lib.git", true},
		{"another host", "https://git.example.com/org/app.git", "https://other.example.com/org/lib.git", false},
		{"plain HTTP on the host of an https parent", "https://git.example.com/org/app.git", "http://git.example.com/org/lib.git", false},
		{"ssh on the host of an https parent", "https://git.example.com/org/app.git", "ssh://git@git.example.com/org/lib.git", false},
		{"an scp-like URL on the host of an ssh parent", "ssh://git@git.example.com/org/app.git", "git@git.example.com:org/lib.git", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sameHost(tt.parent, tt.sub); got != tt.want {
				t.Fatalf("sameHost(%s, %s) = %v, want %v", tt.parent, tt.sub, got, tt.want)
			}
		})
	}
}

func keys(files map[string][]byte) []string {
	var out []string
	for k := range files {
		out = append(out, k)
	}
	return out
}
