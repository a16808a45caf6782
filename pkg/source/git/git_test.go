package git

import (
	"errors"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
)

// server is a real Git server on loopback: git http-backend (smart HTTP)
// behind basic auth, serving one bare repository that the test pushes to
// from a working clone with the system git.
type server struct {
	t    *testing.T
	url  string
	work string

	mu      sync.Mutex
	fetches int
}

func newServer(t *testing.T) *server {
	t.Helper()
	root := t.TempDir()
	s := &server{t: t, work: filepath.Join(root, "work")}
	s.git(root, "init", "--quiet", "--bare", "--initial-branch=main", "repo.git")
	s.git(root, "init", "--quiet", "--initial-branch=main", "work")
	s.git(s.work, "remote", "add", "origin", filepath.Join(root, "repo.git"))
	backend := &cgi.Handler{
		Path: "/usr/lib/git-core/git-http-backend",
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, _ := r.BasicAuth()
		if r.Header.Get("Authorization") != "Bearer t0ken" && (user != "sluice" || pass != "s3cret") {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if strings.HasSuffix(r.URL.Path, "/git-upload-pack") {
			s.mu.Lock()
			s.fetches++
			s.mu.Unlock()
		}
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL + "/repo.git"
	return s
}

func (s *server) git(dir string, args ...string) string {
	s.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com", "GIT_CONFIG_GLOBAL=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		s.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// commit writes files (an empty content removes one), commits and pushes
// them, and returns the commit's hash.
func (s *server) commit(files map[string]string) string {
	s.t.Helper()
	for name, content := range files {
		p := filepath.Join(s.work, name)
		if content == "" {
			_ = os.Remove(p)
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			s.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			s.t.Fatal(err)
		}
	}
	s.git(s.work, "add", "--all")
	s.git(s.work, "commit", "--quiet", "--allow-empty", "-m", "change")
	s.git(s.work, "push", "--quiet", "--tags", "origin", "HEAD:main")
	return s.git(s.work, "rev-parse", "HEAD")
}

func (s *server) tag(name string, annotated bool) {
	s.t.Helper()
	if annotated {
		s.git(s.work, "tag", "-a", "-m", name, name)
	} else {
		s.git(s.work, "tag", name)
	}
	s.git(s.work, "push", "--quiet", "origin", name)
}

func (s *server) fetchCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetches
}

var auth = &githttp.BasicAuth{Username: "sluice", Password: "s3cret"}

func TestFetchResolvesEveryKindOfRef(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	first := s.commit(map[string]string{"app/deploy.yaml": "v: 1\n"})
	s.tag("v1.0.0", true)
	second := s.commit(map[string]string{"app/deploy.yaml": "v: 2\n"})
	s.tag("v1.2.0", false)
	third := s.commit(map[string]string{"app/deploy.yaml": "v: 3\n"})
	s.tag("v2.0.0", true)

	tests := []struct {
		name     string
		ref      Ref
		revision string
		content  string
	}{
		{"a branch gives its head", Ref{Branch: "main"}, "main@sha1:" + third, "v: 3\n"},
		{"an annotated tag gives the commit it points at", Ref{Tag: "v1.0.0"}, "v1.0.0@sha1:" + first, "v: 1\n"},
		{"a lightweight tag gives its commit", Ref{Tag: "v1.2.0"}, "v1.2.0@sha1:" + second, "v: 2\n"},
		{"a semver range picks the highest tag in range", Ref{SemVer: ">=1.0.0 <2.0.0"}, "v1.2.0@sha1:" + second, "v: 2\n"},
		{"a commit gives that commit", Ref{Commit: first}, "sha1:" + first, "v: 1\n"},
		{"a commit on a branch names the branch", Ref{Branch: "main", Commit: second}, "main@sha1:" + second, "v: 2\n"},
		{"a commit wins over a tag", Ref{Tag: "v2.0.0", Commit: first}, "sha1:" + first, "v: 1\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := Fetch(t.Context(), Options{URL: s.url, Ref: tt.ref, Auth: auth})
			if err != nil {
				t.Fatal(err)
			}
			if a.Revision != tt.revision || string(a.Files["app/deploy.yaml"]) != tt.content {
				t.Fatalf("revision %s with %q, want %s with %q", a.Revision, a.Files["app/deploy.yaml"], tt.revision, tt.content)
			}
			if !strings.HasPrefix(a.Digest, "sha256:") || len(a.Digest) != len("sha256:")+64 {
				t.Fatalf("digest %q", a.Digest)
			}
		})
	}
}

func TestFetchFailsWithANamedError(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	s.commit(map[string]string{"a.yaml": "a: 1\n"})
	tests := []struct {
		name string
		opts Options
		want error
	}{
		{"a wrong password is an auth failure", Options{URL: s.url, Ref: Ref{Branch: "main"}, Auth: &githttp.BasicAuth{Username: "sluice", Password: "nope"}}, ErrAuth},
		{"no credentials is an auth failure", Options{URL: s.url, Ref: Ref{Branch: "main"}}, ErrAuth},
		{"a missing branch is not found", Options{URL: s.url, Ref: Ref{Branch: "nope"}, Auth: auth}, ErrRefNotFound},
		{"a missing tag is not found", Options{URL: s.url, Ref: Ref{Tag: "v9"}, Auth: auth}, ErrRefNotFound},
		{"a range no tag matches is not found", Options{URL: s.url, Ref: Ref{SemVer: ">=5.0.0"}, Auth: auth}, ErrRefNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Fetch(t.Context(), tt.opts)
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
		})
	}
}

func TestFetchSkipsTheCloneWhenTheRevisionIsUnchanged(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	s.commit(map[string]string{"a.yaml": "a: 1\n"})
	opts := Options{URL: s.url, Ref: Ref{Branch: "main"}, Auth: auth}
	a, err := Fetch(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	fetches := s.fetchCount()
	opts.LastRevision = a.Revision
	if _, err := Fetch(t.Context(), opts); !errors.Is(err, ErrUnchanged) {
		t.Fatalf("error %v, want ErrUnchanged", err)
	}
	if n := s.fetchCount(); n != fetches {
		t.Fatalf("%d upload-packs after an unchanged ls-remote, want %d", n, fetches)
	}
	next := s.commit(map[string]string{"a.yaml": "a: 2\n"})
	b, err := Fetch(t.Context(), opts)
	if err != nil || b.Revision != "main@sha1:"+next || b.Digest == a.Digest {
		t.Fatalf("after a push: %+v, %v", b, err)
	}
}

func TestFetchFiltersWithIgnoreRules(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	s.commit(map[string]string{
		"deploy/app.yaml":      "kind: Deployment\n",
		"deploy/secret.enc":    "x",
		"docs/logo.png":        "png",
		".github/workflow.yml": "on: push\n",
		".sourceignore":        "*.enc\n",
		"README.md":            "hello\n",
	})
	tests := []struct {
		name   string
		ignore string
		want   []string
	}{
		{"the defaults and .sourceignore drop CI config, media and what the repository excludes", "", []string{".sourceignore", "README.md", "deploy/app.yaml"}},
		{"spec patterns replace the defaults", "/README.md\n", []string{".github/workflow.yml", ".sourceignore", "deploy/app.yaml", "docs/logo.png"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := Fetch(t.Context(), Options{URL: s.url, Ref: Ref{Branch: "main"}, Auth: auth, Ignore: tt.ignore})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for name := range a.Files {
				got = append(got, name)
			}
			slices.Sort(got)
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("files %v, want %v", got, tt.want)
			}
		})
	}
}
