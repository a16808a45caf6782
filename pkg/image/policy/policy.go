// Package policy chooses the latest tag of an image the way Flux's
// ImagePolicy does: by a semver range, in alphabetical order or in
// numerical order, optionally after filtering the tags with a regular
// expression and comparing a value extracted from each of them. It does
// no I/O: the tags come from a scan (package registry), and the caller
// decides what to do with the choice.
package policy

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/Masterminds/semver/v3"
)

// The orders of the alphabetical and numerical policies. They are
// matched without regard to case, as Flux does.
const (
	// OrderAsc makes the last value in ascending order the latest: the
	// default.
	OrderAsc = "asc"
	// OrderDesc makes the first value in ascending order the latest.
	OrderDesc = "desc"
)

// ErrNoMatch is returned by Latest when no tag qualifies. The wrapping
// error says how many tags were considered and why they were dropped.
var ErrNoMatch = errors.New("no tag matches the policy")

// Policy is an ImagePolicy's spec.policy and spec.filterTags. Exactly one
// of SemVer, Alphabetical and Numerical must be set, as in the CRD; a
// pointer tells "set with the default order" from "not set".
type Policy struct {
	// SemVer is spec.policy.semver.
	SemVer *SemVer
	// Alphabetical is spec.policy.alphabetical.
	Alphabetical *Ordering
	// Numerical is spec.policy.numerical.
	Numerical *Ordering

	// FilterPattern is spec.filterTags.pattern: a Go regular expression
	// a tag must match to be considered. Empty matches every tag.
	FilterPattern string
	// Extract is spec.filterTags.extract: a template such as "$ts",
	// expanded on the pattern's match, whose result the policy compares
	// instead of the whole tag. Empty compares the whole tag.
	Extract string
}

// SemVer picks the highest version within a range.
type SemVer struct {
	// Range is a Masterminds/semver/v3 constraint, e.g. ">=1.0.0 <2.0.0"
	// or "^1.x". Prereleases qualify only when the range names one.
	Range string
}

// Ordering picks the first or the last value of a sorted list.
type Ordering struct {
	// Order is OrderAsc (the default when empty) or OrderDesc.
	Order string
}

// Validate reports every problem of the policy, each naming the field as
// the CRD spells it (spec.policy.semver.range, spec.filterTags.pattern,
// ...), joined into one error.
func (p Policy) Validate() error {
	_, err := p.compile()
	return err
}

// Latest returns the tag the policy ranks highest among tags, leaving out
// the tags for which skip (if not nil) returns true, for instance a tag
// whose canary failed. The tag returned is always one of tags, never the
// value extracted from it. Two tags that compare equal (1.0.0 and v1.0.0,
// or two tags extracting the same value) are told apart by the tag
// itself, the larger string ranking higher, so the result does not
// depend on the order of tags.
//
// Tags that do not match the filter, do not parse (as a strict semver
// version with an optional leading "v", or as a number) or fall outside
// the semver range are left out. Flux's numerical policy fails on a tag
// that is not a number instead; leaving it out gives the same choice
// whenever Flux makes one.
//
// The error is Validate's if the policy is invalid, or wraps ErrNoMatch.
func Latest(p Policy, tags []string, skip func(tag string) bool) (string, error) {
	c, err := p.compile()
	if err != nil {
		return "", err
	}
	var (
		best              candidate
		found             bool
		skipped, filtered int
		rejected          int
	)
	for _, tag := range tags {
		if skip != nil && skip(tag) {
			skipped++
			continue
		}
		cand, ok := c.candidate(tag)
		switch {
		case !ok && !cand.matched:
			filtered++
		case !ok:
			rejected++
		case !found || c.compare(cand, best) > 0:
			best, found = cand, true
		}
	}
	if !found {
		return "", fmt.Errorf("%w among %d tags: %s", ErrNoMatch, len(tags), c.why(skipped, filtered, rejected))
	}
	return best.tag, nil
}

