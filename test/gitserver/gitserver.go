// Package gitserver is a real Git server for tests: git http-backend
// (smart HTTP) on loopback behind basic auth (user sluice, password s3cret)
// or a bearer token (t0ken), serving one bare repository that the test
// pushes to with the system git.
package gitserver

import (
	"fmt"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sourcev1 "sluice.dev/sluice/api/source/v1"
)

// Server is a real Git server on loopback: git http-backend (smart HTTP)
// behind basic auth, serving one bare repository that the test pushes to
// from a working clone with the system git.
type Server struct {
	t testing.TB
	// URL is the repository's clone URL.
	URL  string
	root string
	work string

	mu      sync.Mutex
	fetches int
	// push is set by AllowPush: the SSH endpoint serves git-receive-pack.
	push atomic.Bool
}

// New starts the server until the test ends, with an empty repository
// whose default branch is main.
func New(t testing.TB) *Server {
	t.Helper()
	root := t.TempDir()
	s := &Server{t: t, root: root, work: filepath.Join(root, "work")}
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
	s.URL = srv.URL + "/repo.git"
	return s
}

func (s *Server) git(dir string, args ...string) string {
	s.t.Helper()
	out, err := s.tryGit(dir, args...)
	if err != nil {
		s.t.Fatal(err)
	}
	return out
}

// tryGit runs the system git in dir and returns its trimmed output, or an
// error with the output when git fails.
func (s *Server) tryGit(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com", "GIT_CONFIG_GLOBAL=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("git %v: %w\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// Commit writes files (an empty content removes one), commits and pushes
// them, and returns the commit's hash.
func (s *Server) Commit(files map[string]string) string {
	s.t.Helper()
	s.writeWork(files)
	s.git(s.work, "add", "--all")
	s.git(s.work, "commit", "--quiet", "--allow-empty", "-m", "change")
	s.git(s.work, "push", "--quiet", "--tags", "origin", "HEAD:main")
	return s.git(s.work, "rev-parse", "HEAD")
}

// Tag tags the last commit, annotated or not, and pushes the tag.
func (s *Server) Tag(name string, annotated bool) {
	s.t.Helper()
	if annotated {
		s.git(s.work, "tag", "-a", "-m", name, name)
	} else {
		s.git(s.work, "tag", name)
	}
	s.git(s.work, "push", "--quiet", "origin", name)
}

// Fetches counts the upload-packs served: the fetches that moved objects.
func (s *Server) Fetches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetches
}

// Source returns a Secret with the server's basic-auth credentials, named
// name+"-auth", and a GitRepository named name on the main branch that
// uses it, both in ns and not yet created.
func (s *Server) Source(ns, name string, interval time.Duration) (*corev1.Secret, *sourcev1.GitRepository) {
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-auth", Namespace: ns},
		StringData: map[string]string{"username": "sluice", "password": "s3cret"},
	}
	repo := &sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: sourcev1.GitRepositorySpec{
			URL: s.URL, Interval: metav1.Duration{Duration: interval},
			SecretRef: &sourcev1.LocalObjectReference{Name: secret.Name},
			Reference: &sourcev1.GitRepositoryRef{Branch: "main"},
		},
	}
	return secret, repo
}
