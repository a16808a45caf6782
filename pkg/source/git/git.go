// Package git fetches a Git repository's files at a ref, the way Flux's
// source-controller does for a GitRepository: it resolves the ref with an
// ls-remote first and skips the clone when the revision has not changed,
// clones shallow and single-branch, filters the tree with .gitignore
// rules, and names the result with a Flux revision and a digest. The files
// stay in memory, for the applier in the same process.
package git

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"
	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-billy/v5/memfs"
	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/memory"
)

// Ref selects the commit to fetch. Commit wins over Name, Name over
// SemVer, SemVer over Tag, and Tag over Branch, as in Flux; with none
// set, the branch is master.
type Ref struct {
	// Name is a full reference: refs/heads/main, refs/tags/v1.0.0,
	// refs/pull/420/head.
	Name   string
	Branch string
	Tag    string
	// SemVer is a Masterminds/semver range over the repository's tags.
	SemVer string
	// Commit is a full SHA-1; with Branch, only that branch is fetched.
	// A SHA-256 hash is refused with ErrSHA256.
	Commit string
}

// TLS is the HTTPS material of a repository, with Flux's Secret keys:
// see TLSFromSecret.
type TLS struct {
	// CABundle is trusted besides the system roots (ca.crt).
	CABundle []byte
	// ClientCert and ClientKey are a client certificate for mutual TLS
	// (tls.crt, tls.key).
	ClientCert []byte
	ClientKey  []byte
}

// Options say what to fetch.
type Options struct {
	URL  string
	Ref  Ref
	Auth transport.AuthMethod
	// TLS is used for every HTTPS request; the client certificate, like
	// Auth, only on the repository's host.
	TLS TLS
	// Proxy carries every request, when its URL is set.
	Proxy transport.ProxyOptions
	// RecurseSubmodules checks the submodules out too, recursively, at
	// the commits the tree records.
	RecurseSubmodules bool
	// Verify, when set, checks the signatures of the commit or tag before
	// the files are read.
	Verify *Verify
	// Ignore holds .gitignore patterns that replace the default
	// exclusions; empty keeps the defaults. Flux's Git exclusions
	// (.git/, .gitignore, .gitmodules, .gitattributes) apply either way.
	Ignore string
	// SparseCheckout, when set, keeps only the files below these
	// folders.
	SparseCheckout []string
	// LastRevision is the revision fetched before: when the remote still
	// points there, Fetch returns ErrUnchanged without cloning.
	LastRevision string
}

// Artifact is a fetched, filtered tree.
type Artifact struct {
	// Revision is Flux's: main@sha1:<hash>, v1.0.0@sha1:<hash>, or
	// sha1:<hash> for a bare commit.
	Revision string
	// Digest is sha256:<hex> over the filtered files' paths and contents.
	Digest string
	// Files maps slash-separated paths to contents.
	Files map[string][]byte
	// Verified says which signatures Options.Verify checked, with which
	// keys; empty without Options.Verify.
	Verified string
}

// The errors a fetch can fail with, to be matched with errors.Is.
var (
	// ErrUnchanged: the remote is at LastRevision; nothing was cloned.
	ErrUnchanged = errors.New("the revision has not changed")
	// ErrAuth: the server refused the credentials.
	ErrAuth = errors.New("authentication failed")
	// ErrRefNotFound: no branch, tag or version matches the ref.
	ErrRefNotFound = errors.New("ref not found")
	// ErrSHA256: the commit asked for is a SHA-256 hash, and the Git
	// client reads SHA-1 repositories only.
	ErrSHA256 = errors.New("SHA-256 repositories are not supported: the Git client reads SHA-1 repositories only")
)

// vcsIgnore are the Git files Flux always leaves out, anywhere in the
// tree (a submodule's folder holds them too), whatever spec.ignore says.
const vcsIgnore = `.git/
.gitignore
.gitmodules
.gitattributes
`

// defaultIgnore are Flux's other default exclusions
// (fluxcd/pkg/sourceignore): binary media and CI configuration.
// spec.ignore replaces them.
const defaultIgnore = `*.jpg
*.jpeg
*.gif
*.png
*.wmv
*.flv
*.tar.gz
*.zip
.github/
.circleci/
.travis.yml
.gitlab-ci.yml
appveyor.yml
.drone.yml
cloudbuild.yaml
codeship-services.yml
codeship-steps.yml
**/.goreleaser.yml
**/.sops.yaml
**/.flux.yaml
`

