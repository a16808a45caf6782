package git

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"golang.org/x/crypto/ssh"
)

// VerifyMode says which signatures Verify checks, with Flux's names.
type VerifyMode string

// The modes of a GitRepository's spec.verify.mode.
const (
	// VerifyHEAD checks the commit that is checked out.
	VerifyHEAD VerifyMode = "HEAD"
	// VerifyTag checks the annotated tag the ref names.
	VerifyTag VerifyMode = "Tag"
	// VerifyTagAndHEAD checks the tag and the commit it points at.
	VerifyTagAndHEAD VerifyMode = "TagAndHEAD"
)

func (m VerifyMode) tag() bool  { return m == VerifyTag || m == VerifyTagAndHEAD }
func (m VerifyMode) head() bool { return m != VerifyTag }

// Verify is what a fetch checks the signatures with. Git signs with
// OpenPGP or, since Git 2.34, with SSH keys; each signature is checked
// against the keys of its kind.
type Verify struct {
	Mode VerifyMode
	// KeyRings are armored OpenPGP public key rings: the values of a
	// Flux verification Secret's keys ending in .asc.
	KeyRings []string
	// AuthorizedKeys are SSH public keys, one or more a value in
	// authorized_keys form: the values of keys ending in .sshpub.
	AuthorizedKeys []string
}

// The ways a signature check refuses a fetch, to be matched with
// errors.Is.
var (
	// ErrCommitSignature: the commit is unsigned, or signed by no key of
	// Verify.
	ErrCommitSignature = errors.New("commit signature not verified")
	// ErrTagSignature: the tag is signed by no key of Verify.
	ErrTagSignature = errors.New("tag signature not verified")
	// ErrTagUnsigned: the tag carries no signature: it is unsigned, or
	// lightweight.
	ErrTagUnsigned = errors.New("tag is not signed")
	// ErrNoTag: the mode checks a tag and the ref names none.
	ErrNoTag = errors.New("no tag to verify")
)

// VerifyFromSecret reads a Flux verification Secret: OpenPGP keys under
// keys ending in .asc, SSH keys under keys ending in .sshpub. Other keys
// are ignored; a Secret with neither is an error.
func VerifyFromSecret(mode VerifyMode, data map[string][]byte) (*Verify, error) {
	v := &Verify{Mode: mode}
	for k, value := range data {
		switch {
		case strings.HasSuffix(k, ".asc"):
			v.KeyRings = append(v.KeyRings, string(value))
		case strings.HasSuffix(k, ".sshpub"):
			v.AuthorizedKeys = append(v.AuthorizedKeys, string(value))
		}
	}
	if len(v.KeyRings) == 0 && len(v.AuthorizedKeys) == 0 {
		return nil, errors.New("holds no public key: OpenPGP keys go under keys ending in .asc, SSH keys under keys ending in .sshpub")
	}
	return v, nil
}

// check verifies what the mode asks for, in the repository the target was
// cloned into, and says what it verified with which keys.
func (v *Verify) check(repo *gogit.Repository, t target) (string, error) {
	var said []string
	if v.Mode.tag() {
		name := t.ref.Short()
		if t.tag.IsZero() || t.tag == t.commit {
			return "", fmt.Errorf("%w: tag %s is a lightweight tag, which carries no signature", ErrTagUnsigned, name)
		}
		tag, err := repo.TagObject(t.tag)
		if err != nil {
			return "", fmt.Errorf("read tag %s: %w", name, err)
		}
		if tag.PGPSignature == "" {
			return "", fmt.Errorf("%w: tag %s", ErrTagUnsigned, name)
		}
		key, err := v.signedBy(tag.PGPSignature, tag)
		if err != nil {
			return "", fmt.Errorf("%w: tag %s: %w", ErrTagSignature, name, err)
		}
		said = append(said, fmt.Sprintf("tag '%s' with key '%s'", name, key))
	}
	if v.Mode.head() {
		commit, err := repo.CommitObject(t.commit)
		if err != nil {
			return "", fmt.Errorf("read commit %s: %w", t.commit, err)
		}
		if commit.PGPSignature == "" {
			return "", fmt.Errorf("%w: commit %s is not signed", ErrCommitSignature, t.commit)
		}
		key, err := v.signedBy(commit.PGPSignature, commit)
		if err != nil {
			return "", fmt.Errorf("%w: commit %s: %w", ErrCommitSignature, t.commit, err)
		}
		said = append(said, fmt.Sprintf("commit '%s' with key '%s'", t.commit, key))
	}
	return "verified signature of " + strings.Join(said, " and "), nil
}

// signedObject is a commit or an annotated tag: go-git checks its
// OpenPGP signature (refusing a commit that carries more than one), and
// its encoding without the signature is what an SSH signature signs.
type signedObject interface {
	Verify(armoredKeyRing string) (*openpgp.Entity, error)
	EncodeWithoutSignature(o plumbing.EncodedObject) error
}

// encodedWithoutSignature is the object as it was signed: its encoding
// without the signature.
func encodedWithoutSignature(obj signedObject) ([]byte, error) {
	o := &plumbing.MemoryObject{}
	if err := obj.EncodeWithoutSignature(o); err != nil {
		return nil, err
	}
	r, err := o.Reader()
	if err != nil {
		return nil, err
	}
	defer func() { _ = r.Close() }()
	return io.ReadAll(r)
}

// sshSignatureArmor starts an SSH signature, as Git stores it.
const sshSignatureArmor = "-----BEGIN SSH SIGNATURE-----"

