package update

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"unicode/utf8"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// markerKey is the key of Flux's shorthand marker, {"$imagepolicy": "…"}.
const markerKey = "$imagepolicy"

// markerRef is a parsed marker reference.
type markerRef struct {
	raw   string // as written in the marker
	ns    string
	name  string
	field string // "", "tag", "name" or "digest"
}

func (m markerRef) policyKey() string { return m.ns + "/" + m.name }

// setter gives Flux's setter name, which always carries the namespace.
func (m markerRef) setter() string {
	s := m.ns + ":" + m.name
	if m.field != "" {
		s += ":" + m.field
	}
	return s
}

// value gives what the marked field should hold for img.
func (m markerRef) value(img Image) (string, error) {
	switch m.field {
	case "tag":
		return img.Tag, nil
	case "name":
		return img.Name, nil
	case "digest":
		// Writing an empty digest would break the manifest; the policy most
		// likely does not reflect digests.
		if img.Digest == "" {
			return "", fmt.Errorf("marker %q wants a digest, but image policy %s has none (is digest reflection enabled?)", m.raw, m.policyKey())
		}
		return img.Digest, nil
	default:
		return img.String(), nil
	}
}

// parseRef parses a marker's policy reference, defaulting the namespace to
// ns when the reference is a bare name.
func parseRef(raw, ns string) (markerRef, error) {
	parts := strings.Split(raw, ":")
	ref := markerRef{raw: raw}
	switch len(parts) {
	case 1:
		if ns == "" {
			return ref, errors.New("has no namespace and no default namespace was given")
		}
		ref.ns, ref.name = ns, parts[0]
	case 2:
		ref.ns, ref.name = parts[0], parts[1]
	case 3:
		ref.ns, ref.name, ref.field = parts[0], parts[1], parts[2]
		if ref.field != "tag" && ref.field != "name" && ref.field != "digest" {
			return ref, fmt.Errorf("has unknown field %q (want tag, name or digest)", ref.field)
		}
	default:
		return ref, errors.New(`is not of the form "namespace:name[:tag|:name|:digest]"`)
	}
	if ref.ns == "" || ref.name == "" {
		return ref, errors.New("has an empty namespace or name")
	}
	return ref, nil
}

// markerIn returns the policy reference in a line comment, or "" when the
// comment is not a marker. A comment that looks like a marker but does not
// parse is an error, since ignoring it would silently never update the field.
func markerIn(comment string) (string, bool, error) {
	if !strings.Contains(comment, markerKey) {
		return "", false, nil
	}
	body := strings.TrimSpace(strings.TrimLeft(strings.TrimSpace(comment), "#"))
	if !strings.HasPrefix(body, "{") {
		return "", false, nil // prose that mentions $imagepolicy
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		return "", false, fmt.Errorf("marker %s is not a JSON object: %w", body, err)
	}
	raw, ok := m[markerKey]
	if !ok {
		return "", false, nil
	}
	var ref string
	if err := json.Unmarshal(raw, &ref); err != nil {
		return "", false, fmt.Errorf("marker %s: %q must be a string", body, markerKey)
	}
	return ref, true, nil
}

// site is one marked scalar field.
type site struct {
	ref  markerRef
	node *yaml.Node
	obj  Object
}

// parsedFile is a screened, parsed file and its marked fields in order.
type parsedFile struct {
	path       string
	src        []byte
	lineStarts []int // byte offset of each line's start; line n is lineStarts[n-1]
	sites      []site
}

// inScope reports whether p is a YAML file at or under dir (both cleaned).
func inScope(p, dir string) bool {
	if ext := path.Ext(p); ext != ".yaml" && ext != ".yml" {
		return false
	}
	return dir == "." || p == dir || strings.HasPrefix(p, dir+"/")
}

