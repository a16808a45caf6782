package git

import (
	"bytes"
	"errors"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/memory"

	"sluice.dev/sluice/test/gitserver"
)

var bot = Signature{Name: "Sluice Bot", Email: "bot@sluice.dev"}

// setFile is an edit that writes content to name.
func setFile(name, content, message string) Edit {
	return func(map[string][]byte) (map[string][]byte, string, error) {
		return map[string][]byte{name: []byte(content)}, message, nil
	}
}

// pushable starts a server that takes pushes, with two commits on main,
// and returns it with the head. Two, so that a shallow clone's commit
// has a parent it lacks, as in any real repository.
func pushable(t *testing.T) (*gitserver.Server, string) {
	t.Helper()
	s := gitserver.New(t)
	s.Commit(map[string]string{"app/deploy.yaml": "image: app:0\n"})
	head := s.Commit(map[string]string{"app/deploy.yaml": "image: app:1\n"})
	s.AllowPush()
	return s, head
}

// sshAuth serves s over SSH as well and returns the URL and the auth a
// Flux secret with the deploy key gives.
func sshRemote(t *testing.T, s *gitserver.Server) (string, transport.AuthMethod) {
	t.Helper()
	srv := s.ServeSSH()
	a, err := AuthFromSecret(srv.URL, map[string][]byte{"identity": srv.Identity, "known_hosts": srv.KnownHosts})
	if err != nil {
		t.Fatal(err)
	}
	return srv.URL, a
}

func TestUpdateCommitsAndPushesToTheCheckoutBranch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		remote func(t *testing.T, s *gitserver.Server) (string, transport.AuthMethod)
	}{
		{"over HTTPS with basic auth", func(_ *testing.T, s *gitserver.Server) (string, transport.AuthMethod) { return s.URL, auth }},
		{"over SSH with the deploy key", sshRemote},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, before := pushable(t)
			u, a := tt.remote(t, s)
			p, err := Update(t.Context(), UpdateOptions{URL: u, Auth: a, CheckoutRef: Ref{Branch: "main"}, Author: bot},
				setFile("app/deploy.yaml", "image: app:2\n", "Update app to 2"))
			if err != nil {
				t.Fatal(err)
			}
			if want := (Pushed{Commit: s.Git("rev-parse", "main"), Parent: before, Branch: "main", Attempts: 1}); p != want {
				t.Fatalf("pushed %+v, want %+v", p, want)
			}
			if got, want := s.Git("log", "-1", "--format=%an%n%ae%n%cn%n%ce%n%s", "main"), "Sluice Bot\nbot@sluice.dev\nSluice Bot\nbot@sluice.dev\nUpdate app to 2"; got != want {
				t.Fatalf("author, committer and subject:\n%s\nwant\n%s", got, want)
			}
			if got := s.Git("show", "--stat", "--format=", "main"); !strings.Contains(got, "app/deploy.yaml") || !strings.Contains(got, "1 file changed") {
				t.Fatalf("the commit changes:\n%s\nwant app/deploy.yaml only", got)
			}
			if got := s.Git("show", "main:app/deploy.yaml"); got != "image: app:2" {
				t.Fatalf("app/deploy.yaml on main is %q", got)
			}
			if !s.IsAncestor(before, p.Commit) {
				t.Fatalf("the old head %s is not an ancestor of %s: history was rewritten", before, p.Commit)
			}
		})
	}
}

