package helmrelease

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// jsonDigest is sha256:<hex> of v's JSON (map keys sorted, so canonical
// for values), or "" when v does not marshal: the digests of values,
// post-renderers and release records are all made so.
func jsonDigest(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}
