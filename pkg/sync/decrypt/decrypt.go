// Package decrypt decrypts SOPS-encrypted manifests for a Kustomization's
// spec.decryption, as Flux's kustomize-controller does: whole objects
// whose values sops encrypted, Secret entries that hold a sops file, and
// the files that kustomize secretGenerators, configMapGenerators and
// patches read.
//
// The keys are age identities and OpenPGP private keys from the Secret
// that spec.decryption.secretRef names. They are held in memory and handed
// to sops through a key service of this package's own, so sops never reads
// the operator's environment, home folder or GnuPG keyring, never runs gpg
// or an age plugin, and never calls a cloud KMS.
//
// No error of this package holds a decrypted value: where sops would quote
// one, the message is replaced.
package decrypt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"

	"filippo.io/age"
	agearmor "filippo.io/age/armor"
	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/getsops/sops/v3"
	"github.com/getsops/sops/v3/aes"
	"github.com/getsops/sops/v3/cmd/sops/formats"
	"github.com/getsops/sops/v3/config"
	"github.com/getsops/sops/v3/keyservice"
	"github.com/getsops/sops/v3/stores/dotenv"
	"github.com/getsops/sops/v3/stores/ini"
	"github.com/getsops/sops/v3/stores/json"
	"github.com/getsops/sops/v3/stores/yaml"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	syncv1 "sluice.dev/sluice/api/sync/v1"
)

// The keys are read from a Secret, through the manager's cache.
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch

// The suffixes of the key Secret's entries, as in Flux.
const (
	// AgeKeySuffix marks an entry of age identities, one a line.
	AgeKeySuffix = ".agekey"
	// PGPKeySuffix marks an entry of armored OpenPGP private keys.
	PGPKeySuffix = ".asc"
)

// Error is a failure to decrypt, or to read the keys to decrypt with. Its
// message names the object, file or Secret entry and holds no decrypted
// value.
type Error struct{ Err error }

// Error returns the message of the failure.
func (e *Error) Error() string { return e.Err.Error() }

// Unwrap returns the failure, for errors.Is and errors.As.
func (e *Error) Unwrap() error { return e.Err }

func failed(format string, args ...any) error {
	return &Error{Err: fmt.Errorf(format, args...)}
}

// Decryptor decrypts with the keys of one Kustomization. It is meant for
// one build: it is not safe for concurrent use.
type Decryptor struct {
	// secret names where the keys came from, for messages; empty when
	// spec.decryption has no secretRef.
	secret string
	keys   *keyServer
	// values are what was decrypted, for Redact, longest first.
	values []string
	// services are the key services sops is given: only this package's,
	// never sops's default one, which reads the environment and the home
	// folder and runs gpg.
	services []keyservice.KeyServiceClient
}

// ForKustomization reads the keys of the Kustomization's spec.decryption
// through c. It returns nil when the Kustomization decrypts nothing.
func ForKustomization(ctx context.Context, c client.Reader, ks *syncv1.Kustomization) (*Decryptor, error) {
	dec := ks.Spec.Decryption
	if dec == nil {
		return nil, nil
	}
	if dec.Provider != syncv1.DecryptionProviderSOPS {
		return nil, failed("spec.decryption.provider: %q is not supported: only %s", dec.Provider, syncv1.DecryptionProviderSOPS)
	}
	if dec.SecretRef == nil {
		return New("", nil)
	}
	key := types.NamespacedName{Namespace: ks.Namespace, Name: dec.SecretRef.Name}
	secret := &corev1.Secret{}
	if err := c.Get(ctx, key, secret); err != nil {
		return nil, failed("spec.decryption.secretRef: read Secret %s: %w", key, err)
	}
	return New(key.String(), secret.Data)
}

// New makes a Decryptor of the entries of a key Secret, named secret in
// messages: entries ending in .agekey hold age identities (one a line,
// # comments allowed) and entries ending in .asc armored OpenPGP private
// keys. Other entries are ignored, as Flux ignores those it has no use
// for.
func New(secret string, entries map[string][]byte) (*Decryptor, error) {
	ks := &keyServer{}
	names := make([]string, 0, len(entries))
	for name := range entries {
		names = append(names, name)
	}
	// Sorted, so that a Secret with two bad entries always names the
	// same one.
	sort.Strings(names)
	for _, name := range names {
		var err error
		switch path.Ext(name) {
		case AgeKeySuffix:
			err = ks.addAge(entries[name])
		case PGPKeySuffix:
			err = ks.addPGP(entries[name])
		default:
			continue
		}
		if err != nil {
			return nil, failed("spec.decryption.secretRef: Secret %s entry %s: %w", secret, name, err)
		}
	}
	return &Decryptor{secret: secret, keys: ks, services: []keyservice.KeyServiceClient{keyservice.NewCustomLocalClient(ks)}}, nil
}

