package gitserver

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
)

// AllowPush lets clients push: git http-backend serves git-receive-pack
// (which it refuses by default without REMOTE_USER, and the CGI handler
// sets none), and so does the SSH endpoint. Until then a push fails as a
// push with read-only credentials does, with 403 over HTTP.
func (s *Server) AllowPush() {
	s.t.Helper()
	s.git(s.bare(), "config", "http.receivepack", "true")
	s.push.Store(true)
}

// ProtectBranch installs a pre-receive hook that declines every update
// of branch with a message, as a server's branch protection does. It
// replaces the hook of an earlier call.
func (s *Server) ProtectBranch(branch string) {
	s.t.Helper()
	hook := "#!/bin/sh\n" +
		"while read old new ref; do\n" +
		"  if [ \"$ref\" = \"refs/heads/" + branch + "\" ]; then\n" +
		"    echo \"branch " + branch + " is protected: pushes are not allowed\" >&2\n" +
		"    exit 1\n" +
		"  fi\n" +
		"done\n"
	if err := os.WriteFile(filepath.Join(s.bare(), "hooks", "pre-receive"), []byte(hook), 0o755); err != nil {
		s.t.Fatalf("write pre-receive hook: %v", err)
	}
}

// CommitTo commits files (an empty content removes one) on top of
// branch's head, or of main's when branch does not exist yet, from a
// fresh clone, and pushes the commit without force, as another user
// would. It returns the commit's hash.
func (s *Server) CommitTo(branch, message string, files map[string]string) string {
	s.t.Helper()
	dir := filepath.Join(s.t.TempDir(), "clone")
	s.git(s.root, "clone", "--quiet", s.bare(), dir)
	if _, err := s.tryGit(dir, "rev-parse", "--verify", "--quiet", "refs/remotes/origin/"+branch); err == nil {
		s.git(dir, "checkout", "--quiet", "-B", branch, "origin/"+branch)
	} else {
		s.git(dir, "checkout", "--quiet", "-B", branch)
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
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
	s.git(dir, "add", "--all")
	s.git(dir, "commit", "--quiet", "--allow-empty", "-m", message)
	s.git(dir, "push", "--quiet", "origin", "HEAD:refs/heads/"+branch)
	return s.git(dir, "rev-parse", "HEAD")
}

// Git runs the system git in the bare repository and returns its trimmed
// output, failing the test when git fails: for checking what a push left
// there, e.g. Git("log", "--format=%s", "main").
func (s *Server) Git(args ...string) string {
	s.t.Helper()
	return s.git(s.bare(), args...)
}

// IsAncestor tells whether ancestor is commit or one of its ancestors:
// whether a push that moved a branch from ancestor to commit kept its
// history.
func (s *Server) IsAncestor(ancestor, commit string) bool {
	s.t.Helper()
	_, err := s.tryGit(s.bare(), "merge-base", "--is-ancestor", ancestor, commit)
	if exit, ok := errors.AsType[*exec.ExitError](err); ok && exit.ExitCode() == 1 {
		return false
	}
	if err != nil {
		s.t.Fatal(err)
	}
	return true
}

// HasBranch tells whether the repository has branch.
func (s *Server) HasBranch(branch string) bool {
	s.t.Helper()
	_, err := s.tryGit(s.bare(), "rev-parse", "--verify", "--quiet", "refs/heads/"+branch)
	return err == nil
}

func (s *Server) bare() string { return filepath.Join(s.root, "repo.git") }