// Fetch resolves opts.Ref on the remote and, unless it is at
// opts.LastRevision, clones that commit and returns its filtered files.
//
// With opts.Verify the signatures are checked before any file is read: a
// refused one fails the fetch with an error that wraps
// ErrCommitSignature, ErrTagSignature, ErrTagUnsigned or ErrNoTag. With
// opts.RecurseSubmodules the submodules' files are part of the tree.
func Fetch(ctx context.Context, opts Options) (*Artifact, error) {
	target, err := resolve(ctx, opts)
	if err != nil {
		return nil, err
	}
	if target.revision == opts.LastRevision && opts.LastRevision != "" {
		return nil, ErrUnchanged
	}
	if opts.Verify != nil && opts.Verify.Mode.tag() && !target.ref.IsTag() {
		return nil, fmt.Errorf("%w: verification mode %s needs a tag, and the ref names none", ErrNoTag, opts.Verify.Mode)
	}
	fs, repo, err := checkout(ctx, opts, target)
	if err != nil {
		return nil, err
	}
	var verified string
	if opts.Verify != nil {
		if verified, err = opts.Verify.check(repo, target); err != nil {
			return nil, err
		}
	}
	if opts.RecurseSubmodules {
		if err := checkoutSubmodules(ctx, opts, repo, fs, submoduleDepth); err != nil {
			return nil, err
		}
	}
	files, err := collect(fs, opts.Ignore)
	if err != nil {
		return nil, err
	}
	files = sparse(files, opts.SparseCheckout)
	return &Artifact{Revision: target.revision, Digest: digest(files), Files: files, Verified: verified}, nil
}

// target is a resolved ref: what to clone and what the result is called.
type target struct {
	// ref is the branch or tag to clone; empty clones the default branch.
	ref      plumbing.ReferenceName
	commit   plumbing.Hash
	revision string
	// exact is set when commit was asked for, not read from a ref.
	exact bool
	// tag is the object a tag ref points at: an annotated tag's own
	// object, or the commit itself for a lightweight tag.
	tag plumbing.Hash
}

// resolve lists the remote's refs (one round trip, no objects) and picks
// the commit opts.Ref names. A commit needs no listing.
func resolve(ctx context.Context, opts Options) (target, error) {
	if opts.Ref.Commit != "" {
		return choose(opts.Ref, nil)
	}
	remote := gogit.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{opts.URL}})
	refs, err := remote.ListContext(ctx, &gogit.ListOptions{
		Auth: opts.Auth, PeelingOption: gogit.AppendPeeled,
		CABundle: opts.TLS.CABundle, ClientCert: opts.TLS.ClientCert, ClientKey: opts.TLS.ClientKey, ProxyOptions: opts.Proxy,
	})
	if err != nil {
		return target{}, remoteError("list refs", err)
	}
	return choose(opts.Ref, refs)
}

