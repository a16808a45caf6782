package git

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"net"
	"strings"
	"testing"

	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"

	"sluice.dev/sluice/test/gitserver"
)

func TestTheSecretsHTTPSCredentialsReachTheServer(t *testing.T) {
	t.Parallel()
	s := gitserver.New(t)
	head := s.Commit(map[string]string{"a.yaml": "a: 1\n"})
	tests := []struct {
		name string
		data map[string][]byte
	}{
		{"username and password are basic auth", map[string][]byte{"username": []byte("sluice"), "password": []byte("s3cret")}},
		{"bearerToken is a bearer header", map[string][]byte{"bearerToken": []byte("t0ken")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			auth, err := AuthFromSecret(s.URL, tt.data)
			if err != nil {
				t.Fatal(err)
			}
			a, err := Fetch(t.Context(), Options{URL: s.URL, Ref: Ref{Branch: "main"}, Auth: auth})
			if err != nil || a.Revision != "main@sha1:"+head {
				t.Fatalf("got %+v, %v", a, err)
			}
		})
	}
}

func TestAuthFromSecretNamesWhatIsMissing(t *testing.T) {
	key := privateKey(t)
	tests := []struct {
		name string
		url  string
		data map[string][]byte
		want string
	}{
		{"a username without a password", "https://git.example.com/app.git", map[string][]byte{"username": []byte("u")}, "password"},
		{"ssh without a key", "ssh://git@git.example.com/app.git", map[string][]byte{"known_hosts": []byte("x")}, "identity"},
		{"ssh without known_hosts", "git@git.example.com:app.git", map[string][]byte{"identity": key}, "known_hosts"},
		{"a key that is not a key", "ssh://git@git.example.com/app.git", map[string][]byte{"identity": []byte("nope"), "known_hosts": []byte("git.example.com ssh-ed25519 AAAA")}, "identity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := AuthFromSecret(tt.url, tt.data)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one naming %q", err, tt.want)
			}
		})
	}
}

func TestSSHAuthChecksTheHostKeyAgainstKnownHosts(t *testing.T) {
	hostPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hostKey, err := ssh.NewPublicKey(hostPub)
	if err != nil {
		t.Fatal(err)
	}
	otherPub, _, _ := ed25519.GenerateKey(rand.Reader)
	otherKey, _ := ssh.NewPublicKey(otherPub)
	knownHosts := "git.example.com " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(hostKey))) + "\n"
	for _, url := range []string{"ssh://deploy@git.example.com/app.git", "deploy@git.example.com:app.git"} {
		auth, err := AuthFromSecret(url, map[string][]byte{"identity": privateKey(t), "known_hosts": []byte(knownHosts)})
		if err != nil {
			t.Fatal(err)
		}
		keys := auth.(*gitssh.PublicKeys)
		if keys.User != "deploy" {
			t.Errorf("%s: user %q, want the URL's", url, keys.User)
		}
		addr := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 22}
		if err := keys.HostKeyCallback("git.example.com:22", addr, hostKey); err != nil {
			t.Errorf("%s: the known host key was refused: %v", url, err)
		}
		if err := keys.HostKeyCallback("git.example.com:22", addr, otherKey); err == nil {
			t.Errorf("%s: another host key was accepted", url)
		}
	}
	if _, ok := mustAuth(t, "https://git.example.com/app.git", map[string][]byte{"bearerToken": []byte("t")}).(*githttp.TokenAuth); !ok {
		t.Error("a bearer token over HTTPS is not token auth")
	}
}

func mustAuth(t *testing.T, url string, data map[string][]byte) any {
	t.Helper()
	a, err := AuthFromSecret(url, data)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// privateKey is a PEM OpenSSH ed25519 private key.
func privateKey(t *testing.T) []byte {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(block)
}
