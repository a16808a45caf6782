package git

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-billy/v5/memfs"
	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/memory"
)

// Signature names the author (and committer) of the commits Update makes.
type Signature struct {
	Name  string
	Email string
}

// UpdateOptions say where Update clones from, how it commits and where it
// pushes to, with the fields of a Flux ImageUpdateAutomation's spec.git.
type UpdateOptions struct {
	URL  string
	Auth transport.AuthMethod
	// CheckoutRef is spec.git.checkout.ref, or the GitRepository's ref
	// when that is unset. A tag, semver or commit checkout needs a
	// PushBranch or a PushRefspec.
	CheckoutRef Ref
	// PushBranch is spec.git.push.branch; empty pushes to the checkout
	// branch. A push branch that does not exist yet is created from the
	// checkout; one that exists gets the commit on top of its own head
	// (unless the checkout is that head already), as Flux does with the
	// GitForcePushBranch feature gate off: Update never force-pushes.
	PushBranch string
	// PushRefspec is spec.git.push.refspec, e.g.
	// "refs/heads/main:refs/heads/auto" or "HEAD:refs/for/main", pushed
	// in addition to the push branch (the checkout branch when
	// PushBranch is empty), as in Flux. Its source names the new commit:
	// HEAD, or the checkout or push branch. A force ("+") or delete
	// refspec is refused.
	PushRefspec string
	// PushOptions are spec.git.push.options, sent to the server with the
	// push (git push -o).
	PushOptions map[string]string
	// Author is the commits' author and committer; the email is required.
	Author Signature
	// SigningKey, when set, signs the commits; SigningKeyFromSecret
	// reads one from a Flux signing-key Secret.
	SigningKey *openpgp.Entity
	// Retries is how many times a push that is not a fast-forward,
	// because the branch moved since the clone, is tried again on a fresh
	// clone. Zero means 4 (5 tries in all); a negative value, none.
	Retries int
	// Backoff is the wait before the first retry, doubled before each
	// next one up to 5s. Zero means 200ms.
	Backoff time.Duration
	// CreateBranch starts the checkout branch when the repository is
	// empty or has no such branch: the edit gets no files, and its commit
	// is the branch's first, pushed without force. When someone creates
	// the branch meanwhile, the push is not a fast-forward and the retry
	// commits on top of theirs. It needs a branch checkout, with no
	// PushBranch of another name and no PushRefspec.
	CreateBranch bool
}

// Edit changes a checkout. It gets every regular file of the tree, by
// slash-separated path, and returns the files to write, by path, with a
// nil content to remove one, and the commit message. Returning no files,
// or only their current contents, makes no commit. Update calls it again
// on the new tree when the branch moved before the push.
type Edit func(files map[string][]byte) (changed map[string][]byte, message string, err error)

// Pushed is the commit an Update pushed.
type Pushed struct {
	// Commit is the new commit's SHA-1.
	Commit string
	// Parent is the SHA-1 of the commit it was made on.
	Parent string
	// Branch is the branch it was pushed to; empty when only the refspec
	// was pushed.
	Branch string
	// Attempts counts the clones it took: 1 unless the branch moved.
	Attempts int
	// Created is set when the commit is the first of a branch that
	// CreateBranch started; Parent is empty then.
	Created bool
}

// The errors an update can fail with besides those of a fetch (ErrAuth,
// ErrRefNotFound), to be matched with errors.Is.
var (
	// ErrNoChange: the edit changed nothing; nothing was committed.
	ErrNoChange = errors.New("no change to commit")
	// ErrPushRejected: the server refused the push for another reason
	// than the branch having moved, e.g. branch protection or a hook. The
	// error holds the server's message.
	ErrPushRejected = errors.New("push rejected")
	// ErrNonFastForward: the branch moved before every try's push, so
	// the retries ran out; nothing was pushed.
	ErrNonFastForward = errors.New("the branch moved: not a fast-forward")
)

const (
	defaultRetries = 4
	defaultBackoff = 200 * time.Millisecond
	maxBackoff     = 5 * time.Second
)