// Newer reports whether tag a ranks strictly above tag b under the
// policy, by the same comparison Latest uses: for two different tags,
// Latest(p, []string{a, b}, nil) returns a exactly when Newer(p, a, b).
// A tag the policy does not accept (it does
// not match the filter, does not parse or is outside the range) ranks
// below every tag it accepts, so a tag that no longer qualifies is
// outranked by any that does. The error is Validate's.
func Newer(p Policy, a, b string) (bool, error) {
	c, err := p.compile()
	if err != nil {
		return false, err
	}
	ca, okA := c.candidate(a)
	cb, okB := c.candidate(b)
	switch {
	case !okA:
		return false, nil
	case !okB:
		return true, nil
	}
	return c.compare(ca, cb) > 0, nil
}

type kind int

const (
	kindSemVer kind = iota + 1
	kindAlphabetical
	kindNumerical
)

// compiled is a validated policy, ready to rank tags.
type compiled struct {
	kind        kind
	constraint  *semver.Constraints
	semverRange string
	desc        bool
	filter      *regexp.Regexp // nil: every tag qualifies as a whole
	extract     string
}

// candidate is a tag the policy accepts, with the value it is ranked by.
type candidate struct {
	tag     string
	matched bool // the tag matched the filter
	value   string
	version *semver.Version
	number  float64
}

