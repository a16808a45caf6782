package git

import (
	"errors"
	"strings"
	"testing"

	"sluice.dev/sluice/test/gitserver"
)

// TestCreateBranchStartsAMissingBranchWithTheEditsCommit updates with
// CreateBranch where the branch is not there: the edit sees no files, and
// its commit, without a parent, is the new branch's first; a branch that
// is there gets the commit on top, as without the option.
func TestCreateBranchStartsAMissingBranchWithTheEditsCommit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		server  func(t *testing.T) *gitserver.Server
		branch  string
		created bool
	}{
		{"an empty repository gets the branch", func(t *testing.T) *gitserver.Server {
			s := gitserver.New(t)
			s.AllowPush()
			return s
		}, "main", true},
		{"a repository without the branch gets it beside the others", func(t *testing.T) *gitserver.Server {
			s, _ := pushable(t)
			return s
		}, "fleet", true},
		{"an existing branch gets the commit on top", func(t *testing.T) *gitserver.Server {
			s, _ := pushable(t)
			return s
		}, "main", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := tt.server(t)
			before, err := BranchHead(t.Context(), s.URL, auth, tt.branch)
			if err != nil {
				t.Fatal(err)
			}
			var seen map[string][]byte
			p, err := Update(t.Context(), UpdateOptions{URL: s.URL, Auth: auth, CheckoutRef: Ref{Branch: tt.branch}, Author: bot, CreateBranch: true},
				func(files map[string][]byte) (map[string][]byte, string, error) {
					seen = files
					return map[string][]byte{"clusters/dev/sync.yaml": []byte("kind: Kustomization\n")}, "Add the sync", nil
				})
			if err != nil {
				t.Fatal(err)
			}
			head, err := BranchHead(t.Context(), s.URL, auth, tt.branch)
			if err != nil {
				t.Fatal(err)
			}
			if p.Created != tt.created || p.Commit != head || p.Parent != before || p.Branch != tt.branch {
				t.Fatalf("pushed %+v, want created %v, commit %s on parent %q", p, tt.created, head, before)
			}
			parents := strings.Fields(s.Git("log", "-1", "--format=%P", tt.branch))
			if tt.created && (len(seen) != 0 || len(parents) != 0) {
				t.Fatalf("the edit saw %d files and the commit has parents %q, want a first commit on nothing", len(seen), parents)
			}
			if !tt.created && (len(seen) == 0 || !s.IsAncestor(before, head)) {
				t.Fatalf("the edit saw %d files; %s is not on top of %s", len(seen), head, before)
			}
		})
	}
}

// TestCreateBranchIsOnlyForABranchCheckoutPushedToItself refuses the
// option where the branch to start is not the checkout's.
func TestCreateBranchIsOnlyForABranchCheckoutPushedToItself(t *testing.T) {
	tests := []struct {
		name string
		o    UpdateOptions
	}{
		{"a tag checkout", UpdateOptions{CheckoutRef: Ref{Tag: "v1"}, PushBranch: "main"}},
		{"a push to another branch", UpdateOptions{CheckoutRef: Ref{Branch: "main"}, PushBranch: "auto"}},
		{"a push refspec", UpdateOptions{CheckoutRef: Ref{Branch: "main"}, PushRefspec: "refs/heads/main:refs/heads/auto"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.URL, tt.o.Author, tt.o.CreateBranch = "http://127.0.0.1:1/repo.git", bot, true
			_, err := Update(t.Context(), tt.o, setFile("a", "b", "c"))
			if err == nil || !strings.Contains(err.Error(), "only a branch checkout, pushed to itself, may create its branch") || errors.Is(err, ErrNoChange) {
				t.Fatalf("error %v, want the option refused", err)
			}
		})
	}
}