// Update clones the checkout ref into memory (or the push branch's head,
// when that branch exists and the checkout is not its head), lets edit
// change the files, commits the change and pushes it without force. When
// the push is refused because the branch moved meanwhile, it clones
// again, calls edit on the new tree and retries, with backoff: history is
// never rewritten.
func Update(ctx context.Context, o UpdateOptions, edit Edit) (Pushed, error) {
	p, err := o.plan()
	if err != nil {
		return Pushed{}, err
	}
	retries, backoff := o.Retries, o.Backoff
	if retries == 0 {
		retries = defaultRetries
	}
	if backoff <= 0 {
		backoff = defaultBackoff
	}
	for attempt := 1; ; attempt++ {
		pushed, err := p.try(ctx, o, edit)
		if err == nil {
			pushed.Attempts = attempt
			return pushed, nil
		}
		if !errors.Is(err, ErrNonFastForward) || attempt > retries {
			if errors.Is(err, ErrNonFastForward) && attempt > 1 {
				return Pushed{}, fmt.Errorf("%w (%d tries)", err, attempt)
			}
			return Pushed{}, err
		}
		// Jitter, so that two automations that collided do not collide
		// again on the same schedule.
		wait := backoff/2 + rand.N(backoff/2+1)
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return Pushed{}, fmt.Errorf("%w; waiting to retry: %w", err, ctx.Err())
		case <-timer.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// plan is what an update pushes, worked out from the options once.
type plan struct {
	// branch is the push branch; empty when only the refspec is pushed.
	branch string
	// refspec is the validated PushRefspec, or empty.
	refspec config.RefSpec
}

func (o UpdateOptions) plan() (plan, error) {
	if o.URL == "" {
		return plan{}, errors.New("update: no URL")
	}
	if o.Author.Email == "" {
		return plan{}, errors.New("update: the author's email is required")
	}
	p := plan{branch: o.PushBranch}
	if p.branch == "" {
		switch ref := o.CheckoutRef; {
		case ref.Branch != "":
			p.branch = ref.Branch
		case ref.Commit == "" && ref.SemVer == "" && ref.Tag == "":
			p.branch = "master"
		}
	}
	if o.PushRefspec != "" {
		rs := config.RefSpec(o.PushRefspec)
		if err := rs.Validate(); err != nil {
			return plan{}, fmt.Errorf("push refspec %q: %w", o.PushRefspec, err)
		}
		if rs.IsForceUpdate() || rs.IsDelete() || rs.IsWildcard() {
			return plan{}, fmt.Errorf("push refspec %q: a force, delete or wildcard refspec is not supported", o.PushRefspec)
		}
		if src := rs.Src(); !slices.Contains(p.sources(o), src) {
			return plan{}, fmt.Errorf("push refspec %q: the source must be the new commit: one of %s", o.PushRefspec, strings.Join(p.sources(o), ", "))
		}
		p.refspec = rs
	}
	if p.branch == "" && p.refspec == "" {
		return plan{}, errors.New("update: a tag, semver or commit checkout needs a push branch or refspec")
	}
	if ref := o.CheckoutRef; o.CreateBranch && (ref.Branch == "" || ref.Commit != "" || ref.Tag != "" || ref.SemVer != "" || ref.Name != "" || p.branch != ref.Branch || p.refspec != "") {
		return plan{}, errors.New("update: only a branch checkout, pushed to itself, may create its branch")
	}
	return p, nil
}

// sources are the names a refspec may push the new commit by: HEAD and
// the push and checkout branches.
func (p plan) sources(o UpdateOptions) []string {
	names := []string{"HEAD"}
	for _, b := range []string{p.branch, o.CheckoutRef.Branch} {
		if name := plumbing.NewBranchReferenceName(b).String(); b != "" && !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	return names
}

// try is one attempt: clone, edit, commit, push.
func (p plan) try(ctx context.Context, o UpdateOptions, edit Edit) (Pushed, error) {
	repo, fs, err := p.clone(ctx, o)
	created := o.CreateBranch && (errors.Is(err, ErrRefNotFound) || errors.Is(err, transport.ErrEmptyRemoteRepository))
	if created {
		repo, fs, err = p.start(o)
	}
	if err != nil {
		return Pushed{}, err
	}
	parent, at := "", "the new branch "+p.branch
	if !created {
		head, err := repo.Head()
		if err != nil {
			return Pushed{}, fmt.Errorf("clone %s: head: %w", o.URL, err)
		}
		parent, at = head.Hash().String(), head.Hash().String()
	}
	files, err := readTree(fs)
	if err != nil {
		return Pushed{}, err
	}
	changed, message, err := edit(files)
	if err != nil {
		return Pushed{}, fmt.Errorf("edit %s at %s: %w", o.URL, at, err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		return Pushed{}, fmt.Errorf("worktree: %w", err)
	}
	n, err := write(wt, changed)
	if err != nil {
		return Pushed{}, err
	}
	if n == 0 {
		return Pushed{}, ErrNoChange
	}
	if strings.TrimSpace(message) == "" {
		return Pushed{}, errors.New("edit returned no commit message")
	}
	who := &object.Signature{Name: o.Author.Name, Email: o.Author.Email, When: time.Now()}
	commit, err := wt.Commit(message, &gogit.CommitOptions{Author: who, Committer: who, SignKey: o.SigningKey})
	if err != nil {
		return Pushed{}, fmt.Errorf("commit: %w", err)
	}
	specs, err := p.refspecs(repo, o, commit)
	if err != nil {
		return Pushed{}, err
	}
	if err := push(ctx, repo, o, specs); err != nil {
		return Pushed{}, err
	}
	return Pushed{Commit: commit.String(), Parent: parent, Branch: p.branch, Created: created}, nil
}

// start is the checkout of a branch that is not there yet: an empty
// repository whose HEAD names the branch, so that the commit is its
// first, with the remote to push to.
func (p plan) start(o UpdateOptions) (*gogit.Repository, billy.Filesystem, error) {
	fs := memfs.New()
	repo, err := gogit.Init(memory.NewStorage(), fs)
	if err != nil {
		return nil, nil, fmt.Errorf("start branch %q: %w", p.branch, err)
	}
	if err := repo.Storer.SetReference(plumbing.NewSymbolicReference(plumbing.HEAD, plumbing.NewBranchReferenceName(p.branch))); err != nil {
		return nil, nil, fmt.Errorf("start branch %q: %w", p.branch, err)
	}
	if _, err := repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{o.URL}}); err != nil {
		return nil, nil, fmt.Errorf("start branch %q: %w", p.branch, err)
	}
	return repo, fs, nil
}

// clone checks out what the commit goes on top of: the push branch when
// it exists and the checkout is not its head (Flux's non-force mode), the
// checkout ref otherwise.
func (p plan) clone(ctx context.Context, o UpdateOptions) (*gogit.Repository, billy.Filesystem, error) {
	t, err := resolve(ctx, Options{URL: o.URL, Ref: o.CheckoutRef, Auth: o.Auth})
	if err != nil {
		return nil, nil, fmt.Errorf("resolve checkout ref: %w", err)
	}
	checkoutBranch := ""
	if t.ref.IsBranch() {
		checkoutBranch = t.ref.Short()
	}
	if p.branch != "" && (p.branch != checkoutBranch || t.exact) {
		exists, err := hasBranch(ctx, o, p.branch)
		if err != nil {
			return nil, nil, err
		}
		if exists {
			t = target{ref: plumbing.NewBranchReferenceName(p.branch)}
		}
	}
	fs := memfs.New()
	clone := &gogit.CloneOptions{URL: o.URL, Auth: o.Auth, ReferenceName: t.ref, SingleBranch: t.ref != "", Tags: gogit.NoTags, NoCheckout: t.exact}
	if !t.exact {
		// One commit is enough to commit on top of and to push: the
		// server has the rest.
		clone.Depth = 1
	}
	repo, err := gogit.CloneContext(ctx, memory.NewStorage(), fs, clone)
	if err != nil {
		return nil, nil, remoteError("clone "+o.URL, err)
	}
	if t.exact {
		wt, err := repo.Worktree()
		if err != nil {
			return nil, nil, fmt.Errorf("worktree: %w", err)
		}
		if err := wt.Checkout(&gogit.CheckoutOptions{Hash: t.commit, Force: true}); err != nil {
			return nil, nil, fmt.Errorf("%w: commit %s: %w", ErrRefNotFound, t.commit, err)
		}
	}
	return repo, fs, nil
}

// hasBranch tells whether the remote has branch, with an ls-remote.
func hasBranch(ctx context.Context, o UpdateOptions, branch string) (bool, error) {
	head, err := BranchHead(ctx, o.URL, o.Auth, branch)
	return head != "", err
}

// BranchHead is the commit a branch of the remote at url points at, read
// with an ls-remote; "" when the remote has no such branch.
func BranchHead(ctx context.Context, url string, auth transport.AuthMethod, branch string) (string, error) {
	remote := gogit.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{url}})
	refs, err := remote.ListContext(ctx, &gogit.ListOptions{Auth: auth})
	if errors.Is(err, transport.ErrEmptyRemoteRepository) {
		return "", nil
	}
	if err != nil {
		return "", remoteError("list the refs of "+url, err)
	}
	name := plumbing.NewBranchReferenceName(branch)
	for _, r := range refs {
		if r.Name() == name {
			return r.Hash().String(), nil
		}
	}
	return "", nil
}