// choose picks the commit ref names among a remote's refs, listed with
// the peeled refs of annotated tags appended (name^{}). The choice does
// not depend on the order of refs.
func choose(ref Ref, refs []*plumbing.Reference) (target, error) {
	if ref.Commit != "" {
		if len(ref.Commit) == 64 && isHex(ref.Commit) {
			return target{}, fmt.Errorf("ref.commit %s: %w", ref.Commit, ErrSHA256)
		}
		if !plumbing.IsHash(ref.Commit) {
			return target{}, fmt.Errorf("ref.commit %q is not a full SHA-1", ref.Commit)
		}
		// The revision spells the hash as Git does, in lower case, so that
		// it names the same commit as the one the fetch records.
		h := plumbing.NewHash(ref.Commit)
		t := target{commit: h, exact: true, revision: "sha1:" + h.String()}
		if ref.Branch != "" {
			t.ref, t.revision = plumbing.NewBranchReferenceName(ref.Branch), ref.Branch+"@sha1:"+h.String()
		}
		return t, nil
	}
	byName := map[plumbing.ReferenceName]plumbing.Hash{}
	for _, r := range refs {
		byName[r.Name()] = r.Hash()
	}
	// tagCommit is the commit a tag points at: the peeled ref of an
	// annotated tag, or the tag itself.
	tagCommit := func(tag string) (plumbing.Hash, bool) {
		name := plumbing.NewTagReferenceName(tag)
		if h, ok := byName[plumbing.ReferenceName(string(name)+"^{}")]; ok {
			return h, true
		}
		h, ok := byName[name]
		return h, ok
	}
	switch {
	case ref.Name != "":
		name := plumbing.ReferenceName(ref.Name)
		h, ok := byName[plumbing.ReferenceName(ref.Name+"^{}")]
		if !ok {
			h, ok = byName[name]
		}
		if !ok {
			return target{}, fmt.Errorf("%w: ref.name %q", ErrRefNotFound, ref.Name)
		}
		return target{ref: name, commit: h, revision: ref.Name + "@sha1:" + h.String(), tag: byName[name]}, nil
	case ref.SemVer != "":
		constraint, err := semver.NewConstraint(ref.SemVer)
		if err != nil {
			return target{}, fmt.Errorf("ref.semver %q: %w", ref.SemVer, err)
		}
		var best *semver.Version
		var bestTag string
		for name := range byName {
			if !name.IsTag() || strings.HasSuffix(string(name), "^{}") {
				continue
			}
			v, err := semver.NewVersion(name.Short())
			if err != nil || !constraint.Check(v) {
				continue
			}
			// Tags of equal versions (1.0.0 and v1.0.0, or builds
			// 1.0.0+a and 1.0.0+b) are told apart by name, the larger
			// string winning, as image policies do: the map's order
			// must not pick a different commit from one fetch to the
			// next.
			if c := compareVersions(v, best); c > 0 || c == 0 && name.Short() > bestTag {
				best, bestTag = v, name.Short()
			}
		}
		if best == nil {
			return target{}, fmt.Errorf("%w: no tag matches semver %q", ErrRefNotFound, ref.SemVer)
		}
		h, _ := tagCommit(bestTag)
		name := plumbing.NewTagReferenceName(bestTag)
		return target{ref: name, commit: h, revision: bestTag + "@sha1:" + h.String(), tag: byName[name]}, nil
	case ref.Tag != "":
		h, ok := tagCommit(ref.Tag)
		if !ok {
			return target{}, fmt.Errorf("%w: tag %q", ErrRefNotFound, ref.Tag)
		}
		name := plumbing.NewTagReferenceName(ref.Tag)
		return target{ref: name, commit: h, revision: ref.Tag + "@sha1:" + h.String(), tag: byName[name]}, nil
	}
	branch := ref.Branch
	if branch == "" {
		branch = "master"
	}
	h, ok := byName[plumbing.NewBranchReferenceName(branch)]
	if !ok {
		return target{}, fmt.Errorf("%w: branch %q", ErrRefNotFound, branch)
	}
	return target{ref: plumbing.NewBranchReferenceName(branch), commit: h, revision: branch + "@sha1:" + h.String()}, nil
}

// compareVersions compares two versions, nil ranking below any.
func compareVersions(a, b *semver.Version) int {
	switch {
	case b == nil:
		return 1
	case a == nil:
		return -1
	}
	return a.Compare(b)
}

// checkout clones the target into memory: one commit deep when a ref
// points at it, the whole branch when a commit was asked for. The
// repository is returned for the signatures and submodules.
func checkout(ctx context.Context, opts Options, t target) (billy.Filesystem, *gogit.Repository, error) {
	if t.ref != "" && !t.ref.IsBranch() && !t.ref.IsTag() {
		return checkoutRef(ctx, opts, t)
	}
	fs := memfs.New()
	clone := &gogit.CloneOptions{
		URL: opts.URL, Auth: opts.Auth, ReferenceName: t.ref, SingleBranch: t.ref != "", Tags: gogit.NoTags, NoCheckout: t.exact,
		CABundle: opts.TLS.CABundle, ClientCert: opts.TLS.ClientCert, ClientKey: opts.TLS.ClientKey, ProxyOptions: opts.Proxy,
	}
	if !t.exact {
		clone.Depth = 1
	}
	repo, err := gogit.CloneContext(ctx, memory.NewStorage(), fs, clone)
	if err != nil {
		return nil, nil, remoteError("clone", err)
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
	return fs, repo, nil
}

// checkoutRef fetches one commit of a reference that is neither a branch
// nor a tag (refs/pull/420/head), which go-git's clone cannot name.
func checkoutRef(ctx context.Context, opts Options, t target) (billy.Filesystem, *gogit.Repository, error) {
	fs := memfs.New()
	repo, err := gogit.Init(memory.NewStorage(), fs)
	if err != nil {
		return nil, nil, fmt.Errorf("init: %w", err)
	}
	remote, err := repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{opts.URL}})
	if err != nil {
		return nil, nil, fmt.Errorf("add remote: %w", err)
	}
	spec := config.RefSpec("+" + string(t.ref) + ":" + string(t.ref))
	if err := remote.FetchContext(ctx, &gogit.FetchOptions{
		Auth: opts.Auth, RefSpecs: []config.RefSpec{spec}, Depth: 1, Tags: gogit.NoTags,
		CABundle: opts.TLS.CABundle, ClientCert: opts.TLS.ClientCert, ClientKey: opts.TLS.ClientKey, ProxyOptions: opts.Proxy,
	}); err != nil {
		return nil, nil, remoteError("fetch "+string(t.ref), err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		return nil, nil, fmt.Errorf("worktree: %w", err)
	}
	if err := wt.Checkout(&gogit.CheckoutOptions{Hash: t.commit, Force: true}); err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %w", ErrRefNotFound, t.ref, err)
	}
	return fs, repo, nil
}

