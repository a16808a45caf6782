package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// genericHMAC is generic with the body signed: X-Signature is
// sha256=<hex HMAC-SHA256 of the body keyed by the Secret's token>, the
// header Flux's generic-hmac sends and Sluice's generic-hmac Receiver
// checks.
type genericHMAC struct{}

func (genericHMAC) build(t target, n note) (post, error) {
	if t.token == "" {
		return post{}, errNoToken
	}
	p, err := generic{}.build(t, n)
	if err != nil {
		return post{}, err
	}
	mac := hmac.New(sha256.New, []byte(t.token))
	mac.Write(p.body)
	p.header.Set("X-Signature", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	return p, nil
}