// scan parses the in-scope files that contain markers, in path order.
func scan(files map[string][]byte, dir, ns string) ([]parsedFile, error) {
	dir = path.Clean(strings.TrimPrefix(dir, "/"))
	if dir == "" || dir == "/" {
		dir = "."
	}
	paths := make([]string, 0, len(files))
	for p := range files {
		if inScope(path.Clean(p), dir) && bytes.Contains(files[p], []byte(markerKey)) {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)

	var out []parsedFile
	for _, p := range paths {
		f, err := parseFile(p, files[p], ns)
		if err != nil {
			return nil, err
		}
		if len(f.sites) > 0 {
			out = append(out, f)
		}
	}
	return out, nil
}

// parseFile decodes every document of a file from one stream, so that node
// positions are relative to the whole file rather than to each document.
func parseFile(p string, src []byte, ns string) (parsedFile, error) {
	f := parsedFile{path: p, src: src, lineStarts: []int{0}}
	for i, b := range src {
		if b == '\n' {
			f.lineStarts = append(f.lineStarts, i+1)
		}
	}

	dec := yaml.NewDecoder(bytes.NewReader(src))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return f, fmt.Errorf("parse %s as YAML: %w", p, err)
		}
		obj := objectOf(&doc)
		err = walk(&doc, func(n *yaml.Node, comment string) error {
			raw, ok, err := markerIn(comment)
			if err != nil {
				return fmt.Errorf("%s:%d: %w", p, n.Line, err)
			}
			if !ok {
				return nil
			}
			ref, err := parseRef(raw, ns)
			if err != nil {
				return fmt.Errorf("%s:%d: image policy marker %q %w", p, n.Line, raw, err)
			}
			f.sites = append(f.sites, site{ref: ref, node: n, obj: obj})
			return nil
		})
		if err != nil {
			return f, err
		}
	}
	return f, nil
}

// objectOf identifies the object a document holds.
func objectOf(doc *yaml.Node) Object {
	root := doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return Object{}
		}
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return Object{}
	}
	rn := yaml.NewRNode(root)
	return Object{
		APIVersion: rn.GetApiVersion(),
		Kind:       rn.GetKind(),
		Namespace:  rn.GetNamespace(),
		Name:       rn.GetName(),
	}
}

// walk calls visit for every scalar that is a mapping value or a sequence
// item, with its line comment, in source order. Aliases are not followed, so
// a field is visited once, where it is written.
func walk(n *yaml.Node, visit func(n *yaml.Node, comment string) error) error {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if err := walk(c, visit); err != nil {
				return err
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if v.Kind != yaml.ScalarNode {
				if err := walk(v, visit); err != nil {
					return err
				}
				continue
			}
			comment := v.LineComment
			// The parser may attach a same-line comment to the key instead.
			if comment == "" && k.Line == v.Line {
				comment = k.LineComment
			}
			if err := visit(v, comment); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		for _, e := range n.Content {
			if e.Kind != yaml.ScalarNode {
				if err := walk(e, visit); err != nil {
					return err
				}
				continue
			}
			if err := visit(e, e.LineComment); err != nil {
				return err
			}
		}
	}
	return nil
}

// edit replaces src[start:end] with text.
type edit struct {
	start, end int
	text       string
}

// replacement finds the bytes of scalar n in src and gives the edit that
// makes it hold value, keeping the scalar's quoting style where it can.
func replacement(src []byte, lineStarts []int, n *yaml.Node, value string) (edit, error) {
	if n.Line < 1 || n.Line > len(lineStarts) {
		return edit{}, fmt.Errorf("field position line %d is outside the file", n.Line)
	}
	// The parser counts columns in characters, not bytes.
	start := lineStarts[n.Line-1]
	for i := 1; i < n.Column && start < len(src); i++ {
		_, w := utf8.DecodeRune(src[start:])
		start += w
	}
	// Step over node properties (an anchor or a tag) should the position
	// point at them rather than at the value.
	for start < len(src) && (src[start] == '&' || src[start] == '!') {
		for start < len(src) && src[start] != ' ' && src[start] != '\t' && src[start] != '\n' {
			start++
		}
		for start < len(src) && (src[start] == ' ' || src[start] == '\t') {
			start++
		}
	}

	end, err := scalarEnd(src, start, n)
	if err != nil {
		return edit{}, err
	}
	text, err := formatScalar(n.Style, value)
	if err != nil {
		return edit{}, err
	}
	return edit{start: start, end: end, text: text}, nil
}

