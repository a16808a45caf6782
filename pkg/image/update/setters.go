// Package update applies Flux image-automation "Setters" markers to YAML
// files held in memory, as the image-automation-controller's Setters
// strategy does.
//
// A marker is a line comment on a scalar field that names an image policy:
//
//	image: ghcr.io/org/app:1.0.0 # {"$imagepolicy": "flux-system:podinfo"}
//	tag: 1.0.0 # {"$imagepolicy": "flux-system:podinfo:tag"}
//	repository: ghcr.io/org/app # {"$imagepolicy": "flux-system:podinfo:name"}
//	digest: sha256:0123… # {"$imagepolicy": "flux-system:podinfo:digest"}
//
// The reference is Flux's setter name, "namespace:name" optionally followed
// by ":tag", ":name" or ":digest". As in Flux, two parts always mean
// namespace and name, so "podinfo:tag" names the policy "tag" in namespace
// "podinfo". As an extension, a single part ("podinfo") names a policy in
// the automation's own namespace.
//
// Flux re-serialises each changed file through kyaml. This package instead
// parses with kyaml only to find the marked fields and their positions, and
// splices the new values into the original bytes, so that everything other
// than the changed values (comments, blank lines, indentation, quoting, key
// order) stays exactly as written, and files without a change are not
// touched at all.
package update

import (
	"errors"
	"fmt"
	"sort"
)

// Image is an image policy's latest reference (Flux's ImagePolicy
// status.latestRef).
type Image struct {
	// Name is the image repository, e.g. "ghcr.io/org/app".
	Name string
	// Tag is the selected tag, e.g. "1.2.3".
	Tag string
	// Digest is the selected tag's digest, e.g. "sha256:…"; empty when the
	// policy does not reflect digests.
	Digest string
}

// String gives the full reference a whole-image marker is set to:
// "name:tag", or "name:tag@digest" when the policy has a digest, as Flux's
// ImageRef.String does.
func (i Image) String() string {
	s := i.Name
	if i.Tag != "" {
		s += ":" + i.Tag
	}
	if i.Digest != "" {
		s += "@" + i.Digest
	}
	return s
}

// Object identifies the object (YAML document) a change was made in; it is
// Flux's ObjectIdentifier flattened. Fields are empty where the document does
// not have them, e.g. a kustomization.yaml without metadata. It is
// comparable, so it serves as a map key, and its fields can be used from
// templates ({{ $obj.Kind }}/{{ $obj.Name }}).
type Object struct {
	APIVersion string
	Kind       string
	Namespace  string
	Name       string
}

// Change is one field set by a marker.
type Change struct {
	// OldValue is the field's value before the update.
	OldValue string
	// NewValue is the field's value after the update.
	NewValue string
	// Setter is Flux's setter name for the marker: the policy reference
	// with its namespace made explicit and its field suffix kept, e.g.
	// "flux-system:podinfo" or "flux-system:podinfo:tag".
	Setter string
}

// Result is the outcome of Apply. It offers the projections Flux's commit
// message templates use, as fields, so that both
//
//	{{range .Changes}}{{.OldValue}} -> {{.NewValue}}{{end}}
//
// and
//
//	{{range $file, $objs := .FileChanges}}{{range $obj, $changes := $objs}}{{$obj.Kind}}/{{$obj.Name}}{{end}}{{end}}
//
// work. The maps are never nil.
type Result struct {
	// Changes lists every change, ordered by file path, then by position in
	// the file. A change made in two places is listed twice (Flux's
	// Changes() would list it once).
	Changes []Change
	// FileChanges holds the changes by file path, then by object.
	FileChanges map[string]map[Object][]Change
	// Objects holds the changes by object, whatever file it is in.
	Objects map[Object][]Change
	// Files holds the new content of each changed file, and of no other.
	Files map[string][]byte
	// Policies holds, by "namespace/name", the latest image of every policy
	// a marker in scope names, whether or not that led to a change (Flux's
	// status.observedPolicies, which is keyed by name alone because Flux
	// only looks in the automation's namespace).
	Policies map[string]Image
}

