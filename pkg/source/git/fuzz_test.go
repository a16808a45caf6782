package git

import (
	"crypto/sha1" //nolint:gosec // the fuzzed refs get SHA-1 hashes, as Git's are.
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/Masterminds/semver/v3"
	"github.com/go-git/go-git/v5/plumbing"
)

// fuzzRefs turns fuzzed tag names (one a line) into a remote's listing:
// branches main and master, each tag, and every other tag annotated, its
// peeled ref appended as name^{} with another hash, as go-git lists with
// AppendPeeled.
func fuzzRefs(tags string) []*plumbing.Reference {
	hash := func(s string) plumbing.Hash { return plumbing.Hash(sha1.Sum([]byte(s))) } //nolint:gosec // a name's stand-in commit.
	refs := []*plumbing.Reference{
		plumbing.NewHashReference(plumbing.NewBranchReferenceName("main"), hash("main")),
		plumbing.NewHashReference(plumbing.NewBranchReferenceName("master"), hash("master")),
	}
	seen := map[string]bool{}
	for i, tag := range strings.Split(tags, "\n") {
		if tag == "" || seen[tag] || strings.HasSuffix(tag, "^{}") {
			continue
		}
		seen[tag] = true
		name := plumbing.NewTagReferenceName(tag)
		refs = append(refs, plumbing.NewHashReference(name, hash("tag "+tag)))
		if i%2 == 1 {
			refs = append(refs, plumbing.NewHashReference(plumbing.ReferenceName(string(name)+"^{}"), hash("commit "+tag)))
		}
	}
	return refs
}