// decrypt decrypts a sops file of format in and writes it in format out.
// Its errors hold no decrypted value.
func (d *Decryptor) decrypt(data []byte, in, out formats.Format) (plain []byte, err error) {
	defer func() {
		// Malformed input has made sops panic before; the panic's value
		// may hold anything, so it is not shown.
		if r := recover(); r != nil {
			plain, err = nil, fmt.Errorf("sops failed on malformed %s input", formatName(in))
		}
	}()
	tree, err := Store(in).LoadEncryptedFile(data)
	if err != nil {
		// The input is the file as committed: what it shows is not
		// secret.
		return nil, fmt.Errorf("read it as a sops-encrypted %s file: %w", formatName(in), userError(err))
	}
	key, err := tree.Metadata.GetDataKeyWithKeyServices(d.services, sops.DefaultDecryptionOrder)
	if err != nil {
		return nil, d.noKey(tree.Metadata)
	}
	before := leaves(tree.Branches)
	// The MAC is not checked, as in Flux: kustomize changes the objects
	// it builds (a namespace, labels), and the MAC covers every value.
	if _, err := tree.Decrypt(key, aes.NewCipher()); err != nil {
		return nil, redact(err)
	}
	d.remember(before, leaves(tree.Branches))
	plain, err = Store(out).EmitPlainFile(tree.Branches)
	if err != nil {
		// sops's message may quote a decrypted value.
		return nil, fmt.Errorf("the decrypted values cannot be written as %s", formatName(out))
	}
	return plain, nil
}

// noKey says why no key decrypted a file's data key: which keys it was
// encrypted for, and which of them Sluice has.
func (d *Decryptor) noKey(m sops.Metadata) error {
	var recipients []string
	usable := false
	for _, group := range m.KeyGroups {
		for _, k := range group {
			id := k.TypeToIdentifier()
			recipients = append(recipients, id+" "+k.ToString())
			usable = usable || id == "age" || id == "pgp"
		}
	}
	slices.Sort(recipients)
	encryptedFor := "it is encrypted for " + strings.Join(recipients, ", ")
	switch {
	case len(recipients) == 0:
		return errors.New("its sops metadata names no key")
	case !usable:
		return fmt.Errorf("%s: only age and OpenPGP keys are supported, not cloud KMS or Vault", encryptedFor)
	case d.secret == "":
		return fmt.Errorf("%s, and spec.decryption.secretRef is not set", encryptedFor)
	case d.keys.empty():
		return fmt.Errorf("%s, and Secret %s has no %s or %s entry", encryptedFor, d.secret, AgeKeySuffix, PGPKeySuffix)
	}
	return fmt.Errorf("%s, and no key of Secret %s decrypts it", encryptedFor, d.secret)
}

// quoted is the message sops gives for a value that is not in its
// encrypted form: it quotes the value, which may be a secret someone
// wrote in plain text.
var quoted = regexp.MustCompile(`(?s)Input string .* does not match sops' data format`)

// redact removes the value sops quotes from an error of tree decryption.
func redact(err error) error {
	return errors.New(quoted.ReplaceAllLiteralString(err.Error(), "a value (not shown) is not in sops' encrypted form"))
}

// userError is sops's message meant for people, when it has one.
func userError(err error) error {
	var u sops.UserError
	if errors.As(err, &u) {
		return errors.New(u.UserError())
	}
	return err
}

// Store is sops's store of a format, with sops's own defaults: what reads
// and writes an encrypted file of that format.
func Store(f formats.Format) sops.Store {
	c := config.NewStoresConfig()
	switch f {
	case formats.Yaml:
		return yaml.NewStore(&c.YAML)
	case formats.Json:
		return json.NewStore(&c.JSON)
	case formats.Dotenv:
		return dotenv.NewStore(&c.Dotenv)
	case formats.Ini:
		return ini.NewStore(&c.INI)
	}
	return json.NewBinaryStore(&c.JSONBinary)
}

func formatName(f formats.Format) string {
	switch f {
	case formats.Yaml:
		return "YAML"
	case formats.Json:
		return "JSON"
	case formats.Dotenv:
		return "dotenv"
	case formats.Ini:
		return "INI"
	}
	return "binary"
}

// markers are what each format's sops file holds, and a plain file does
// not: the encrypted MAC in the sops metadata.
var markers = map[formats.Format][]byte{
	formats.Binary: []byte(`"mac": "ENC[`),
	formats.Dotenv: []byte("sops_mac=ENC["),
	formats.Ini:    []byte("[sops]"),
	formats.Json:   []byte(`"mac": "ENC[`),
	formats.Yaml:   []byte("mac: ENC["),
}

// encrypted says whether data is a sops file of format f.
func encrypted(data []byte, f formats.Format) bool {
	return bytes.Contains(data, markers[f])
}

