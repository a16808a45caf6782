package git

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/go-git/go-git/v5/plumbing/object"
	"golang.org/x/crypto/ssh"

	"sluice.dev/sluice/test/gitserver"
)

// pgpKey is a new OpenPGP signing key and its armored public key ring.
func pgpKey(t *testing.T, name string) (*openpgp.Entity, string) {
	t.Helper()
	e, err := openpgp.NewEntity(name, "", name+"@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return e, buf.String()
}

// sshKey writes a new ed25519 private key where git's gpg.format ssh
// can sign with it, and returns the file and the public key in
// authorized_keys form.
func sshKey(t *testing.T) (file, authorized string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	file = filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return file, string(ssh.MarshalAuthorizedKey(key))
}

func TestFetchVerifiesSignaturesBeforeMakingAnArtifact(t *testing.T) {
	t.Parallel()
	trusted, trustedRing := pgpKey(t, "trusted")
	other, _ := pgpKey(t, "other")
	trustedSSH, trustedAuthorized := sshKey(t)
	otherSSH, _ := sshKey(t)
	files := map[string]string{"app.yaml": "kind: ConfigMap\n"}
	tests := []struct {
		name string
		// push makes the history and returns the ref to fetch.
		push func(s *gitserver.Server) Ref
		mode VerifyMode
		// keys are the verification Secret's data.
		keys map[string][]byte
		// err is nil when the fetch must succeed; want is then in
		// Artifact.Verified.
		err  error
		want string
	}{
		{"a commit signed by a trusted OpenPGP key is verified", func(s *gitserver.Server) Ref {
			s.CommitSignedPGP(trusted, files)
			return Ref{Branch: "main"}
		}, VerifyHEAD, map[string][]byte{"author.asc": []byte(trustedRing)}, nil, "with key '" + trusted.PrimaryKey.KeyIdString() + "'"},
		{"an unsigned commit is refused", func(s *gitserver.Server) Ref {
			s.Commit(files)
			return Ref{Branch: "main"}
		}, VerifyHEAD, map[string][]byte{"author.asc": []byte(trustedRing)}, ErrCommitSignature, ""},
		{"a commit signed by another OpenPGP key is refused", func(s *gitserver.Server) Ref {
			s.CommitSignedPGP(other, files)
			return Ref{Branch: "main"}
		}, VerifyHEAD, map[string][]byte{"author.asc": []byte(trustedRing)}, ErrCommitSignature, ""},
		{"a commit signed by a trusted SSH key is verified", func(s *gitserver.Server) Ref {
			s.CommitSignedSSH(trustedSSH, files)
			return Ref{Branch: "main"}
		}, VerifyHEAD, map[string][]byte{"author.sshpub": []byte(trustedAuthorized)}, nil, "with key 'SHA256:"},
		{"a commit signed by another SSH key is refused", func(s *gitserver.Server) Ref {
			s.CommitSignedSSH(otherSSH, files)
			return Ref{Branch: "main"}
		}, VerifyHEAD, map[string][]byte{"author.sshpub": []byte(trustedAuthorized)}, ErrCommitSignature, ""},
		{"an SSH signature is not checked against OpenPGP keys", func(s *gitserver.Server) Ref {
			s.CommitSignedSSH(trustedSSH, files)
			return Ref{Branch: "main"}
		}, VerifyHEAD, map[string][]byte{"author.asc": []byte(trustedRing)}, ErrCommitSignature, ""},
		{"an annotated tag signed by a trusted OpenPGP key is verified", func(s *gitserver.Server) Ref {
			s.Commit(files)
			s.TagSignedPGP("v1.0.0", trusted)
			return Ref{Tag: "v1.0.0"}
		}, VerifyTag, map[string][]byte{"author.asc": []byte(trustedRing)}, nil, "tag 'v1.0.0' with key"},
		{"a semver range's tag is verified", func(s *gitserver.Server) Ref {
			s.Commit(files)
			s.TagSignedSSH("v1.2.0", trustedSSH)
			return Ref{SemVer: "^1"}
		}, VerifyTag, map[string][]byte{"author.sshpub": []byte(trustedAuthorized)}, nil, "tag 'v1.2.0' with key 'SHA256:"},
		{"a tag signed by another key is refused", func(s *gitserver.Server) Ref {
			s.Commit(files)
			s.TagSignedPGP("v1.0.0", other)
			return Ref{Tag: "v1.0.0"}
		}, VerifyTag, map[string][]byte{"author.asc": []byte(trustedRing)}, ErrTagSignature, ""},
		{"an unsigned annotated tag is refused as unsigned", func(s *gitserver.Server) Ref {
			s.Commit(files)
			s.Tag("v1.0.0", true)
			return Ref{Tag: "v1.0.0"}
		}, VerifyTag, map[string][]byte{"author.asc": []byte(trustedRing)}, ErrTagUnsigned, ""},
		{"a lightweight tag is refused as unsigned", func(s *gitserver.Server) Ref {
			s.CommitSignedPGP(trusted, files)
			s.Tag("v1.0.0", false)
			return Ref{Tag: "v1.0.0"}
		}, VerifyTag, map[string][]byte{"author.asc": []byte(trustedRing)}, ErrTagUnsigned, ""},
		{"TagAndHEAD refuses a signed tag on an unsigned commit", func(s *gitserver.Server) Ref {
			s.Commit(files)
			s.TagSignedPGP("v1.0.0", trusted)
			return Ref{Tag: "v1.0.0"}
		}, VerifyTagAndHEAD, map[string][]byte{"author.asc": []byte(trustedRing)}, ErrCommitSignature, ""},
		{"TagAndHEAD verifies both, with keys of both kinds", func(s *gitserver.Server) Ref {
			s.CommitSignedSSH(trustedSSH, files)
			s.TagSignedPGP("v1.0.0", trusted)
			return Ref{Name: "refs/tags/v1.0.0"}
		}, VerifyTagAndHEAD, map[string][]byte{"author.asc": []byte(trustedRing), "author.sshpub": []byte(trustedAuthorized)}, nil, "tag 'v1.0.0' with key '" + trusted.PrimaryKey.KeyIdString() + "' and commit"},
		{"Tag on a branch has no tag to verify", func(s *gitserver.Server) Ref {
			s.CommitSignedPGP(trusted, files)
			return Ref{Branch: "main"}
		}, VerifyTag, map[string][]byte{"author.asc": []byte(trustedRing)}, ErrNoTag, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := gitserver.New(t)
			ref := tt.push(s)
			v, err := VerifyFromSecret(tt.mode, tt.keys)
			if err != nil {
				t.Fatal(err)
			}
			a, err := Fetch(t.Context(), Options{URL: s.URL, Ref: ref, Auth: auth, Verify: v})
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("error %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(a.Verified, tt.want) || string(a.Files["app.yaml"]) != files["app.yaml"] {
				t.Fatalf("verified %q with files %v, want %q", a.Verified, a.Files, tt.want)
			}
		})
	}
}