func TestUpdatePushesToAnotherBranch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		checkout Ref
		branch   string
		refspec  string
		// parent prepares the server and returns the commit the update
		// must land on, given main's first commit and its head.
		parent func(s *gitserver.Server, first, head string) string
		// lands lists the branches that must point at the new commit;
		// main must stay at head unless it is listed.
		lands      []string
		pushedTo   string
		wantsFiles []string
	}{
		{
			name: "a push branch that does not exist is created from the checkout branch", checkout: Ref{Branch: "main"}, branch: "auto",
			parent: func(_ *gitserver.Server, _, head string) string { return head },
			lands:  []string{"auto"}, pushedTo: "auto",
		},
		{
			name: "a push branch that exists gets the commit on top of its own head", checkout: Ref{Branch: "main"}, branch: "auto",
			parent: func(s *gitserver.Server, _, _ string) string {
				return s.CommitTo("auto", "an earlier update", map[string]string{"app/other.yaml": "other: 1\n"})
			},
			lands: []string{"auto"}, pushedTo: "auto", wantsFiles: []string{"app/other.yaml"},
		},
		{
			name: "a refspec pushes the commit to its destination as well as to the checkout branch", checkout: Ref{Branch: "main"},
			refspec: "refs/heads/main:refs/heads/auto",
			parent:  func(_ *gitserver.Server, _, head string) string { return head },
			lands:   []string{"main", "auto"}, pushedTo: "main",
		},
		{
			name: "a tag checkout pushes to the push branch", checkout: Ref{Tag: "v1.0.0"}, branch: "auto",
			parent: func(_ *gitserver.Server, first, _ string) string { return first },
			lands:  []string{"auto"}, pushedTo: "auto",
		},
		{
			name: "a commit checkout pushes to the push branch", checkout: Ref{Commit: "first"}, branch: "auto",
			parent: func(_ *gitserver.Server, first, _ string) string { return first },
			lands:  []string{"auto"}, pushedTo: "auto",
		},
		{
			name: "a tag checkout with only a refspec pushes the refspec alone", checkout: Ref{Tag: "v1.0.0"},
			refspec: "HEAD:refs/heads/review",
			parent:  func(_ *gitserver.Server, first, _ string) string { return first },
			lands:   []string{"review"}, pushedTo: "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, first := pushable(t)
			s.Tag("v1.0.0", true)
			head := s.Commit(map[string]string{"README.md": "# app\n"})
			parent := tt.parent(s, first, head)
			checkout := tt.checkout
			if checkout.Commit == "first" {
				checkout.Commit = first
			}
			p, err := Update(t.Context(), UpdateOptions{URL: s.URL, Auth: auth, CheckoutRef: checkout, PushBranch: tt.branch, PushRefspec: tt.refspec, Author: bot},
				setFile("app/deploy.yaml", "image: app:2\n", "Update app to 2"))
			if err != nil {
				t.Fatal(err)
			}
			if p.Parent != parent || p.Branch != tt.pushedTo {
				t.Fatalf("pushed %+v, want parent %s and branch %q", p, parent, tt.pushedTo)
			}
			for _, b := range tt.lands {
				if got := s.Git("rev-parse", b); got != p.Commit {
					t.Fatalf("%s is at %s, want the new commit %s", b, got, p.Commit)
				}
			}
			if got := s.Git("rev-parse", p.Commit+"^"); got != parent {
				t.Fatalf("the new commit's parent on the server is %s, want %s", got, parent)
			}
			if !slices.Contains(tt.lands, "main") {
				if got := s.Git("rev-parse", "main"); got != head {
					t.Fatalf("main moved to %s", got)
				}
			}
			if got := s.Git("show", p.Commit+":app/deploy.yaml"); got != "image: app:2" {
				t.Fatalf("app/deploy.yaml in the new commit is %q", got)
			}
			for _, f := range tt.wantsFiles {
				s.Git("cat-file", "-e", p.Commit+":"+f)
			}
		})
	}
}

func TestUpdateWithNoChangeCommitsNothing(t *testing.T) {
	t.Parallel()
	s, head := pushable(t)
	tests := []struct {
		name  string
		files map[string][]byte
	}{
		{"an edit that returns no files", nil},
		{"an edit that writes a file unchanged", map[string][]byte{"app/deploy.yaml": []byte("image: app:1\n")}},
		{"an edit that removes a file that does not exist", map[string][]byte{"app/gone.yaml": nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			_, err := Update(t.Context(), UpdateOptions{URL: s.URL, Auth: auth, CheckoutRef: Ref{Branch: "main"}, Author: bot},
				func(files map[string][]byte) (map[string][]byte, string, error) {
					calls++
					if string(files["app/deploy.yaml"]) != "image: app:1\n" {
						t.Errorf("the edit got %q for app/deploy.yaml", files["app/deploy.yaml"])
					}
					return tt.files, "nothing", nil
				})
			if !errors.Is(err, ErrNoChange) {
				t.Fatalf("error %v, want ErrNoChange", err)
			}
			if calls != 1 {
				t.Fatalf("the edit ran %d times, want once", calls)
			}
			if got := s.Git("rev-parse", "main"); got != head {
				t.Fatalf("main moved to %s", got)
			}
		})
	}
}

