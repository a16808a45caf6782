package cli

import (
	"cmp"
	"slices"
	"strings"
)

// maxSuggestionDistance is the largest edit distance at which a name is
// offered for a mistyped one.
const maxSuggestionDistance = 3

// closeMatches returns the candidates that name could be a typo of: at an
// edit distance of at most maxSuggestionDistance, or either a prefix of
// the other. The closest come first, then by name.
func closeMatches(name string, candidates []string) []string {
	type match struct {
		name     string
		distance int
	}
	var matches []match
	for _, c := range candidates {
		if c == name {
			continue
		}
		d := levenshtein(name, c)
		if d <= maxSuggestionDistance || strings.HasPrefix(c, name) || strings.HasPrefix(name, c) {
			matches = append(matches, match{c, d})
		}
	}
	slices.SortFunc(matches, func(a, b match) int {
		return cmp.Or(cmp.Compare(a.distance, b.distance), cmp.Compare(a.name, b.name))
	})
	names := make([]string, len(matches))
	for i, m := range matches {
		names[i] = m.name
	}
	return slices.Compact(names)
}

// levenshtein is the number of single-rune insertions, deletions and
// substitutions that turn a into b.
func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	// One row of the distance matrix at a time: prev[j] is the distance
	// between ra[:i-1] and rb[:j].
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