func (p Policy) compile() (*compiled, error) {
	var (
		c    compiled
		errs []error
		set  []string
	)
	if p.SemVer != nil {
		set = append(set, "semver")
		c.kind = kindSemVer
		if strings.TrimSpace(p.SemVer.Range) == "" {
			errs = append(errs, errors.New("spec.policy.semver.range: must not be empty"))
		} else if constraint, err := semver.NewConstraint(p.SemVer.Range); err != nil {
			errs = append(errs, fmt.Errorf("spec.policy.semver.range: invalid semver range %q: %w", p.SemVer.Range, err))
		} else {
			c.constraint, c.semverRange = constraint, p.SemVer.Range
		}
	}
	if p.Alphabetical != nil {
		set = append(set, "alphabetical")
		c.kind = kindAlphabetical
		desc, err := parseOrder("spec.policy.alphabetical.order", p.Alphabetical.Order)
		errs = append(errs, err)
		c.desc = desc
	}
	if p.Numerical != nil {
		set = append(set, "numerical")
		c.kind = kindNumerical
		desc, err := parseOrder("spec.policy.numerical.order", p.Numerical.Order)
		errs = append(errs, err)
		c.desc = desc
	}
	switch len(set) {
	case 0:
		errs = append(errs, errors.New("spec.policy: one of semver, alphabetical or numerical must be set"))
	case 1:
	default:
		errs = append(errs, fmt.Errorf("spec.policy: only one of semver, alphabetical or numerical may be set, not %s", strings.Join(set, " and ")))
	}

	if p.FilterPattern != "" || p.Extract != "" {
		// An empty pattern with an extract still compiles (it matches
		// everything), so that the extract is checked against it.
		re, err := regexp.Compile(p.FilterPattern)
		if err != nil {
			errs = append(errs, fmt.Errorf("spec.filterTags.pattern: invalid regular expression %q: %w", p.FilterPattern, err))
		} else {
			c.filter = re
			c.extract = p.Extract
			errs = append(errs, checkExtract(re, p.Extract))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &c, nil
}

func parseOrder(field, order string) (desc bool, err error) {
	switch strings.ToLower(order) {
	case "", OrderAsc:
		return false, nil
	case OrderDesc:
		return true, nil
	}
	return false, fmt.Errorf("%s: must be %s or %s, not %q", field, OrderAsc, OrderDesc, order)
}

// checkExtract rejects an extract template that refers to a group the
// pattern lacks, or to no group at all: regexp.Expand would silently
// give an empty string for the first, and the same constant for every
// tag for the second, so that the policy would compare nothing.
func checkExtract(re *regexp.Regexp, template string) error {
	if template == "" {
		return nil
	}
	refs, err := templateRefs(template)
	if err != nil {
		return fmt.Errorf("spec.filterTags.extract: %w", err)
	}
	if len(refs) == 0 {
		return fmt.Errorf("spec.filterTags.extract: %q refers to no group of spec.filterTags.pattern, so every tag would extract the same value", template)
	}
	for _, ref := range refs {
		if n, err := strconv.Atoi(ref); err == nil && (ref == "0" || ref[0] != '0') {
			if n > re.NumSubexp() {
				return fmt.Errorf("spec.filterTags.extract: $%s refers to group %d, but spec.filterTags.pattern %q has %d", ref, n, re.String(), re.NumSubexp())
			}
			continue
		}
		if re.SubexpIndex(ref) < 0 {
			return fmt.Errorf("spec.filterTags.extract: $%s names no group of spec.filterTags.pattern %q", ref, re.String())
		}
	}
	return nil
}

// templateRefs lists the group references ($name, ${name}, $1) of a
// regexp.Expand template, parsing it as Expand does; "$$" is a literal
// dollar. A "$" Expand would treat as raw text (nothing usable follows
// it) is an error here, since it is almost surely a typo.
func templateRefs(template string) ([]string, error) {
	var refs []string
	for {
		_, after, ok := strings.Cut(template, "$")
		if !ok {
			return refs, nil
		}
		template = after
		if strings.HasPrefix(template, "$") {
			template = template[1:]
			continue
		}
		brace := strings.HasPrefix(template, "{")
		rest := strings.TrimPrefix(template, "{")
		i := 0
		for i < len(rest) {
			r, size := utf8.DecodeRuneInString(rest[i:])
			if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_' {
				break
			}
			i += size
		}
		if i == 0 || (brace && !strings.HasPrefix(rest[i:], "}")) {
			return nil, fmt.Errorf("malformed group reference at %q: use $name, ${name} or $$ for a dollar", "$"+template)
		}
		refs = append(refs, rest[:i])
		template = rest[i:]
		if brace {
			template = template[1:]
		}
	}
}

// candidate extracts and parses the value tag is ranked by. ok is false
// when the policy does not accept the tag; matched then says whether it
// got past the filter.
func (c *compiled) candidate(tag string) (cand candidate, ok bool) {
	cand = candidate{tag: tag, value: tag, matched: true}
	if c.filter != nil {
		match := c.filter.FindStringSubmatchIndex(tag)
		if match == nil {
			cand.matched = false
			return cand, false
		}
		if c.extract != "" {
			cand.value = string(c.filter.ExpandString(nil, c.extract, tag, match))
		}
	}
	switch c.kind {
	case kindSemVer:
		v, err := parseVersion(cand.value)
		if err != nil || !c.constraint.Check(v) {
			return cand, false
		}
		cand.version = v
	case kindNumerical:
		n, err := strconv.ParseFloat(cand.value, 64)
		if err != nil || math.IsNaN(n) {
			return cand, false
		}
		cand.number = n
	}
	return cand, true
}

// parseVersion accepts what Flux's version.ParseVersion does: a strict
// semver version (three numbers), optionally with a leading "v". The
// loose parser would also take "1.2" or a short commit hash of digits
// such as "0648669", which are not versions.
func parseVersion(s string) (*semver.Version, error) {
	if _, err := semver.StrictNewVersion(strings.TrimPrefix(s, "v")); err != nil {
		return nil, err
	}
	return semver.NewVersion(s)
}

// compare ranks two accepted candidates: > 0 when a ranks above b. Equal
// values fall back on the tags themselves, so the order is total.
func (c *compiled) compare(a, b candidate) int {
	var r int
	switch c.kind {
	case kindSemVer:
		r = a.version.Compare(b.version)
	case kindNumerical:
		r = cmp.Compare(a.number, b.number)
	default:
		r = strings.Compare(a.value, b.value)
	}
	if c.desc {
		r = -r
	}
	if r == 0 {
		r = strings.Compare(a.tag, b.tag)
	}
	return r
}

// why explains, for ErrNoMatch, what became of the tags.
func (c *compiled) why(skipped, filtered, rejected int) string {
	var parts []string
	if skipped > 0 {
		parts = append(parts, fmt.Sprintf("%d skipped", skipped))
	}
	if filtered > 0 {
		parts = append(parts, fmt.Sprintf("%d not matching spec.filterTags.pattern %q", filtered, c.filter.String()))
	}
	if rejected > 0 {
		switch c.kind {
		case kindSemVer:
			parts = append(parts, fmt.Sprintf("%d not a semver version within %q", rejected, c.semverRange))
		case kindNumerical:
			parts = append(parts, fmt.Sprintf("%d not a number", rejected))
		}
	}
	if len(parts) == 0 {
		return "there are none"
	}
	return strings.Join(parts, ", ")
}