func TestUpdateRetriesOnTheNewTreeWhenTheBranchMovesBeforeThePush(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// interlope pushes to main, as someone else would between the
		// update's clone and its push, and returns the commit and its
		// subject.
		interlope func(t *testing.T, s *gitserver.Server) (string, string)
	}{
		{"when a git push lands in between", func(_ *testing.T, s *gitserver.Server) (string, string) {
			return s.CommitTo("main", "a change by hand", map[string]string{"README.md": "# app\n"}), "a change by hand"
		}},
		{"when another update lands in between", func(t *testing.T, s *gitserver.Server) (string, string) {
			p, err := Update(t.Context(), UpdateOptions{URL: s.URL, Auth: auth, CheckoutRef: Ref{Branch: "main"}, Author: bot},
				setFile("README.md", "# app\n", "another automation"))
			if err != nil {
				t.Fatal(err)
			}
			return p.Commit, "another automation"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, before := pushable(t)
			var seen [][]string
			var between, subject string
			p, err := Update(t.Context(), UpdateOptions{URL: s.URL, Auth: auth, CheckoutRef: Ref{Branch: "main"}, Author: bot, Backoff: time.Millisecond},
				func(files map[string][]byte) (map[string][]byte, string, error) {
					seen = append(seen, slices.Sorted(func(yield func(string) bool) {
						for name := range files {
							if !yield(name) {
								return
							}
						}
					}))
					if len(seen) == 1 {
						between, subject = tt.interlope(t, s)
					}
					return map[string][]byte{"app/deploy.yaml": []byte("image: app:2\n")}, "Update app to 2", nil
				})
			if err != nil {
				t.Fatal(err)
			}
			if p.Attempts != 2 || p.Parent != between {
				t.Fatalf("pushed %+v, want 2 attempts on top of %s", p, between)
			}
			if want := [][]string{{"app/deploy.yaml"}, {"README.md", "app/deploy.yaml"}}; !slices.EqualFunc(seen, want, slices.Equal) {
				t.Fatalf("the edit saw %v, want the first tree and then the moved one: %v", seen, want)
			}
			if got, want := s.Git("log", "--format=%s", "main"), "Update app to 2\n"+subject+"\nchange\nchange"; got != want {
				t.Fatalf("main's log:\n%s\nwant\n%s", got, want)
			}
			if !s.IsAncestor(before, p.Commit) || !s.IsAncestor(between, p.Commit) {
				t.Fatal("history was rewritten")
			}
		})
	}
}

