package git

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net/url"
	"testing"

	"github.com/go-git/go-git/v5/plumbing/transport"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"sluice.dev/sluice/test/gitserver"
)

func TestFetchOverSSHChecksBothKeys(t *testing.T) {
	t.Parallel()
	s := gitserver.New(t)
	head := s.Commit(map[string]string{"app/deploy.yaml": "v: 1\n"})
	srv := s.ServeSSH()
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	other := *u
	other.Path = "/other.git"
	// isKeyMismatch holds for a known host whose key is not the server's,
	// which is what a man in the middle looks like.
	isKeyMismatch := func(err error) bool {
		keyErr, ok := errors.AsType[*knownhosts.KeyError](err)
		return ok && len(keyErr.Want) > 0
	}
	tests := []struct {
		name string
		url  string
		data map[string][]byte
		// fails tells the error expected; nil expects the branch head.
		fails func(error) bool
	}{
		{"the key and known_hosts fetch the branch head", srv.URL, map[string][]byte{"identity": srv.Identity, "known_hosts": srv.KnownHosts}, nil},
		{"a known_hosts with another host key is a key mismatch", srv.URL, map[string][]byte{"identity": srv.Identity, "known_hosts": otherHostKey(t, u.Host)}, isKeyMismatch},
		{"a key the server does not know is an auth failure", srv.URL, map[string][]byte{"identity": privateKey(t), "known_hosts": srv.KnownHosts}, isErr(ErrAuth)},
		{"a path the server does not serve is a missing repository", other.String(), map[string][]byte{"identity": srv.Identity, "known_hosts": srv.KnownHosts}, isErr(transport.ErrRepositoryNotFound)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			auth, err := AuthFromSecret(tt.url, tt.data)
			if err != nil {
				t.Fatal(err)
			}
			a, err := Fetch(t.Context(), Options{URL: tt.url, Ref: Ref{Branch: "main"}, Auth: auth})
			if tt.fails != nil {
				if a != nil || !tt.fails(err) {
					t.Fatalf("got %+v, %v; want no artifact and the expected error", a, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.Revision != "main@sha1:"+head || string(a.Files["app/deploy.yaml"]) != "v: 1\n" {
				t.Fatalf("revision %s with %q, want main@sha1:%s with %q", a.Revision, a.Files["app/deploy.yaml"], head, "v: 1\n")
			}
		})
	}
}

func TestFetchOverSSHSkipsTheCloneWhenTheRevisionIsUnchanged(t *testing.T) {
	t.Parallel()
	s := gitserver.New(t)
	s.Commit(map[string]string{"a.yaml": "a: 1\n"})
	srv := s.ServeSSH()
	auth, err := AuthFromSecret(srv.URL, map[string][]byte{"identity": srv.Identity, "known_hosts": srv.KnownHosts})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{URL: srv.URL, Ref: Ref{Branch: "main"}, Auth: auth}
	a, err := Fetch(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	// Over SSH an ls-remote runs upload-pack as well, and the server
	// sees its flush only after Fetch has moved on, so a miscount of
	// ls-remotes shows here and after the push rather than right after
	// the unchanged Fetch: one clone is one upload-pack with wants.
	fetches := s.Fetches()
	if fetches != 1 {
		t.Fatalf("%d upload-packs counted for one ls-remote and one clone, want 1", fetches)
	}
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
	if n := s.Fetches(); n != fetches+1 {
		t.Fatalf("%d upload-packs after three ls-remotes and two clones, want %d", n, fetches+1)
	}
}

// otherHostKey is a known_hosts line for host with a fresh key: the
// server's address, not its key.
func otherHostKey(t *testing.T, host string) []byte {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(knownhosts.Line([]string{knownhosts.Normalize(host)}, key) + "\n")
}

func isErr(target error) func(error) bool {
	return func(err error) bool { return errors.Is(err, target) }
}
