package policy

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// fuzzPolicy makes a policy of a kind from fuzzed text: a semver range,
// or an order for alphabetical and numerical.
func fuzzPolicy(kind uint8, rangeOrOrder, pattern, extract string) Policy {
	p := Policy{FilterPattern: pattern, Extract: extract}
	switch kind % 3 {
	case 0:
		p.SemVer = &SemVer{Range: rangeOrOrder}
	case 1:
		p.Alphabetical = &Ordering{Order: rangeOrOrder}
	default:
		p.Numerical = &Ordering{Order: rangeOrOrder}
	}
	return p
}

// FuzzPolicy ranks fuzzed tags (one a line) under fuzzed policies: a
// semver range, or an alphabetical or numerical order, with a fuzzed
// filter pattern and extract template. An invalid policy's errors each
// name a spec field. For a valid one, the latest tag does not depend on
// the order of the tags; it is one of them, not skipped, accepted by the
// policy (within the semver range); and Newer ranks it above every other
// accepted tag, Newer being a strict order: of two different accepted
// tags exactly one is newer.
func FuzzPolicy(f *testing.F) {
	f.Add(uint8(0), ">=1.0.0 <2.0.0", "", "", "v1.0.0\n1.0.0\n1.2.0\n1.2.0+b\n1.2.0+a\nv2.0.0\nlatest\n1.2", uint8(0))
	f.Add(uint8(0), "^1.x-0", `^main-[a-f0-9]+-(?P<v>.*)`, "$v", "main-abc-1.0.0-rc.1\nmain-abd-1.0.0\nfeature-x-9.9.9", uint8(3))
	f.Add(uint8(1), "desc", `^(?P<ts>\d+)-`, "${ts}", "20240101-a\n20231231-b\nnope", uint8(0))
	f.Add(uint8(2), "asc", "", "", "1\n1.0\n1e3\n-Inf\nNaN\n0x10\n+Inf\n010", uint8(2))
	f.Add(uint8(2), "ASC", `(\d+)`, "$1$$", "v1\nv2", uint8(0))
	f.Add(uint8(0), "", "(", "$x", "", uint8(0))
	f.Fuzz(func(t *testing.T, kind uint8, rangeOrOrder, pattern, extract, tagList string, skipEvery uint8) {
		p := fuzzPolicy(kind, rangeOrOrder, pattern, extract)
		c, err := p.compile()
		if err != nil {
			errs := []error{err}
			var joined interface{ Unwrap() []error }
			if errors.As(err, &joined) {
				errs = joined.Unwrap()
			}
			for _, err := range errs {
				if !strings.HasPrefix(err.Error(), "spec.") {
					t.Fatalf("policy %+v: error %q names no spec field", p, err)
				}
			}
			return
		}
		tags := strings.Split(tagList, "\n")
		skipped := map[string]bool{}
		if skipEvery > 0 {
			for i, tag := range tags {
				if i%int(skipEvery) == 0 {
					skipped[tag] = true
				}
			}
		}
		skip := func(tag string) bool { return skipped[tag] }
		latest, err := Latest(p, tags, skip)
		reversed := slices.Clone(tags)
		slices.Reverse(reversed)
		again, errAgain := Latest(p, reversed, skip)
		if latest != again || (err == nil) != (errAgain == nil) {
			t.Fatalf("policy %+v: Latest depends on the order of the tags: %q (%v), reversed %q (%v)", p, latest, err, again, errAgain)
		}
		var accepted []string
		for _, tag := range tags {
			if _, ok := c.candidate(tag); ok && !skipped[tag] {
				accepted = append(accepted, tag)
			}
		}
		if err != nil {
			if !errors.Is(err, ErrNoMatch) || len(accepted) > 0 {
				t.Fatalf("policy %+v: %v, though it accepts %q", p, err, accepted)
			}
			return
		}
		if !slices.Contains(accepted, latest) {
			t.Fatalf("policy %+v: latest %q is not one of the accepted tags %q", p, latest, accepted)
		}
		if p.SemVer != nil {
			cand, _ := c.candidate(latest)
			if cand.version == nil || !c.constraint.Check(cand.version) {
				t.Fatalf("policy %+v: latest %q is not within the range", p, latest)
			}
		}
		for _, tag := range accepted {
			newer, err := Newer(p, tag, latest)
			if err != nil {
				t.Fatal(err)
			}
			older, err := Newer(p, latest, tag)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tag == latest && (newer || older):
				t.Fatalf("policy %+v: %q is newer than itself", p, tag)
			case tag != latest && (newer || !older):
				t.Fatalf("policy %+v: latest %q and %q: Newer(tag, latest) %v, Newer(latest, tag) %v", p, latest, tag, newer, older)
			}
		}
	})
}