// scalarEnd gives the offset just past the single-line scalar n starting at
// start. Multi-line and block scalars are refused: image references never
// need them, and rewriting them in place is error-prone.
func scalarEnd(src []byte, start int, n *yaml.Node) (int, error) {
	switch {
	case n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		return 0, errors.New("cannot set a block scalar (| or >); write the value on one line")
	case n.Style&yaml.DoubleQuotedStyle != 0:
		if start >= len(src) || src[start] != '"' {
			return 0, errors.New("cannot locate the quoted value")
		}
		for i := start + 1; i < len(src); i++ {
			switch src[i] {
			case '\\':
				i++
			case '"':
				return i + 1, nil
			case '\n':
				return 0, errors.New("cannot set a quoted value that spans lines")
			}
		}
		return 0, errors.New("unterminated quoted value")
	case n.Style&yaml.SingleQuotedStyle != 0:
		if start >= len(src) || src[start] != '\'' {
			return 0, errors.New("cannot locate the quoted value")
		}
		for i := start + 1; i < len(src); i++ {
			switch src[i] {
			case '\'':
				if i+1 < len(src) && src[i+1] == '\'' {
					i++
					continue
				}
				return i + 1, nil
			case '\n':
				return 0, errors.New("cannot set a quoted value that spans lines")
			}
		}
		return 0, errors.New("unterminated quoted value")
	default:
		if n.Value == "" {
			return 0, errors.New("cannot set an empty field; give it a placeholder value")
		}
		// A plain scalar on one line is written exactly as its value.
		if !bytes.HasPrefix(src[start:], []byte(n.Value)) {
			return 0, errors.New("cannot set a plain value that spans lines")
		}
		return start + len(n.Value), nil
	}
}

// formatScalar writes value as a YAML scalar in the given style. A plain
// value that would not read back as that string (e.g. "1.10", "true") is
// double-quoted, as Flux's kyaml serialisation would do. The result is
// checked by parsing it back.
func formatScalar(style yaml.Style, value string) (string, error) {
	var text string
	switch {
	case style&yaml.SingleQuotedStyle != 0 && !strings.Contains(value, "\n"):
		text = "'" + strings.ReplaceAll(value, "'", "''") + "'"
	case style&yaml.DoubleQuotedStyle != 0:
		// A JSON string is a valid YAML double-quoted scalar.
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(value); err != nil {
			return "", fmt.Errorf("quote %q: %w", value, err)
		}
		text = strings.TrimSuffix(b.String(), "\n")
	default:
		var b bytes.Buffer
		enc := yaml.NewEncoder(&b)
		if err := enc.Encode(&yaml.Node{Kind: yaml.ScalarNode, Tag: yaml.NodeTagString, Value: value}); err != nil {
			return "", fmt.Errorf("encode %q: %w", value, err)
		}
		if err := enc.Close(); err != nil {
			return "", fmt.Errorf("encode %q: %w", value, err)
		}
		text = strings.TrimSuffix(b.String(), "\n")
	}

	if strings.Contains(text, "\n") || !readsBackAs(text, value) {
		return "", fmt.Errorf("cannot write %q as a single-line YAML value", value)
	}
	return text, nil
}

// readsBackAs reports whether text, as a mapping value, parses to the string
// value.
func readsBackAs(text, value string) bool {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte("v: "+text), &doc); err != nil {
		return false
	}
	if len(doc.Content) != 1 || len(doc.Content[0].Content) != 2 {
		return false
	}
	v := doc.Content[0].Content[1]
	return v.Kind == yaml.ScalarNode && v.ShortTag() == yaml.NodeTagString && v.Value == value
}

// splice applies edits, which do not overlap, to a copy of src.
func splice(src []byte, edits []edit) []byte {
	sort.Slice(edits, func(i, j int) bool { return edits[i].start < edits[j].start })
	var out bytes.Buffer
	out.Grow(len(src))
	last := 0
	for _, e := range edits {
		out.Write(src[last:e.start])
		out.WriteString(e.text)
		last = e.end
	}
	out.Write(src[last:])
	return out.Bytes()
}