func TestConcurrentUpdatesOfOneBranchBothLand(t *testing.T) {
	t.Parallel()
	s, before := pushable(t)
	// Both edits wait for each other, so that both updates clone the same
	// head and one of them must retry.
	var arrived sync.WaitGroup
	arrived.Add(2)
	both := make(chan struct{})
	go func() { arrived.Wait(); close(both) }()
	edit := func(name string) Edit {
		first := true
		return func(map[string][]byte) (map[string][]byte, string, error) {
			if first {
				first = false
				arrived.Done()
				select {
				case <-both:
				case <-time.After(30 * time.Second):
					return nil, "", errors.New("the other update never reached its edit")
				}
			}
			return map[string][]byte{"app/" + name + ".yaml": []byte("image: " + name + ":2\n")}, "Update " + name, nil
		}
	}
	names := []string{"api", "web"}
	pushed := make([]Pushed, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() {
			pushed[i], errs[i] = Update(t.Context(), UpdateOptions{URL: s.URL, Auth: auth, CheckoutRef: Ref{Branch: "main"}, Author: bot, Backoff: time.Millisecond}, edit(name))
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if attempts := pushed[0].Attempts + pushed[1].Attempts; attempts != 3 {
		t.Fatalf("%d attempts in all (%+v), want 3: one update retried once", attempts, pushed)
	}
	log := strings.Split(s.Git("log", "--format=%s", "main"), "\n")
	if len(log) != 4 || !slices.Contains(log, "Update api") || !slices.Contains(log, "Update web") {
		t.Fatalf("main's log %q, want both updates on top of the two commits before", log)
	}
	head := s.Git("rev-parse", "main")
	if head != pushed[0].Commit && head != pushed[1].Commit {
		t.Fatalf("main is at %s, neither update's commit", head)
	}
	if !s.IsAncestor(pushed[0].Commit, head) || !s.IsAncestor(pushed[1].Commit, head) || !s.IsAncestor(before, head) {
		t.Fatal("history was rewritten")
	}
	for _, name := range names {
		if got := s.Git("show", "main:app/"+name+".yaml"); got != "image: "+name+":2" {
			t.Fatalf("app/%s.yaml on main is %q", name, got)
		}
	}
}

func TestUpdateGivesUpWhenTheBranchKeepsMoving(t *testing.T) {
	t.Parallel()
	s, _ := pushable(t)
	calls := 0
	var last string
	_, err := Update(t.Context(), UpdateOptions{URL: s.URL, Auth: auth, CheckoutRef: Ref{Branch: "main"}, Author: bot, Retries: 2, Backoff: time.Millisecond},
		func(map[string][]byte) (map[string][]byte, string, error) {
			calls++
			last = s.CommitTo("main", "a change by hand", map[string]string{"README.md": strings.Repeat("#", calls) + "\n"})
			return map[string][]byte{"app/deploy.yaml": []byte("image: app:2\n")}, "Update app to 2", nil
		})
	if !errors.Is(err, ErrNonFastForward) {
		t.Fatalf("error %v, want ErrNonFastForward", err)
	}
	if calls != 3 {
		t.Fatalf("%d tries, want 3: the first and 2 retries", calls)
	}
	if got := s.Git("rev-parse", "main"); got != last {
		t.Fatalf("main is at %s, want the last change by hand %s", got, last)
	}
	if authors := s.Git("log", "--format=%an", "main"); strings.Contains(authors, bot.Name) {
		t.Fatalf("an update landed after all:\n%s", authors)
	}
}

func TestUpdateFailsWithANamedError(t *testing.T) {
	t.Parallel()
	open, _ := pushable(t)
	open.CommitTo("release", "release 1", map[string]string{"app/deploy.yaml": "image: app:1\n"})
	open.ProtectBranch("release")
	sshURL, sshAuth := sshRemote(t, open)
	readOnly := gitserver.New(t)
	readOnly.Commit(map[string]string{"app/deploy.yaml": "image: app:1\n"})
	errEdit := errors.New("no policy for app")

	tests := []struct {
		name   string
		server *gitserver.Server
		url    string
		auth   transport.AuthMethod
		opts   UpdateOptions
		edit   Edit
		// want is the error to match, or nil for any; says is in it.
		want error
		says string
	}{
		{
			name: "credentials that may only read are an auth failure", server: readOnly, url: readOnly.URL, auth: auth,
			opts: UpdateOptions{CheckoutRef: Ref{Branch: "main"}}, want: ErrAuth,
		},
		{
			name: "a wrong password is an auth failure", server: open, url: open.URL, auth: &githttp.BasicAuth{Username: "sluice", Password: "nope"},
			opts: UpdateOptions{CheckoutRef: Ref{Branch: "main"}}, want: ErrAuth,
		},
		{
			name: "a protected branch is rejected with the server's message", server: open, url: open.URL, auth: auth,
			opts: UpdateOptions{CheckoutRef: Ref{Branch: "release"}}, want: ErrPushRejected, says: "branch release is protected",
		},
		{
			name: "a protected branch is rejected over SSH too", server: open, url: sshURL, auth: sshAuth,
			opts: UpdateOptions{CheckoutRef: Ref{Branch: "release"}}, want: ErrPushRejected, says: "branch release is protected",
		},
		{
			name: "a protected push branch is rejected", server: open, url: open.URL, auth: auth,
			opts: UpdateOptions{CheckoutRef: Ref{Branch: "main"}, PushBranch: "release"}, want: ErrPushRejected, says: "pre-receive hook declined",
		},
		{
			name: "a missing checkout branch is not found", server: open, url: open.URL, auth: auth,
			opts: UpdateOptions{CheckoutRef: Ref{Branch: "nope"}}, want: ErrRefNotFound,
		},
		{
			name: "the edit's error is returned", server: open, url: open.URL, auth: auth,
			opts: UpdateOptions{CheckoutRef: Ref{Branch: "main"}}, edit: func(map[string][]byte) (map[string][]byte, string, error) { return nil, "", errEdit },
			want: errEdit,
		},
		{
			name: "a path outside the tree is refused", server: open, url: open.URL, auth: auth,
			opts: UpdateOptions{CheckoutRef: Ref{Branch: "main"}}, edit: setFile("../escape.yaml", "x: 1\n", "escape"),
			says: "clean relative path",
		},
		{
			name: "a path into .git is refused", server: open, url: open.URL, auth: auth,
			opts: UpdateOptions{CheckoutRef: Ref{Branch: "main"}}, edit: setFile(".git/config", "x", "config"),
			says: ".git is not part of the tree",
		},
		{
			name: "a force refspec is refused", server: open, url: open.URL, auth: auth,
			opts: UpdateOptions{CheckoutRef: Ref{Branch: "main"}, PushRefspec: "+refs/heads/main:refs/heads/auto"},
			says: "not supported",
		},
		{
			name: "a refspec that pushes another branch is refused", server: open, url: open.URL, auth: auth,
			opts: UpdateOptions{CheckoutRef: Ref{Branch: "main"}, PushRefspec: "refs/heads/release:refs/heads/auto"},
			says: "the source must be the new commit",
		},
		{
			name: "a tag checkout without a push branch is refused", server: open, url: open.URL, auth: auth,
			opts: UpdateOptions{CheckoutRef: Ref{Tag: "v1"}},
			says: "needs a push branch",
		},
		{
			name: "no author email is refused", server: open, url: open.URL, auth: auth,
			opts: UpdateOptions{CheckoutRef: Ref{Branch: "main"}, Author: Signature{Name: "Sluice Bot"}},
			says: "email is required",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			refs := tt.server.Git("for-each-ref")
			opts := tt.opts
			opts.URL, opts.Auth = tt.url, tt.auth
			if opts.Author == (Signature{}) {
				opts.Author = bot
			}
			edit := tt.edit
			if edit == nil {
				edit = setFile("app/deploy.yaml", "image: app:2\n", "Update app to 2")
			}
			_, err := Update(t.Context(), opts, edit)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("error %v, want %v saying %q", err, tt.want, tt.says)
			}
			if got := tt.server.Git("for-each-ref"); got != refs {
				t.Fatalf("the refs changed:\n%s\nwant\n%s", got, refs)
			}
		})
	}
}