// signedBy checks obj's signature with the keys of its kind and names the
// key that made it: an OpenPGP key ID or an SSH key's SHA256
// fingerprint. OpenPGP signatures are go-git's to check; SSH ones, which
// go-git does not read, are checked here.
func (v *Verify) signedBy(signature string, obj signedObject) (string, error) {
	if strings.HasPrefix(strings.TrimSpace(signature), sshSignatureArmor) {
		if len(v.AuthorizedKeys) == 0 {
			return "", errors.New("it is an SSH signature and the Secret holds no .sshpub key")
		}
		payload, err := encodedWithoutSignature(obj)
		if err != nil {
			return "", fmt.Errorf("encode the signed object: %w", err)
		}
		return verifySSH(signature, payload, v.AuthorizedKeys)
	}
	if len(v.KeyRings) == 0 {
		return "", errors.New("it is an OpenPGP signature and the Secret holds no .asc key")
	}
	var errs []error
	for _, ring := range v.KeyRings {
		signer, err := obj.Verify(ring)
		if err == nil {
			return signer.PrimaryKey.KeyIdString(), nil
		}
		errs = append(errs, err)
	}
	return "", fmt.Errorf("no trusted OpenPGP key made the signature: %w", errors.Join(errs...))
}

// The SSHSIG format that ssh-keygen -Y sign writes and Git stores
// (OpenSSH's PROTOCOL.sshsig), in the "git" namespace.
const (
	sshsigMagic     = "SSHSIG"
	sshsigVersion   = 1
	sshsigNamespace = "git"
)

// sshsig is the signature blob, after the magic preamble.
type sshsig struct {
	Version       uint32
	PublicKey     []byte
	Namespace     string
	Reserved      string
	HashAlgorithm string
	Signature     []byte
}

// signedData is what the key signs: the message's hash with the
// signature's context.
type sshsigSignedData struct {
	Namespace     string
	Reserved      string
	HashAlgorithm string
	Hash          []byte
}

// verifySSH checks an armored SSH signature over payload against the
// keys in authorized_keys form and returns the SHA256 fingerprint of the
// key that made it.
func verifySSH(armored string, payload []byte, authorizedKeys []string) (string, error) {
	blob, err := unarmorSSH(armored)
	if err != nil {
		return "", err
	}
	if !bytes.HasPrefix(blob, []byte(sshsigMagic)) {
		return "", errors.New("the SSH signature has no SSHSIG preamble")
	}
	var sig sshsig
	if err := ssh.Unmarshal(blob[len(sshsigMagic):], &sig); err != nil {
		return "", fmt.Errorf("read the SSH signature: %w", err)
	}
	if sig.Version != sshsigVersion {
		return "", fmt.Errorf("SSH signature version %d, want %d", sig.Version, sshsigVersion)
	}
	if sig.Namespace != sshsigNamespace {
		return "", fmt.Errorf("SSH signature namespace %q, want %q", sig.Namespace, sshsigNamespace)
	}
	var h hash.Hash
	switch sig.HashAlgorithm {
	case "sha256":
		h = sha256.New()
	case "sha512":
		h = sha512.New()
	default:
		return "", fmt.Errorf("SSH signature hash %q is neither sha256 nor sha512", sig.HashAlgorithm)
	}
	h.Write(payload)
	signed := append([]byte(sshsigMagic), ssh.Marshal(sshsigSignedData{
		Namespace: sig.Namespace, Reserved: sig.Reserved, HashAlgorithm: sig.HashAlgorithm, Hash: h.Sum(nil),
	})...)
	var signature ssh.Signature
	if err := ssh.Unmarshal(sig.Signature, &signature); err != nil {
		return "", fmt.Errorf("read the SSH signature's signature: %w", err)
	}
	for _, keys := range authorizedKeys {
		for rest := []byte(keys); len(bytes.TrimSpace(rest)) > 0; {
			key, _, _, next, err := ssh.ParseAuthorizedKey(rest)
			if err != nil {
				return "", fmt.Errorf("read a .sshpub key: %w", err)
			}
			rest = next
			// The key must be the one the signature names, not only one
			// whose algorithm accepts it.
			if !bytes.Equal(key.Marshal(), sig.PublicKey) {
				continue
			}
			if err := key.Verify(signed, &signature); err != nil {
				return "", fmt.Errorf("the SSH signature does not match its key %s: %w", ssh.FingerprintSHA256(key), err)
			}
			return ssh.FingerprintSHA256(key), nil
		}
	}
	signer, err := ssh.ParsePublicKey(sig.PublicKey)
	if err != nil {
		return "", fmt.Errorf("no trusted SSH key made the signature, and its key cannot be read: %w", err)
	}
	return "", fmt.Errorf("no trusted SSH key made the signature: it names key %s", ssh.FingerprintSHA256(signer))
}

// unarmorSSH decodes the base64 between the armor lines.
func unarmorSSH(armored string) ([]byte, error) {
	const end = "-----END SSH SIGNATURE-----"
	body := strings.TrimSpace(armored)
	body = strings.TrimPrefix(body, sshSignatureArmor)
	i := strings.Index(body, end)
	if i < 0 {
		return nil, errors.New("the SSH signature has no end line")
	}
	blob, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(body[:i]), ""))
	if err != nil {
		return nil, fmt.Errorf("decode the SSH signature: %w", err)
	}
	return blob, nil
}
