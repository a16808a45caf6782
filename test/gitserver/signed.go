package gitserver

import (
	"os"
	"path/filepath"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// CommitSignedPGP commits files (an empty content removes one) signed
// with an OpenPGP key, as go-git signs, pushes the commit and returns its
// hash.
func (s *Server) CommitSignedPGP(key *openpgp.Entity, files map[string]string) string {
	s.t.Helper()
	s.writeWork(files)
	repo, err := gogit.PlainOpen(s.work)
	if err != nil {
		s.t.Fatalf("open the working clone: %v", err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		s.t.Fatalf("worktree: %v", err)
	}
	if err := wt.AddWithOptions(&gogit.AddOptions{All: true}); err != nil {
		s.t.Fatalf("add: %v", err)
	}
	hash, err := wt.Commit("signed change", &gogit.CommitOptions{AllowEmptyCommits: true, Author: signature(), SignKey: key})
	if err != nil {
		s.t.Fatalf("commit: %v", err)
	}
	s.git(s.work, "push", "--quiet", "origin", "HEAD:main")
	return hash.String()
}

// TagSignedPGP tags the last commit with an annotated tag signed with an
// OpenPGP key, as go-git signs, and pushes the tag.
func (s *Server) TagSignedPGP(name string, key *openpgp.Entity) {
	s.t.Helper()
	repo, err := gogit.PlainOpen(s.work)
	if err != nil {
		s.t.Fatalf("open the working clone: %v", err)
	}
	head, err := repo.Head()
	if err != nil {
		s.t.Fatalf("head: %v", err)
	}
	if _, err := repo.CreateTag(name, head.Hash(), &gogit.CreateTagOptions{Tagger: signature(), Message: name, SignKey: key}); err != nil {
		s.t.Fatalf("tag %s: %v", name, err)
	}
	s.git(s.work, "push", "--quiet", "origin", name)
}

// CommitSignedSSH commits files (an empty content removes one) signed
// with the SSH private key in keyFile, as git signs with gpg.format ssh
// (through ssh-keygen -Y sign), pushes the commit and returns its hash.
func (s *Server) CommitSignedSSH(keyFile string, files map[string]string) string {
	s.t.Helper()
	s.writeWork(files)
	s.git(s.work, "add", "--all")
	s.git(s.work, "-c", "gpg.format=ssh", "-c", "user.signingkey="+keyFile, "commit", "--quiet", "--allow-empty", "-S", "-m", "ssh-signed change")
	s.git(s.work, "push", "--quiet", "origin", "HEAD:main")
	return s.git(s.work, "rev-parse", "HEAD")
}

// TagSignedSSH tags the last commit with an annotated tag signed with the
// SSH private key in keyFile, as git tag -s signs with gpg.format ssh, and
// pushes the tag.
func (s *Server) TagSignedSSH(name, keyFile string) {
	s.t.Helper()
	s.git(s.work, "-c", "gpg.format=ssh", "-c", "user.signingkey="+keyFile, "tag", "-s", "-m", name, name)
	s.git(s.work, "push", "--quiet", "origin", name)
}

// AddSubmodule adds the repository at url (another Server's URL, which
// serves the same credentials) as a submodule at path with the system
// git, commits and pushes it, and returns the commit's hash.
func (s *Server) AddSubmodule(url, path string) string {
	s.t.Helper()
	s.git(s.work, "-c", "protocol.file.allow=always", "-c", "http.extraHeader=Authorization: Bearer t0ken", "submodule", "--quiet", "add", url, path)
	s.git(s.work, "commit", "--quiet", "-m", "add submodule "+path)
	s.git(s.work, "push", "--quiet", "origin", "HEAD:main")
	return s.git(s.work, "rev-parse", "HEAD")
}

// UpdateSubmodule moves the submodule at path to the head of its
// remote's main branch, commits and pushes that, and returns the commit's
// hash.
func (s *Server) UpdateSubmodule(path string) string {
	s.t.Helper()
	dir := filepath.Join(s.work, path)
	s.git(dir, "-c", "http.extraHeader=Authorization: Bearer t0ken", "fetch", "--quiet", "origin", "main")
	s.git(dir, "checkout", "--quiet", "FETCH_HEAD")
	s.git(s.work, "add", path)
	s.git(s.work, "commit", "--quiet", "-m", "update submodule "+path)
	s.git(s.work, "push", "--quiet", "origin", "HEAD:main")
	return s.git(s.work, "rev-parse", "HEAD")
}

// writeWork writes files into the working clone; an empty content
// removes one.
func (s *Server) writeWork(files map[string]string) {
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
}

// signature is the author the working clone commits as.
func signature() *object.Signature {
	return &object.Signature{Name: "t", Email: "t@example.com", When: time.Now()}
}