func TestSSHSignaturesOfSSHKeygenAreCheckedForTheirPayloadKeyAndNamespace(t *testing.T) {
	key, authorized := sshKey(t)
	_, otherAuthorized := sshKey(t)
	payload := []byte("tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\nsigned\n")
	sign := func(namespace string) string {
		t.Helper()
		file := filepath.Join(t.TempDir(), "payload")
		if err := os.WriteFile(file, payload, 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("ssh-keygen", "-Y", "sign", "-n", namespace, "-f", key, file).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen -Y sign: %v\n%s", err, out)
		}
		sig, err := os.ReadFile(file + ".sig")
		if err != nil {
			t.Fatal(err)
		}
		return string(sig)
	}
	gitSig := sign("git")
	tests := []struct {
		name      string
		signature string
		payload   []byte
		keys      []string
		want      string
	}{
		{"the signed payload with the signing key verifies", gitSig, payload, []string{otherAuthorized + authorized}, ""},
		{"another payload does not", gitSig, []byte("tampered"), []string{authorized}, "does not match its key"},
		{"a key that did not sign does not", gitSig, payload, []string{otherAuthorized}, "no trusted SSH key made the signature"},
		{"a signature for another namespace does not", sign("file"), payload, []string{authorized}, `namespace "file"`},
		{"a broken armor does not", strings.Replace(gitSig, "-----END SSH SIGNATURE-----", "", 1), payload, []string{authorized}, "no end line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fingerprint, err := verifySSH(tt.signature, tt.payload, tt.keys)
			if tt.want == "" {
				if err != nil || !strings.HasPrefix(fingerprint, "SHA256:") {
					t.Fatalf("got %q, %v", fingerprint, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one with %q", err, tt.want)
			}
		})
	}
}

func TestACommitWithMoreThanOneOpenPGPSignatureIsRefused(t *testing.T) {
	trusted, ring := pgpKey(t, "trusted")
	when := time.Unix(1700000000, 0)
	commit := &object.Commit{
		Author:    object.Signature{Name: "t", Email: "t@example.com", When: when},
		Committer: object.Signature{Name: "t", Email: "t@example.com", When: when},
		Message:   "signed\n",
	}
	payload, err := encodedWithoutSignature(commit)
	if err != nil {
		t.Fatal(err)
	}
	var sig bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&sig, trusted, bytes.NewReader(payload), nil); err != nil {
		t.Fatal(err)
	}
	v := &Verify{Mode: VerifyHEAD, KeyRings: []string{ring}}
	commit.PGPSignature = sig.String()
	if key, err := v.signedBy(commit.PGPSignature, commit); err != nil || key != trusted.PrimaryKey.KeyIdString() {
		t.Fatalf("one signature: key %q, %v; want it verified", key, err)
	}
	// A second signature block after a good one: git would show only
	// one of them, so the commit is refused whatever they say.
	commit.PGPSignature = sig.String() + "\n" + sig.String()
	if _, err := v.signedBy(commit.PGPSignature, commit); !errors.Is(err, object.ErrMultipleSignatures) {
		t.Fatalf("two signatures: error %v, want %v", err, object.ErrMultipleSignatures)
	}
}

func TestVerifyFromSecretWantsKeysItCanTell(t *testing.T) {
	if _, err := VerifyFromSecret(VerifyHEAD, map[string][]byte{"author": []byte("a key without a suffix")}); err == nil || !strings.Contains(err.Error(), ".asc") {
		t.Fatalf("error %v, want one naming the .asc and .sshpub suffixes", err)
	}
}
