package git

import (
	"errors"
	"slices"
	"strings"
	"testing"

	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"

	"sluice.dev/sluice/test/gitserver"
)

var auth = &githttp.BasicAuth{Username: "sluice", Password: "s3cret"}

func TestFetchResolvesEveryKindOfRef(t *testing.T) {
	t.Parallel()
	s := gitserver.New(t)
	first := s.Commit(map[string]string{"app/deploy.yaml": "v: 1\n"})
	s.Tag("v1.0.0", true)
	second := s.Commit(map[string]string{"app/deploy.yaml": "v: 2\n"})
	s.Tag("v1.2.0", false)
	third := s.Commit(map[string]string{"app/deploy.yaml": "v: 3\n"})
	s.Tag("v2.0.0", true)
	// A pull request's head, as GitHub keeps it: a ref that is neither a
	// branch nor a tag.
	s.Git("update-ref", "refs/pull/1/head", second)

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
		{"a full branch name gives its head", Ref{Name: "refs/heads/main"}, "refs/heads/main@sha1:" + third, "v: 3\n"},
		{"a full tag name gives the commit it points at", Ref{Name: "refs/tags/v1.0.0"}, "refs/tags/v1.0.0@sha1:" + first, "v: 1\n"},
		{"a pull request's ref gives its commit", Ref{Name: "refs/pull/1/head"}, "refs/pull/1/head@sha1:" + second, "v: 2\n"},
		{"a name wins over a branch", Ref{Name: "refs/pull/1/head", Branch: "main"}, "refs/pull/1/head@sha1:" + second, "v: 2\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := Fetch(t.Context(), Options{URL: s.URL, Ref: tt.ref, Auth: auth})
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
	s := gitserver.New(t)
	s.Commit(map[string]string{"a.yaml": "a: 1\n"})
	tests := []struct {
		name string
		opts Options
		want error
	}{
		{"a wrong password is an auth failure", Options{URL: s.URL, Ref: Ref{Branch: "main"}, Auth: &githttp.BasicAuth{Username: "sluice", Password: "nope"}}, ErrAuth},
		{"no credentials is an auth failure", Options{URL: s.URL, Ref: Ref{Branch: "main"}}, ErrAuth},
		{"a missing branch is not found", Options{URL: s.URL, Ref: Ref{Branch: "nope"}, Auth: auth}, ErrRefNotFound},
		{"a missing tag is not found", Options{URL: s.URL, Ref: Ref{Tag: "v9"}, Auth: auth}, ErrRefNotFound},
		{"a range no tag matches is not found", Options{URL: s.URL, Ref: Ref{SemVer: ">=5.0.0"}, Auth: auth}, ErrRefNotFound},
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
	s := gitserver.New(t)
	s.Commit(map[string]string{"a.yaml": "a: 1\n"})
	opts := Options{URL: s.URL, Ref: Ref{Branch: "main"}, Auth: auth}
	a, err := Fetch(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	fetches := s.Fetches()
	opts.LastRevision = a.Revision
	if _, err := Fetch(t.Context(), opts); !errors.Is(err, ErrUnchanged) {
		t.Fatalf("error %v, want ErrUnchanged", err)
	}
	if n := s.Fetches(); n != fetches {
		t.Fatalf("%d upload-packs after an unchanged ls-remote, want %d", n, fetches)
	}
	next := s.Commit(map[string]string{"a.yaml": "a: 2\n"})
	b, err := Fetch(t.Context(), opts)
	if err != nil || b.Revision != "main@sha1:"+next || b.Digest == a.Digest {
		t.Fatalf("after a push: %+v, %v", b, err)
	}
}

func TestFetchFiltersWithIgnoreRules(t *testing.T) {
	t.Parallel()
	s := gitserver.New(t)
	s.Commit(map[string]string{
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
		sparse []string
		want   []string
	}{
		{"the defaults and .sourceignore drop CI config, media and what the repository excludes", "", nil, []string{".sourceignore", "README.md", "deploy/app.yaml"}},
		{"spec patterns replace the defaults", "/README.md\n", nil, []string{".github/workflow.yml", ".sourceignore", "deploy/app.yaml", "docs/logo.png"}},
		{"a sparse checkout keeps only its folders", "", []string{"deploy", "docs/"}, []string{"deploy/app.yaml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := Fetch(t.Context(), Options{URL: s.URL, Ref: Ref{Branch: "main"}, Auth: auth, Ignore: tt.ignore, SparseCheckout: tt.sparse})
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
