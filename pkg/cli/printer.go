package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/yaml"
)

// none is printed in a table cell that has no value, so that every row
// has as many cells as the header.
const none = "-"

// table writes aligned columns as kubectl does.
type table struct {
	w    *tabwriter.Writer
	cols int
}

func newTable(out io.Writer, header ...string) *table {
	t := &table{w: tabwriter.NewWriter(out, 0, 8, 3, ' ', 0), cols: len(header)}
	t.row(header...)
	return t
}

func (t *table) row(cells ...string) {
	cells = slices.Clone(cells)
	for i, c := range cells {
		if c == "" {
			cells[i] = none
		}
		// A newline in a cell (a multi-line message) would break the
		// table's rows.
		cells[i] = strings.Join(strings.Fields(cells[i]), " ")
	}
	fmt.Fprintln(t.w, strings.Join(cells, "\t"))
}

func (t *table) flush() error {
	if err := t.w.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}

// age is how long ago t was, as kubectl shows it ("3m", "2d5h").
func age(t time.Time, now time.Time) string {
	if t.IsZero() {
		return none
	}
	return duration.HumanDuration(now.Sub(t))
}

// printObjects writes objs as JSON or YAML: the object itself when single,
// else a v1 List as kubectl prints one.
func (g *globals) printObjects(c client.Client, objs []client.Object, single bool) error {
	clean := make([]client.Object, len(objs))
	for i, o := range objs {
		o, ok := o.DeepCopyObject().(client.Object)
		if !ok {
			return fmt.Errorf("copy %s: not an object", objs[i].GetName())
		}
		// Objects read through a typed client have no apiVersion and kind;
		// the output should apply as is.
		gvk, err := apiutil.GVKForObject(o, c.Scheme())
		if err != nil {
			return fmt.Errorf("find the kind of %T: %w", o, err)
		}
		o.GetObjectKind().SetGroupVersionKind(gvk)
		// Managed fields are noise to a reader; kubectl hides them too.
		o.SetManagedFields(nil)
		clean[i] = o
	}
	var v any = map[string]any{"apiVersion": "v1", "kind": "List", "metadata": map[string]any{}, "items": clean}
	if single && len(clean) == 1 {
		v = clean[0]
	}
	return g.print(v)
}

// print writes v in the -o format, JSON or YAML.
func (g *globals) print(v any) error {
	var data []byte
	var err error
	switch g.output {
	case outputYAML:
		data, err = yaml.Marshal(v)
	default:
		data, err = json.MarshalIndent(v, "", "    ")
		data = append(data, '\n')
	}
	if err != nil {
		return fmt.Errorf("encode output as %s: %w", g.output, err)
	}
	if _, err := g.streams.Out.Write(data); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}