// MissingPolicyError reports a marker naming an image policy that was not
// given to Apply, or that was given without a latest image.
type MissingPolicyError struct {
	// File is the slash path of the file holding the marker.
	File string
	// Line is the 1-based line of the marked field.
	Line int
	// Marker is the policy reference as written in the marker, e.g.
	// "flux-system:podinfo:tag".
	Marker string
	// Policy is the policy the marker resolves to, as "namespace/name".
	Policy string
}

func (e *MissingPolicyError) Error() string {
	return fmt.Sprintf("%s:%d: marker %q names image policy %s, which was not found or has no latest image",
		e.File, e.Line, e.Marker, e.Policy)
}

// Apply sets every marked field in the YAML files under dir to the value its
// policy gives, and reports what changed. It does not modify files: the new
// content of changed files is in Result.Files.
//
// files maps slash paths relative to the repository root to contents; only
// files named *.yaml or *.yml, at or under dir ("" or "." for all), and
// containing the text "$imagepolicy" are parsed, so that unrelated files such
// as Helm chart templates, which are not valid YAML, are never looked at (the
// same screening Flux does). A screened file that does not parse is an error
// naming it. ns is the automation's namespace, used for markers that omit a
// namespace. policies maps "namespace/name" to each policy's latest image.
//
// A marker naming a policy missing from policies is an error, a
// *MissingPolicyError (several are joined with errors.Join, so use errors.As).
// On any error the Result is empty: nothing is applied.
func Apply(files map[string][]byte, dir, ns string, policies map[string]Image) (Result, error) {
	parsed, err := scan(files, dir, ns)
	if err != nil {
		return Result{}, err
	}

	// Check every marker before changing anything, so that an automation
	// either applies all its markers or none.
	var missing []error
	for _, f := range parsed {
		for _, s := range f.sites {
			if img, ok := policies[s.ref.policyKey()]; !ok || img.Name == "" {
				missing = append(missing, &MissingPolicyError{File: f.path, Line: s.node.Line, Marker: s.ref.raw, Policy: s.ref.policyKey()})
			}
		}
	}
	if len(missing) > 0 {
		return Result{}, errors.Join(missing...)
	}

	res := Result{
		FileChanges: map[string]map[Object][]Change{},
		Objects:     map[Object][]Change{},
		Files:       map[string][]byte{},
		Policies:    map[string]Image{},
	}
	for _, f := range parsed {
		var edits []edit
		for _, s := range f.sites {
			img := policies[s.ref.policyKey()]
			res.Policies[s.ref.policyKey()] = img
			want, err := s.ref.value(img)
			if err != nil {
				return Result{}, fmt.Errorf("%s:%d: %w", f.path, s.node.Line, err)
			}
			if s.node.Value == want {
				continue
			}
			e, err := replacement(f.src, f.lineStarts, s.node, want)
			if err != nil {
				return Result{}, fmt.Errorf("%s:%d: set %q: %w", f.path, s.node.Line, s.ref.raw, err)
			}
			edits = append(edits, e)

			c := Change{OldValue: s.node.Value, NewValue: want, Setter: s.ref.setter()}
			res.Changes = append(res.Changes, c)
			if res.FileChanges[f.path] == nil {
				res.FileChanges[f.path] = map[Object][]Change{}
			}
			res.FileChanges[f.path][s.obj] = append(res.FileChanges[f.path][s.obj], c)
			res.Objects[s.obj] = append(res.Objects[s.obj], c)
		}
		if len(edits) > 0 {
			res.Files[f.path] = splice(f.src, edits)
		}
	}
	return res, nil
}

// ReferencedPolicies lists, sorted and without repeats, the policies
// ("namespace/name") that markers in the files Apply would consider name, so
// that a controller can fetch or watch only those. Arguments are as for
// Apply; an unparsable file or a malformed marker is an error.
func ReferencedPolicies(files map[string][]byte, dir, ns string) ([]string, error) {
	parsed, err := scan(files, dir, ns)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var keys []string
	for _, f := range parsed {
		for _, s := range f.sites {
			if k := s.ref.policyKey(); !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	sort.Strings(keys)
	return keys, nil
}