// FuzzChooseRef resolves fuzzed refs (spec.ref's name, branch, tag,
// semver and commit) against a fuzzed listing of tags. The choice does
// not depend on the order the remote lists its refs in; a tag resolves to
// the commit it points at, peeled for an annotated tag; a semver range
// picks a tag within the range that no other tag within it outranks; a
// commit is taken as it is, its revision in Git's lower case, and a
// SHA-256 one is refused; and what cannot be found wraps ErrRefNotFound.
func FuzzChooseRef(f *testing.F) {
	f.Add("", "", "", ">=1.0.0 <2.0.0", "", "v1.0.0\n1.0.0\n1.2.0\n1.2.0+b\n1.2.0+a\nv2.0.0\nlatest")
	f.Add("", "main", "", "", "", "v1.0.0")
	f.Add("refs/tags/v1.0.0", "", "", "", "", "v1.0.0\nv1.0.1")
	f.Add("", "", "v1.0.1", "", "", "v1.0.0\nv1.0.1")
	f.Add("", "main", "", "", strings.Repeat("a", 40), "")
	f.Add("", "", "", "", strings.Repeat("b", 64), "")
	f.Add("", "", "", "~1.2", "", "1.2\n1.2.0\nv1.2\n1.2.9-rc.1\n1.2.9")
	f.Add("", "", "", "*", "", "0.0.0\n00.0.0\n0.0\n0")
	f.Fuzz(func(t *testing.T, name, branch, tag, semverRange, commit, tags string) {
		ref := Ref{Name: name, Branch: branch, Tag: tag, SemVer: semverRange, Commit: commit}
		refs := fuzzRefs(tags)
		got, err := choose(ref, refs)

		reversed := slices.Clone(refs)
		slices.Reverse(reversed)
		again, errAgain := choose(ref, reversed)
		if (err == nil) != (errAgain == nil) || got != again {
			t.Fatalf("ref %+v: the choice depends on the listing's order: %+v (%v), reversed %+v (%v)", ref, got, err, again, errAgain)
		}

		byName := map[plumbing.ReferenceName]plumbing.Hash{}
		for _, r := range refs {
			byName[r.Name()] = r.Hash()
		}
		peeled := func(n plumbing.ReferenceName) plumbing.Hash {
			if h, ok := byName[n+"^{}"]; ok {
				return h
			}
			return byName[n]
		}
		switch {
		case commit != "":
			if len(commit) == 64 && isHex(commit) {
				if !errors.Is(err, ErrSHA256) {
					t.Fatalf("SHA-256 commit %s: %v, want ErrSHA256", commit, err)
				}
				return
			}
			if err != nil {
				if plumbing.IsHash(commit) {
					t.Fatalf("commit %q is a full SHA-1, but: %v", commit, err)
				}
				return
			}
			if !got.exact || got.commit != plumbing.NewHash(commit) || !strings.HasSuffix(got.revision, "sha1:"+strings.ToLower(commit)) {
				t.Fatalf("commit %q resolved to %+v", commit, got)
			}
		case err != nil:
			if !errors.Is(err, ErrRefNotFound) && !strings.HasPrefix(err.Error(), "ref.semver ") {
				t.Fatalf("ref %+v: error %v neither wraps ErrRefNotFound nor names ref.semver", ref, err)
			}
		case name != "":
			if _, ok := byName[plumbing.ReferenceName(name)]; !ok && !isPeeledOnly(byName, name) {
				t.Fatalf("ref.name %q resolved to %+v, but the remote has no such ref", name, got)
			}
			if got.commit != peeled(plumbing.ReferenceName(name)) {
				t.Fatalf("ref.name %q resolved to commit %s, want %s", name, got.commit, peeled(plumbing.ReferenceName(name)))
			}
		case semverRange != "":
			checkSemverChoice(t, semverRange, refs, got)
			if got.commit != peeled(got.ref) {
				t.Fatalf("tag %s resolved to commit %s, want %s", got.ref, got.commit, peeled(got.ref))
			}
		case tag != "":
			if want := peeled(plumbing.NewTagReferenceName(tag)); got.commit != want || got.ref != plumbing.NewTagReferenceName(tag) {
				t.Fatalf("tag %q resolved to %+v, want commit %s", tag, got, want)
			}
		default:
			want := branch
			if want == "" {
				want = "master"
			}
			if got.ref != plumbing.NewBranchReferenceName(want) || got.commit != byName[got.ref] {
				t.Fatalf("branch %q resolved to %+v", want, got)
			}
		}
		if err == nil && !strings.HasSuffix(got.revision, "sha1:"+got.commit.String()) {
			t.Fatalf("revision %q does not end with the commit %s", got.revision, got.commit)
		}
	})
}

// isPeeledOnly reports whether name is found only as a peeled ref.
func isPeeledOnly(byName map[plumbing.ReferenceName]plumbing.Hash, name string) bool {
	_, ok := byName[plumbing.ReferenceName(name+"^{}")]
	return ok
}

// checkSemverChoice checks that the chosen tag is within the range and
// that no tag within it ranks above it.
func checkSemverChoice(t *testing.T, semverRange string, refs []*plumbing.Reference, got target) {
	t.Helper()
	constraint, err := semver.NewConstraint(semverRange)
	if err != nil {
		t.Fatalf("range %q was accepted but does not parse: %v", semverRange, err)
	}
	if !got.ref.IsTag() {
		t.Fatalf("range %q chose %s, which is not a tag", semverRange, got.ref)
	}
	chosen, err := semver.NewVersion(got.ref.Short())
	if err != nil || !constraint.Check(chosen) {
		t.Fatalf("range %q chose %s, which is not within it (%v)", semverRange, got.ref, err)
	}
	for _, r := range refs {
		if !r.Name().IsTag() || strings.HasSuffix(r.Name().String(), "^{}") {
			continue
		}
		v, err := semver.NewVersion(r.Name().Short())
		if err != nil || !constraint.Check(v) {
			continue
		}
		if c := v.Compare(chosen); c > 0 || c == 0 && r.Name().Short() > got.ref.Short() {
			t.Fatalf("range %q chose %s over %s", semverRange, got.ref.Short(), r.Name().Short())
		}
	}
}