func TestUpdateSignsTheCommit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		passphrase string
	}{
		{"with a key in the clear", ""},
		{"with a key encrypted with a passphrase", "correct horse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, _ := pushable(t)
			private, public := signingKey(t, tt.passphrase)
			data := map[string][]byte{"git.asc": private}
			if tt.passphrase != "" {
				data["passphrase"] = []byte(tt.passphrase)
			}
			key, err := SigningKeyFromSecret(data)
			if err != nil {
				t.Fatal(err)
			}
			p, err := Update(t.Context(), UpdateOptions{URL: s.URL, Auth: auth, CheckoutRef: Ref{Branch: "main"}, Author: bot, SigningKey: key},
				setFile("app/deploy.yaml", "image: app:2\n", "Update app to 2"))
			if err != nil {
				t.Fatal(err)
			}
			if raw := s.Git("cat-file", "-p", p.Commit); !strings.Contains(raw, "\ngpgsig -----BEGIN PGP SIGNATURE-----") {
				t.Fatalf("the commit has no gpgsig header:\n%s", raw)
			}
			// The signature over the commit as pushed, checked in Go
			// whether or not gpg is installed.
			repo, err := gogit.CloneContext(t.Context(), memory.NewStorage(), nil, &gogit.CloneOptions{URL: s.URL, Auth: auth, ReferenceName: "refs/heads/main", SingleBranch: true, Depth: 1})
			if err != nil {
				t.Fatal(err)
			}
			commit, err := repo.CommitObject(plumbing.NewHash(p.Commit))
			if err != nil {
				t.Fatal(err)
			}
			signer, err := commit.Verify(string(public))
			if err != nil {
				t.Fatalf("verify the signature: %v", err)
			}
			if !bytes.Equal(signer.PrimaryKey.Fingerprint, key.PrimaryKey.Fingerprint) {
				t.Fatalf("signed by %X, want %X", signer.PrimaryKey.Fingerprint, key.PrimaryKey.Fingerprint)
			}
			verifyWithGit(t, s, p.Commit, public)
		})
	}
}

