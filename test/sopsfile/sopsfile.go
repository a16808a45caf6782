// Package sopsfile encrypts test fixtures as `sops --encrypt` does, with
// sops's Go API and keys generated for the test: no key is committed, and
// no sops, gpg or age binary is needed.
package sopsfile

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/getsops/sops/v3"
	"github.com/getsops/sops/v3/aes"
	sopsage "github.com/getsops/sops/v3/age"
	"github.com/getsops/sops/v3/cmd/sops/formats"
	"github.com/getsops/sops/v3/kms"
	"github.com/getsops/sops/v3/pgp"

	"sluice.dev/sluice/pkg/sync/decrypt"
)

// The formats Encrypt writes.
const (
	YAML   = formats.Yaml
	JSON   = formats.Json
	Dotenv = formats.Dotenv
)

// sopsModule is the module whose version the metadata names.
const sopsModule = "github.com/getsops/sops/v3"

// sopsVersion is written in the metadata, as the sops binary of the
// module's version would: the version go.mod requires (sops's version
// package pulls in more modules, and a test binary's build information
// lists no modules), read once.
var sopsVersion = sync.OnceValues(func() (string, error) {
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Version}}", sopsModule)
	// This file's folder is in the module, wherever the test runs.
	if _, file, _, ok := runtime.Caller(0); ok {
		cmd.Dir = filepath.Dir(file)
	}
	out, err := cmd.Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return "", fmt.Errorf("go list -m %s: %w: %s", sopsModule, err, bytes.TrimSpace(exit.Stderr))
		}
		return "", fmt.Errorf("go list -m %s: %w", sopsModule, err)
	}
	return strings.TrimPrefix(strings.TrimSpace(string(out)), "v"), nil
})

// AgeKey is an age identity made for a test.
type AgeKey struct {
	// Identity is the secret key, AGE-SECRET-KEY-1...
	Identity string
	// Recipient is the public key, age1...
	Recipient string
}

// NewAgeKey makes an age identity.
func NewAgeKey(t testing.TB) AgeKey {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return AgeKey{Identity: id.String(), Recipient: id.Recipient().String()}
}

// PGPKey is an OpenPGP key made for a test, without a passphrase.
type PGPKey struct {
	// Private is the armored private key, as a .asc entry holds it.
	Private []byte
	// Public is the armored public key.
	Public []byte
	// Fingerprint is the primary key's, upper-case hex.
	Fingerprint string
	// pubring is a binary keyring file of the public key, which sops's
	// own OpenPGP encryption reads.
	pubring string
}

// NewPGPKey makes an OpenPGP key (EdDSA, with an ECDH subkey).
func NewPGPKey(t testing.TB) PGPKey {
	t.Helper()
	e, err := openpgp.NewEntity("sluice test", "", "test@sluice.invalid", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		t.Fatal(err)
	}
	armored := func(blockType string, write func(*bytes.Buffer) error) []byte {
		var raw bytes.Buffer
		if err := write(&raw); err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		w, err := armor.Encode(&buf, blockType, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(raw.Bytes()); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	var pub bytes.Buffer
	if err := e.Serialize(&pub); err != nil {
		t.Fatal(err)
	}
	ring := filepath.Join(t.TempDir(), "pubring.gpg")
	if err := os.WriteFile(ring, pub.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return PGPKey{
		Private:     armored(openpgp.PrivateKeyType, func(b *bytes.Buffer) error { return e.SerializePrivate(b, nil) }),
		Public:      armored(openpgp.PublicKeyType, func(b *bytes.Buffer) error { return e.Serialize(b) }),
		Fingerprint: strings.ToUpper(hex.EncodeToString(e.PrimaryKey.Fingerprint)),
		pubring:     ring,
	}
}

// ProtectedPrivate is the armored private key, its secret parts
// encrypted with passphrase.
func (k PGPKey) ProtectedPrivate(t testing.TB, passphrase string) []byte {
	t.Helper()
	ring, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(k.Private))
	if err != nil || len(ring) != 1 {
		t.Fatalf("read the key back: %v", err)
	}
	if err := ring[0].EncryptPrivateKeys([]byte(passphrase), nil); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PrivateKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ring[0].SerializePrivateWithoutSigning(w, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Options are the keys and rules of an encryption.
type Options struct {
	// Age and PGP are the keys the data key is encrypted for, in one
	// key group: any one of them decrypts.
	Age []AgeKey
	PGP []PGPKey
	// KMSARN adds an AWS KMS key to the group, with a data key no one
	// can decrypt: a file made for a cloud KMS.
	KMSARN string
	// EncryptedRegex encrypts only the values under matching keys, as
	// `sops --encrypted-regex`; empty encrypts every value.
	EncryptedRegex string
}

// Encrypt encrypts a plain file of format f as `sops --encrypt` does:
// a fresh data key, encrypted for each key; the values encrypted with it;
// the MAC; the sops metadata.
func Encrypt(t testing.TB, plain []byte, f formats.Format, opts Options) []byte {
	t.Helper()
	st := decrypt.Store(f)
	branches, err := st.LoadPlainFile(plain)
	if err != nil {
		t.Fatalf("read the plain %v file: %v", f, err)
	}
	var group sops.KeyGroup
	for _, k := range opts.Age {
		mk, err := sopsage.MasterKeyFromRecipient(k.Recipient)
		if err != nil {
			t.Fatal(err)
		}
		group = append(group, mk)
	}
	for _, k := range opts.PGP {
		mk := pgp.NewMasterKeyFromFingerprint(k.Fingerprint)
		pgp.PubRing(k.pubring).ApplyToMasterKey(mk)
		group = append(group, mk)
	}
	dataKey := make([]byte, 32)
	if _, err := rand.Read(dataKey); err != nil {
		t.Fatal(err)
	}
	for _, k := range group {
		if err := k.Encrypt(dataKey); err != nil {
			t.Fatalf("encrypt the data key for %s: %v", k.ToString(), err)
		}
	}
	if opts.KMSARN != "" {
		group = append(group, &kms.MasterKey{Arn: opts.KMSARN, EncryptedKey: "AQICAHhtZXJlbHkgYSB0ZXN0", CreationDate: time.Now().UTC()})
	}
	version, err := sopsVersion()
	if err != nil {
		t.Fatalf("the sops version to write: %v", err)
	}
	tree := sops.Tree{Branches: branches, Metadata: sops.Metadata{
		KeyGroups:      []sops.KeyGroup{group},
		EncryptedRegex: opts.EncryptedRegex,
		Version:        version,
	}}
	cipher := aes.NewCipher()
	mac, err := tree.Encrypt(dataKey, cipher)
	if err != nil {
		t.Fatalf("encrypt the values: %v", err)
	}
	tree.Metadata.LastModified = time.Now().UTC()
	if tree.Metadata.MessageAuthenticationCode, err = cipher.Encrypt(mac, dataKey, tree.Metadata.LastModified.Format(time.RFC3339)); err != nil {
		t.Fatalf("encrypt the MAC: %v", err)
	}
	out, err := st.EmitEncryptedFile(tree)
	if err != nil {
		t.Fatalf("write the encrypted file: %v", err)
	}
	return out
}
