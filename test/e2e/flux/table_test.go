package flux

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// The support a row of the field table declares.
const (
	// Supported: the field works as in Flux.
	Supported = "supported"
	// NoEffect: accepted and stored, and on purpose does nothing, which
	// the row says why (Flux documents some fields as not implemented).
	NoEffect = "no effect"
	// Refused: the API server refuses the field, naming it.
	Refused = "refused"
	// Written: a status field Sluice writes.
	Written = "written"
	// NotWritten: a status field Sluice leaves empty, which the row says why.
	NotWritten = "not written"
)

// row is one field of the table.
type row struct {
	kind    string
	path    string
	support string
	notes   string
	tests   []string
	line    int
}

var (
	kindHeading = regexp.MustCompile(`^## ([A-Za-z]+) \(`)
	testName    = regexp.MustCompile("`(Test[A-Za-z0-9_]+)`")
)

// readTable parses docs/flux-fields.md: a `## Kind (...)` heading, then a
// table whose rows are | `path` | support | notes | tests |.
func readTable(path string) ([]row, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var (
		rows []row
		kind string
	)
	scanner := bufio.NewScanner(f)
	for line := 1; scanner.Scan(); line++ {
		text := scanner.Text()
		if m := kindHeading.FindStringSubmatch(text); m != nil {
			kind = m[1]
			continue
		}
		if !strings.HasPrefix(text, "| `") || kind == "" {
			continue
		}
		cells := strings.Split(strings.Trim(text, "|"), " | ")
		if len(cells) != 4 {
			return nil, fmt.Errorf("%s:%d: want 4 cells, found %d", path, line, len(cells))
		}
		r := row{
			kind:    kind,
			path:    strings.Trim(strings.TrimSpace(cells[0]), "`"),
			support: strings.TrimSpace(cells[1]),
			notes:   strings.TrimSpace(cells[2]),
			line:    line,
		}
		for _, m := range testName.FindAllStringSubmatch(cells[3], -1) {
			r.tests = append(r.tests, m[1])
		}
		rows = append(rows, r)
	}
	return rows, scanner.Err()
}
