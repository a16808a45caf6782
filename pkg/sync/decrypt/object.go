package decrypt

import (
	"encoding/base64"
	"sort"
	"strings"

	"github.com/getsops/sops/v3/cmd/sops/formats"
	"sigs.k8s.io/kustomize/api/resource"
)

// DecryptAnnotation set to DecryptDisabled on an object keeps it as it
// is, as in Flux.
const (
	DecryptAnnotation = "kustomize.toolkit.fluxcd.io/decrypt"
	DecryptDisabled   = "disabled"
)

// Resource decrypts, in place, an object kustomize built: a whole object
// with sops metadata (an object encrypted with sops --encrypt), or the
// data entries of a Secret that hold a sops file (one a secretGenerator
// read as it was committed).
func (d *Decryptor) Resource(res *resource.Resource) error {
	if strings.EqualFold(res.GetAnnotations()[DecryptAnnotation], DecryptDisabled) {
		return nil
	}
	what := objectName(res)
	if hasSOPSMetadata(res) {
		// JSON in and out, as in Flux: nothing of the YAML (comments,
		// styles) needs keeping on the way to the API server.
		data, err := res.MarshalJSON()
		if err != nil {
			return failed("decrypt %s: %w", what, err)
		}
		plain, err := d.decrypt(data, formats.Json, formats.Json)
		if err != nil {
			return failed("decrypt %s: %w", what, err)
		}
		if err := res.UnmarshalJSON(plain); err != nil {
			// The error could quote the decrypted object.
			return failed("decrypt %s: the decrypted object is not valid JSON", what)
		}
		return nil
	}
	if res.GetKind() != "Secret" {
		return nil
	}
	data := res.GetDataMap()
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	changed := false
	for _, k := range keys {
		value, err := base64.StdEncoding.DecodeString(data[k])
		if err != nil {
			// Not base64: the API server will say so.
			continue
		}
		in, ok := sniff(value)
		if !ok {
			continue
		}
		plain, err := d.decrypt(value, in, formatOf(k))
		if err != nil {
			return failed("decrypt %s entry %s: %w", what, k, err)
		}
		data[k] = base64.StdEncoding.EncodeToString(plain)
		changed = true
	}
	if changed {
		res.SetDataMap(data)
	}
	return nil
}

// hasSOPSMetadata says whether an object has sops's metadata, with its
// MAC, at its top.
func hasSOPSMetadata(res *resource.Resource) bool {
	f := res.Field("sops")
	if f.IsNilOrEmpty() {
		return false
	}
	return !f.Value.Field("mac").IsNilOrEmpty()
}

// objectName is "Kind namespace/name", or "Kind name" when the object
// has no namespace.
func objectName(res *resource.Resource) string {
	if ns := res.GetNamespace(); ns != "" {
		return res.GetKind() + " " + ns + "/" + res.GetName()
	}
	return res.GetKind() + " " + res.GetName()
}