// verifyWithGit runs git verify-commit on commit in a clone of s, with a
// keyring that holds public only; it skips when gpg is not installed.
func verifyWithGit(t *testing.T, s *gitserver.Server, commit string, public []byte) {
	t.Helper()
	if _, err := exec.LookPath("gpg"); err != nil {
		t.Log("gpg is not installed: the signature was checked in Go only")
		return
	}
	// Short and private: gpg wants a 0700 home and puts sockets there.
	home, err := os.MkdirTemp("", "gpg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(home) })
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword("sluice", "s3cret")
	dir := filepath.Join(t.TempDir(), "clone")
	env := append(os.Environ(), "GNUPGHOME="+home, "GIT_CONFIG_GLOBAL=/dev/null", "LC_ALL=C")
	run := func(stdin []byte, name string, args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), name, args...)
		cmd.Env, cmd.Stdin = env, bytes.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		return string(out)
	}
	run(public, "gpg", "--batch", "--import")
	run(nil, "git", "clone", "--quiet", u.String(), dir)
	if out := run(nil, "git", "-C", dir, "verify-commit", commit); !strings.Contains(out, `Good signature from "Sluice Bot <bot@sluice.dev>"`) {
		t.Fatalf("git verify-commit:\n%s", out)
	}
}

func TestSigningKeyFromSecretNamesWhatIsWrong(t *testing.T) {
	t.Parallel()
	encrypted, public := signingKey(t, "correct horse")
	one, other := newKey(t), newKey(t)
	two := armored(t, openpgp.PrivateKeyType,
		func(w io.Writer) error { return one.SerializePrivate(w, nil) },
		func(w io.Writer) error { return other.SerializePrivate(w, nil) })
	tests := []struct {
		name string
		data map[string][]byte
		says string
	}{
		{"no key", map[string][]byte{"passphrase": []byte("x")}, "git.asc (the armored OpenPGP private key) is required"},
		{"an encrypted key without its passphrase", map[string][]byte{"git.asc": encrypted}, "passphrase is required"},
		{"an encrypted key with a wrong passphrase", map[string][]byte{"git.asc": encrypted, "passphrase": []byte("wrong")}, "decrypt with the passphrase"},
		{"a public key", map[string][]byte{"git.asc": public}, "public key, not a private one"},
		{"two keys", map[string][]byte{"git.asc": two}, "holds 2 keys"},
		{"no armor", map[string][]byte{"git.asc": []byte("not a key")}, "secret key git.asc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := SigningKeyFromSecret(tt.data)
			if err == nil || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("got %v, %v; want an error saying %q", key, err, tt.says)
			}
		})
	}
}

// signingKey makes an Ed25519 OpenPGP key for Sluice Bot and returns it
// armored, encrypted with passphrase unless that is empty, and its
// armored public key.
func signingKey(t *testing.T, passphrase string) (private, public []byte) {
	t.Helper()
	e := newKey(t)
	public = armored(t, openpgp.PublicKeyType, e.Serialize)
	if passphrase != "" {
		if err := e.EncryptPrivateKeys([]byte(passphrase), nil); err != nil {
			t.Fatal(err)
		}
	}
	return armored(t, openpgp.PrivateKeyType, func(w io.Writer) error { return e.SerializePrivateWithoutSigning(w, nil) }), public
}

func newKey(t *testing.T) *openpgp.Entity {
	t.Helper()
	e, err := openpgp.NewEntity(bot.Name, "", bot.Email, &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// armored is what serialize writes, in one armored block.
func armored(t *testing.T, blockType string, serialize ...func(io.Writer) error) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, blockType, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range serialize {
		if err := s(w); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestUpdateSendsThePushOptions(t *testing.T) {
	t.Parallel()
	s, _ := pushable(t)
	s.Git("config", "receive.advertisePushOptions", "true")
	// A hook that records the options the server received, as GitLab
	// reads merge_request.target. go-git sends key=value, as it does for
	// Flux.
	seen := filepath.Join(t.TempDir(), "options")
	hook := "#!/bin/sh\ni=0\nwhile [ $i -lt \"${GIT_PUSH_OPTION_COUNT:-0}\" ]; do eval echo \\$GIT_PUSH_OPTION_$i >> " + seen + "; i=$((i+1)); done\n"
	if err := os.WriteFile(filepath.Join(s.Git("rev-parse", "--absolute-git-dir"), "hooks", "pre-receive"), []byte(hook), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := Update(t.Context(), UpdateOptions{URL: s.URL, Auth: auth, CheckoutRef: Ref{Branch: "main"}, Author: bot, PushOptions: map[string]string{"merge_request.target": "main"}},
		setFile("app/deploy.yaml", "image: app:2\n", "Update app to 2"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(seen)
	if err != nil || strings.TrimSpace(string(got)) != "merge_request.target=main" {
		t.Fatalf("the server received options %q (%v), want merge_request.target=main", got, err)
	}
}