// isHex tells whether s is lower-case hexadecimal.
func isHex(s string) bool {
	return strings.Trim(s, "0123456789abcdef") == ""
}

// sparse keeps the files below the folders of a sparse checkout; none
// keeps all.
func sparse(files map[string][]byte, folders []string) map[string][]byte {
	if len(folders) == 0 {
		return files
	}
	out := map[string][]byte{}
	for name, data := range files {
		for _, f := range folders {
			f = strings.Trim(path.Clean("/"+f), "/")
			if f == "" || name == f || strings.HasPrefix(name, f+"/") {
				out[name] = data
				break
			}
		}
	}
	return out
}

// remoteError names authentication failures, which a user must fix. The
// SSH client reports a refused key only as text, hence the string match.
func remoteError(op string, err error) error {
	if errors.Is(err, transport.ErrAuthenticationRequired) || errors.Is(err, transport.ErrAuthorizationFailed) ||
		strings.Contains(err.Error(), "ssh: unable to authenticate") {
		return fmt.Errorf("%s: %w: %w", op, ErrAuth, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// collect reads every file the ignore rules keep: Flux's Git exclusions,
// the defaults (or the spec's patterns in their place) and the
// repository's .sourceignore.
func collect(fs billy.Filesystem, ignore string) (map[string][]byte, error) {
	rules := defaultIgnore
	if ignore != "" {
		rules = ignore
	}
	patterns := parsePatterns(vcsIgnore+rules, nil)
	if data, err := readFile(fs, ".sourceignore"); err == nil {
		patterns = append(patterns, parsePatterns(string(data), nil)...)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read .sourceignore: %w", err)
	}
	matcher := gitignore.NewMatcher(patterns)
	return readFiles(fs, func(p string, dir bool) bool { return matcher.Match(strings.Split(p, "/"), dir) })
}

// readFiles reads every regular file of fs, by slash path, leaving out
// what skip (when set) names, and below a skipped folder. Symbolic links
// are left out: neither an applier nor an edit may follow them.
func readFiles(fs billy.Filesystem, skip func(p string, dir bool) bool) (map[string][]byte, error) {
	files := map[string][]byte{}
	var walk func(dir string) error
	walk = func(dir string) error {
		entries, err := fs.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("read %s: %w", dir, err)
		}
		for _, e := range entries {
			p := path.Join(dir, e.Name())
			rel := strings.TrimPrefix(p, "/")
			switch {
			case skip != nil && skip(rel, e.IsDir()):
			case e.IsDir():
				if err := walk(p); err != nil {
					return err
				}
			case e.Mode().IsRegular():
				data, err := readFile(fs, p)
				if err != nil {
					return fmt.Errorf("read %s: %w", p, err)
				}
				files[rel] = data
			}
		}
		return nil
	}
	if err := walk("/"); err != nil {
		return nil, err
	}
	return files, nil
}

func parsePatterns(rules string, domain []string) []gitignore.Pattern {
	var out []gitignore.Pattern
	for _, line := range strings.Split(rules, "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, gitignore.ParsePattern(line, domain))
	}
	return out
}

func readFile(fs billy.Filesystem, name string) ([]byte, error) {
	f, err := fs.Open(name)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	return io.ReadAll(f)
}

// digest is sha256 over the sorted paths and contents, each length-
// prefixed so that no two trees share a digest by concatenation.
func digest(files map[string][]byte) string {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		_, _ = fmt.Fprintf(h, "%d:%s%d:", len(n), n, len(files[n]))
		_, _ = h.Write(files[n])
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}