// readTree reads every regular file of the checkout.
func readTree(fs billy.Filesystem) (map[string][]byte, error) {
	return readFiles(fs, nil)
}

// write applies an edit's files to the worktree and stages them. It
// returns how many differ from the checkout; the others are skipped, so
// that an edit that rewrites a file unchanged makes no commit.
func write(wt *gogit.Worktree, changed map[string][]byte) (int, error) {
	n := 0
	for name, content := range changed {
		if err := checkPath(name); err != nil {
			return 0, err
		}
		old, err := readFile(wt.Filesystem, name)
		exists := err == nil
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return 0, fmt.Errorf("read %s: %w", name, err)
		}
		switch {
		case content == nil && !exists, content != nil && exists && bytes.Equal(old, content):
			continue
		case content == nil:
			if _, err := wt.Remove(name); err != nil {
				return 0, fmt.Errorf("remove %s: %w", name, err)
			}
		default:
			if err := writeFile(wt.Filesystem, name, content); err != nil {
				return 0, fmt.Errorf("write %s: %w", name, err)
			}
			if _, err := wt.Add(name); err != nil {
				return 0, fmt.Errorf("stage %s: %w", name, err)
			}
		}
		n++
	}
	return n, nil
}

// checkPath refuses a path that is not clean and relative, or that
// points into .git: an edit writes files of the tree, nothing else.
func checkPath(name string) error {
	if name == "" || path.IsAbs(name) || path.Clean(name) != name || name == ".." || strings.HasPrefix(name, "../") {
		return fmt.Errorf("edit returned path %q: want a clean relative path", name)
	}
	if first, _, _ := strings.Cut(name, "/"); first == ".git" {
		return fmt.Errorf("edit returned path %q: .git is not part of the tree", name)
	}
	return nil
}

