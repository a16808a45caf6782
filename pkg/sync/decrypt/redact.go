package decrypt

import (
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/getsops/sops/v3"
)

// minRedacted is the length under which a decrypted value is not
// redacted: shorter ones would blank out common words of every message,
// and tell little.
const minRedacted = 4

// redactedText stands for a decrypted value in a message.
const redactedText = "<redacted>"

// Redact replaces, in msg, every value this Decryptor decrypted (of four
// characters or more), each line of one, and what a base64 value decodes
// to. Messages of kustomize and of the API server about decrypted objects
// and files go through it: they may quote a value, such as kustomize's
// message for an env file line it cannot read. A nil Decryptor returns
// msg.
func (d *Decryptor) Redact(msg string) string {
	if d == nil {
		return msg
	}
	for _, v := range d.values {
		msg = strings.ReplaceAll(msg, v, redactedText)
	}
	return msg
}

// RedactError is err with Redact applied to its message; errors.As and
// errors.Is still see what it wraps. A nil err stays nil.
func (d *Decryptor) RedactError(err error) error {
	if err == nil || d == nil || len(d.values) == 0 {
		return err
	}
	msg := d.Redact(err.Error())
	if msg == err.Error() {
		return err
	}
	return &redactedError{err: err, msg: msg}
}

// redactedError is an error whose message had decrypted values blanked
// out.
type redactedError struct {
	err error
	msg string
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// remember records, for Redact, the decrypted values: those of after
// whose counterpart in before was encrypted.
func (d *Decryptor) remember(before, after []any) {
	for i, v := range before {
		if i >= len(after) || !isEncrypted(v) {
			continue
		}
		value := leafText(after[i])
		candidates := []string{value}
		candidates = append(candidates, strings.Split(value, "\n")...)
		if b, err := base64.StdEncoding.DecodeString(value); err == nil && utf8.Valid(b) {
			candidates = append(candidates, string(b))
			candidates = append(candidates, strings.Split(string(b), "\n")...)
		}
		for _, c := range candidates {
			c = strings.TrimSpace(c)
			if len(c) >= minRedacted && !slices.Contains(d.values, c) {
				d.values = append(d.values, c)
			}
		}
	}
	// Longest first, so that a value is not half-replaced through a
	// shorter one inside it.
	slices.SortFunc(d.values, func(a, b string) int { return len(b) - len(a) })
}

// isEncrypted says whether a leaf is a value sops encrypted.
func isEncrypted(v any) bool {
	return strings.HasPrefix(leafText(v), "ENC[")
}

func leafText(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case sops.Comment:
		return v.Value
	}
	return fmt.Sprint(v)
}

// leaves lists the leaf values of a tree, comments too, in a fixed order:
// decryption replaces them one for one, so the lists of a tree before
// and after it line up.
func leaves(branches sops.TreeBranches) []any {
	var out []any
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case sops.TreeBranch:
			for _, item := range v {
				if c, ok := item.Key.(sops.Comment); ok {
					out = append(out, c)
				}
				walk(item.Value)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		default:
			out = append(out, v)
		}
	}
	for _, b := range branches {
		walk(b)
	}
	return out
}