// sniff is the format of a sops file by its markers, YAML first; ok is
// false for a file that is not one.
func sniff(data []byte) (f formats.Format, ok bool) {
	for _, f := range []formats.Format{formats.Yaml, formats.Json, formats.Dotenv, formats.Ini} {
		if encrypted(data, f) {
			return f, true
		}
	}
	return formats.Binary, false
}

// formatOf is the format of a file by its name, as sops judges it, with
// the .dockerconfigjson of Secrets as JSON, as in Flux.
func formatOf(name string) formats.Format {
	if strings.HasSuffix(name, corev1.DockerConfigJsonKey) {
		return formats.Json
	}
	return formats.FormatForPath(name)
}

// keyServer is a sops key service that decrypts data keys with the age
// identities and OpenPGP keys it holds in memory, and nothing else.
type keyServer struct {
	age []age.Identity
	pgp openpgp.EntityList
}

var _ keyservice.KeyServiceServer = (*keyServer)(nil)

func (s *keyServer) empty() bool { return len(s.age) == 0 && len(s.pgp) == 0 }

// addAge adds the age identities of an entry, one a line. Its errors
// never quote a line: a line may be a private key with a typo.
func (s *keyServer) addAge(data []byte) error {
	n := 0
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var id age.Identity
		var err error
		switch {
		case strings.HasPrefix(line, "AGE-SECRET-KEY-PQ-1"):
			id, err = age.ParseHybridIdentity(line)
		case strings.HasPrefix(line, "AGE-SECRET-KEY-1"):
			id, err = age.ParseX25519Identity(line)
		case strings.HasPrefix(line, "AGE-PLUGIN-"):
			// A plugin is a program the operator would run.
			return fmt.Errorf("line %d is an age plugin identity: plugins are not supported", i+1)
		default:
			return fmt.Errorf("line %d is not an age secret key (AGE-SECRET-KEY-1...)", i+1)
		}
		if err != nil {
			return fmt.Errorf("line %d is a malformed age secret key", i+1)
		}
		s.age = append(s.age, id)
		n++
	}
	if n == 0 {
		return errors.New("no age secret key in it")
	}
	return nil
}

// addPGP adds the armored OpenPGP private keys of an entry: one or more
// armored blocks, each a keyring.
func (s *keyServer) addPGP(data []byte) error {
	blocks := pgpBlock.FindAll(data, -1)
	if len(blocks) == 0 {
		return errors.New("no armored OpenPGP private key in it")
	}
	for _, block := range blocks {
		ring, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(block))
		if err != nil {
			return fmt.Errorf("not an armored OpenPGP key: %w", err)
		}
		for _, e := range ring {
			if e.PrivateKey == nil {
				return fmt.Errorf("key %X is a public key: a private key is needed", e.PrimaryKey.Fingerprint)
			}
			if e.PrivateKey.Encrypted {
				// As in Flux, which imports keys without a passphrase.
				return fmt.Errorf("key %X is protected by a passphrase, which is not supported", e.PrimaryKey.Fingerprint)
			}
		}
		s.pgp = append(s.pgp, ring...)
	}
	return nil
}

// pgpBlock is one armored OpenPGP block.
var pgpBlock = regexp.MustCompile(`(?s)-----BEGIN PGP [A-Z ]+-----.*?-----END PGP [A-Z ]+-----`)

// Decrypt decrypts a data key with an age identity or an OpenPGP key.
func (s *keyServer) Decrypt(_ context.Context, req *keyservice.DecryptRequest) (*keyservice.DecryptResponse, error) {
	var plain []byte
	var err error
	switch req.GetKey().GetKeyType().(type) {
	case *keyservice.Key_AgeKey:
		plain, err = s.decryptAge(req.GetCiphertext())
	case *keyservice.Key_PgpKey:
		plain, err = s.decryptPGP(req.GetCiphertext())
	default:
		return nil, errors.New("only age and OpenPGP keys are supported")
	}
	if err != nil {
		return nil, err
	}
	return &keyservice.DecryptResponse{Plaintext: plain}, nil
}

// Encrypt is not offered: the operator only decrypts.
func (s *keyServer) Encrypt(context.Context, *keyservice.EncryptRequest) (*keyservice.EncryptResponse, error) {
	return nil, errors.New("the operator does not encrypt")
}

func (s *keyServer) decryptAge(ciphertext []byte) ([]byte, error) {
	if len(s.age) == 0 {
		return nil, errors.New("no age identity")
	}
	r, err := age.Decrypt(agearmor.NewReader(bytes.NewReader(ciphertext)), s.age...)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

func (s *keyServer) decryptPGP(ciphertext []byte) ([]byte, error) {
	if len(s.pgp) == 0 {
		return nil, errors.New("no OpenPGP key")
	}
	block, err := armor.Decode(bytes.NewReader(ciphertext))
	if err != nil {
		return nil, fmt.Errorf("the data key is not an armored OpenPGP message: %w", err)
	}
	md, err := openpgp.ReadMessage(block.Body, s.pgp, nil, nil)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(md.UnverifiedBody)
}