func writeFile(fs billy.Filesystem, name string, content []byte) error {
	if dir := path.Dir(name); dir != "." {
		if err := fs.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	// An existing file keeps its mode: OpenFile applies perm only to a
	// new one.
	f, err := fs.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(content); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// refspecs points the local names a refspec may use as its source at the
// new commit, and returns what to push: the push branch and the refspec.
func (p plan) refspecs(repo *gogit.Repository, o UpdateOptions, commit plumbing.Hash) ([]config.RefSpec, error) {
	for _, name := range p.sources(o) {
		if name == "HEAD" {
			// The commit moved HEAD already, or the branch it points to.
			continue
		}
		ref := plumbing.NewHashReference(plumbing.ReferenceName(name), commit)
		if err := repo.Storer.SetReference(ref); err != nil {
			return nil, fmt.Errorf("set %s: %w", name, err)
		}
	}
	var specs []config.RefSpec
	dests := map[string]bool{}
	if p.branch != "" {
		name := plumbing.NewBranchReferenceName(p.branch).String()
		specs = append(specs, config.RefSpec(name+":"+name))
		dests[name] = true
	}
	if p.refspec != "" {
		// The same destination twice would make the second a no-op
		// that go-git reports as an error.
		if dst := p.refspec.Dst(""); !dests[dst.String()] {
			specs = append(specs, p.refspec)
		}
	}
	return specs, nil
}

// push pushes specs without force and names why a push failed: the
// branch moved (ErrNonFastForward, worth a retry), the credentials
// (ErrAuth), or the server's refusal (ErrPushRejected, with what the
// server said).
func push(ctx context.Context, repo *gogit.Repository, o UpdateOptions, specs []config.RefSpec) error {
	var progress bytes.Buffer
	err := repo.PushContext(ctx, &gogit.PushOptions{
		RemoteName: "origin",
		RefSpecs:   specs,
		Auth:       o.Auth,
		// The server's messages (a hook's output) come on the progress
		// band; they say why a push was refused.
		Progress: &progress,
		// A branch and a refspec land together or not at all, so that a
		// retry does not push one of them twice.
		Atomic: len(specs) > 1,
		// spec.git.push.options: a server that takes push options (GitLab's
		// ci.skip, merge_request.create) reads them.
		Options: o.PushOptions,
	})
	if err == nil {
		return nil
	}
	what := pushTarget(specs)
	if errors.Is(err, gogit.NoErrAlreadyUpToDate) {
		// A new commit cannot be on the remote already: something is
		// wrong with the refspecs.
		return fmt.Errorf("push %s to %s: nothing was pushed: %w", what, o.URL, err)
	}
	if isNonFastForward(err) {
		return fmt.Errorf("push %s to %s: %w: %w", what, o.URL, ErrNonFastForward, err)
	}
	if authErr := remoteError("push "+what+" to "+o.URL, err); errors.Is(authErr, ErrAuth) {
		return authErr
	}
	if isRejected(err) {
		msg := serverMessage(&progress)
		if msg != "" {
			return fmt.Errorf("push %s to %s: %w: %w: %s", what, o.URL, ErrPushRejected, err, msg)
		}
		return fmt.Errorf("push %s to %s: %w: %w", what, o.URL, ErrPushRejected, err)
	}
	return fmt.Errorf("push %s to %s: %w", what, o.URL, err)
}

// isNonFastForward matches go-git's own check against the refs the
// server advertised ("non-fast-forward update: <ref>"), and the server's
// refusals of a ref that moved between the advertisement and the update
// ("non-fast-forward", "fetch first", or a lost race for the ref's lock).
// go-git reports both as text only, hence the string match.
//
// From a shallow clone, go-git's check looks for the advertised head
// among the new commit's ancestors and runs out of history when the head
// is not the commit the clone stopped at: a missing object means the
// branch moved too.
func isNonFastForward(err error) bool {
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return true
	}
	msg := err.Error()
	for _, s := range []string{"non-fast-forward", "fetch first", "failed to update ref", "cannot lock ref", "failed to lock"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// isRejected matches the report-status errors go-git returns for a
// refused ref update or pack.
func isRejected(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "command error on ") || strings.Contains(msg, "unpack error") ||
		strings.Contains(msg, "declined") || strings.Contains(msg, "rejected")
}

// serverMessage is the server's side-band output on one line, without
// blank lines.
func serverMessage(r io.Reader) string {
	data, _ := io.ReadAll(r)
	var lines []string
	for _, line := range strings.FieldsFunc(string(data), func(r rune) bool { return r == '\n' || r == '\r' }) {
		if line = strings.TrimSpace(line); line != "" {
			lines = append(lines, line)
		}
	}
	return strings.Join(lines, "; ")
}

func pushTarget(specs []config.RefSpec) string {
	dsts := make([]string, len(specs))
	for i, s := range specs {
		dsts[i] = s.Dst("").Short()
	}
	return strings.Join(dsts, " and ")
}

// SigningKeyFromSecret reads the OpenPGP key that signs commits from the
// data of a Flux signing-key Secret: an ASCII-armored private key under
// git.asc, and its passphrase under passphrase when it is encrypted.
func SigningKeyFromSecret(data map[string][]byte) (*openpgp.Entity, error) {
	armored := data["git.asc"]
	if len(armored) == 0 {
		return nil, errors.New("secret key git.asc (the armored OpenPGP private key) is required")
	}
	entities, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(armored))
	if err != nil {
		return nil, fmt.Errorf("secret key git.asc: %w", err)
	}
	if len(entities) != 1 {
		return nil, fmt.Errorf("secret key git.asc holds %d keys, want one", len(entities))
	}
	e := entities[0]
	if e.PrivateKey == nil {
		return nil, errors.New("secret key git.asc holds a public key, not a private one")
	}
	if encrypted(e) {
		passphrase := data["passphrase"]
		if len(passphrase) == 0 {
			return nil, errors.New("secret key git.asc is encrypted: secret key passphrase is required")
		}
		if err := e.DecryptPrivateKeys(passphrase); err != nil {
			return nil, fmt.Errorf("secret key git.asc: decrypt with the passphrase: %w", err)
		}
	}
	if _, ok := e.SigningKey(time.Now()); !ok {
		return nil, errors.New("secret key git.asc has no key that can sign")
	}
	return e, nil
}

func encrypted(e *openpgp.Entity) bool {
	if e.PrivateKey != nil && e.PrivateKey.Encrypted {
		return true
	}
	for _, sub := range e.Subkeys {
		if sub.PrivateKey != nil && sub.PrivateKey.Encrypted {
			return true
		}
	}
	return false
}
