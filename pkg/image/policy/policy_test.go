package policy

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func semverRange(r string) Policy { return Policy{SemVer: &SemVer{Range: r}} }
func alphabetical(order string) Policy {
	return Policy{Alphabetical: &Ordering{Order: order}}
}
func numerical(order string) Policy { return Policy{Numerical: &Ordering{Order: order}} }

func filtered(p Policy, pattern, extract string) Policy {
	p.FilterPattern, p.Extract = pattern, extract
	return p
}

// shuffled returns a shuffled copy of tags, so that no case passes only
// because of the order the tags come in.
func shuffled(tags ...string) []string {
	tags = slices.Clone(tags)
	rand.Shuffle(len(tags), func(i, j int) { tags[i], tags[j] = tags[j], tags[i] })
	return tags
}

func TestLatestPicksTheTagThePolicyRanksHighest(t *testing.T) {
	tests := []struct {
		name   string
		policy Policy
		tags   []string
		want   string
	}{
		// SemVer.
		{"a semver range compares versions as numbers, not as text",
			semverRange(">=1.0.0 <2.0.0"), []string{"0.9.0", "1.0.0", "1.5.3", "1.10.0", "2.0.0"}, "1.10.0"},
		{"a caret range with a wildcard stays within the major version",
			semverRange("^1.x"), []string{"0.1.0", "1.2.3", "1.9.0", "2.0.0", "2.1.0"}, "1.9.0"},
		{"a patch wildcard range stays within the minor version",
			semverRange("5.0.x"), []string{"5.0.1", "5.0.12", "5.0.3", "5.1.0", "4.9.9"}, "5.0.12"},
		{"tags that are not strict semver versions are ignored (Flux's own example)",
			semverRange("1.0.x"), []string{"1.0.0", "1.0.0.1", "1.0.0p", "1.0.1", "1.2.0", "0.1.0"}, "1.0.1"},
		{"a leading v is accepted and kept in the tag returned",
			semverRange("1.0.x"), []string{"v1.2.3", "v1.0.0", "v0.1.0"}, "v1.0.0"},
		{"a tilde range allows patch releases only",
			semverRange("~1.2.0"), []string{"1.2.0", "1.2.7", "1.3.0"}, "1.2.7"},
		{"a range with a comma is an and",
			semverRange(">0, <2.0"), []string{"0.5.0", "1.99.0", "2.0.0"}, "1.99.0"},
		{"an or range takes the highest of both sides",
			semverRange("1.x || 3.x"), []string{"1.4.0", "2.9.0", "3.1.0", "4.0.0"}, "3.1.0"},
		{"a range without a prerelease ignores prereleases",
			semverRange(">=1.0.0"), []string{"1.0.0", "1.1.0-rc.1", "2.0.0-alpha"}, "1.0.0"},
		{"a range with a prerelease admits prereleases",
			semverRange(">=1.0.0-0"), []string{"1.0.0", "1.1.0-rc.1"}, "1.1.0-rc.1"},
		{"prerelease identifiers that are numbers compare as numbers",
			semverRange(">=1.0.0-0"), []string{"1.0.0-rc.1", "1.0.0-rc.2", "1.0.0-rc.10"}, "1.0.0-rc.10"},
		{"a release ranks above its own prereleases",
			semverRange(">=1.0.0-0"), []string{"1.0.0-rc.1", "1.0.0", "1.0.0-rc.2"}, "1.0.0"},
		{"the star range takes every release and no word, short version or digit-only hash",
			semverRange("*"), []string{"latest", "main-4f2a1c", "0648669", "1.2", "1.2.3", "v0.9.0"}, "1.2.3"},
		{"equal versions are told apart by the tag, whatever their order",
			semverRange("*"), []string{"1.0.0+build.1", "1.0.0+build.2", "1.0.0"}, "1.0.0+build.2"},
		{"a version extracted from a prefixed tag is ranked, the whole tag returned",
			filtered(semverRange(">=1.0.0"), `^prod-(?P<version>.*)$`, "$version"),
			[]string{"prod-1.2.0", "prod-1.10.0", "dev-2.0.0", "prod-0.9.0"}, "prod-1.10.0"},

		// Alphabetical.
		{"alphabetical asc, the default, takes the last tag in ascending order",
			alphabetical(""), []string{"RELEASE.2024-01-10T10-00-00Z", "RELEASE.2024-02-01T08-00-00Z", "RELEASE.2023-12-31T23-59-59Z"}, "RELEASE.2024-02-01T08-00-00Z"},
		{"alphabetical asc may be spelled explicitly and in upper case",
			alphabetical("ASC"), []string{"a", "c", "b"}, "c"},
		{"alphabetical desc takes the first tag in ascending order",
			alphabetical("desc"), []string{"beta", "alpha", "gamma"}, "alpha"},
		{"alphabetical compares text, so 9 ranks above 10",
			alphabetical("asc"), []string{"9", "10", "100"}, "9"},
		{"alphabetical on an extracted timestamp ignores other tags (Flux's RELEASE example)",
			filtered(alphabetical("asc"), `^RELEASE\.(?P<timestamp>.*)Z$`, "$timestamp"),
			[]string{"RELEASE.2024-01-10T10-00-00Z", "RELEASE.2024-02-01T08-00-00Z", "latest", "zzz-not-a-release"}, "RELEASE.2024-02-01T08-00-00Z"},
		{"a filter without extract compares the whole matching tag",
			filtered(alphabetical(""), `^main-`, ""), []string{"main-a", "main-b", "zz-other"}, "main-b"},
		{"tags extracting the same value are told apart by the tag",
			filtered(alphabetical(""), `^(?:a|b)-(?P<v>\d+)$`, "$v"), []string{"b-1", "a-1", "a-0"}, "b-1"},

		// Numerical.
		{"numerical asc, the default, takes the largest number",
			numerical(""), []string{"9", "10", "100", "-1000"}, "100"},
		{"numerical desc takes the smallest number",
			numerical("desc"), []string{"5", "-8", "-78", "25", "70"}, "-78"},
		{"numerical compares floats",
			numerical("asc"), []string{"47.40896403322944", "-27.8520927455902", "53.47333823144817", "3.2008658570411086"}, "53.47333823144817"},
		{"numerical asc on Unix timestamps takes the newest",
			numerical("asc"), []string{"1606234201", "1606364286", "1606334092"}, "1606364286"},
		{"numerical leaves out tags that are not numbers instead of failing",
			numerical("asc"), []string{"latest", "1a", "7", "NaN", "12"}, "12"},
		{"numerically equal tags are told apart by the tag",
			numerical("asc"), []string{"1", "1.0", "01"}, "1.0"},
		{"the timestamp extracted from main-<sha>-<ts> is ranked numerically (Flux's example)",
			filtered(numerical("asc"), `^main-[a-fA-F0-9]+-(?P<ts>.*)`, "$ts"),
			[]string{"main-abc123-1606234201", "main-def456-1606364286", "main-0a1b2c-1606334092", "feature-x-1700000000", "latest"}, "main-def456-1606364286"},
		{"the same filter in desc order takes the oldest timestamp",
			filtered(numerical("desc"), `^main-[a-fA-F0-9]+-(?P<ts>.*)`, "$ts"),
			[]string{"main-abc123-1606234201", "main-def456-1606364286", "main-0a1b2c-1606334092"}, "main-abc123-1606234201"},
		{"a numbered group and braces work as extract",
			filtered(numerical(""), `^build-(\d+)$`, "${1}"), []string{"build-7", "build-12", "build-x"}, "build-12"},
		{"an extract may combine groups and text",
			filtered(semverRange("^2"), `^(?P<maj>\d+)\.(?P<min>\d+)-r(?P<rev>\d+)$`, "v$maj.$min.$rev"),
			[]string{"2.1-r3", "2.1-r12", "1.9-r50", "3.0-r1"}, "2.1-r12"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 5 {
				tags := shuffled(tt.tags...)
				got, err := Latest(tt.policy, tags, nil)
				if err != nil || got != tt.want {
					t.Fatalf("Latest(%v) = %q, %v; want %q", tags, got, err, tt.want)
				}
			}
			// Newer must agree with Latest: nothing outranks the choice.
			for _, tag := range tt.tags {
				if newer, err := Newer(tt.policy, tag, tt.want); err != nil || newer {
					t.Errorf("Newer(%q, %q) = %v, %v; Latest chose %q", tag, tt.want, newer, err, tt.want)
				}
			}
		})
	}
}

func TestLatestLeavesOutTheTagsSkipDrops(t *testing.T) {
	tests := []struct {
		name   string
		policy Policy
		tags   []string
		skip   []string
		want   string
	}{
		{"skipping the highest version falls back to the next",
			semverRange(">=1.0.0"), []string{"1.0.0", "1.1.0", "1.2.0"}, []string{"1.2.0"}, "1.1.0"},
		{"skipping a tag that would not be chosen changes nothing",
			semverRange(">=1.0.0"), []string{"1.0.0", "1.1.0", "1.2.0"}, []string{"1.0.0"}, "1.2.0"},
		{"skip sees the whole tag, not the extracted value",
			filtered(numerical(""), `^main-[a-f0-9]+-(?P<ts>\d+)$`, "$ts"), []string{"main-aa-1", "main-bb-2"}, []string{"main-bb-2"}, "main-aa-1"},
		{"skipping in alphabetical desc takes the next smallest",
			alphabetical("desc"), []string{"a", "b", "c"}, []string{"a"}, "b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Latest(tt.policy, tt.tags, func(tag string) bool { return slices.Contains(tt.skip, tag) })
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestLatestSaysWhyNoTagQualifies(t *testing.T) {
	tests := []struct {
		name   string
		policy Policy
		tags   []string
		skip   func(string) bool
		want   []string // substrings of the message
	}{
		{"no tags at all", semverRange("*"), nil, nil, []string{"among 0 tags", "there are none"}},
		{"no version within the range (Flux's example)", semverRange("1.0.x"), []string{"1.2.0", "latest"}, nil,
			[]string{"among 2 tags", `2 not a semver version within "1.0.x"`}},
		{"only prereleases for a range without one", semverRange("^1.0.0"), []string{"1.1.0-rc.1"}, nil,
			[]string{"1 not a semver version"}},
		{"a filter no tag matches", filtered(alphabetical(""), `^main-`, ""), []string{"latest", "dev"}, nil,
			[]string{"among 2 tags", `2 not matching spec.filterTags.pattern "^main-"`}},
		{"every tag skipped", numerical(""), []string{"1", "2"}, func(string) bool { return true },
			[]string{"among 2 tags", "2 skipped"}},
		{"a mix of reasons", filtered(numerical(""), `^b-(?P<n>.*)$`, "$n"), []string{"a-1", "b-x", "b-2"}, func(tag string) bool { return tag == "b-2" },
			[]string{"among 3 tags", "1 skipped", "1 not matching", "1 not a number"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Latest(tt.policy, tt.tags, tt.skip)
			if !errors.Is(err, ErrNoMatch) {
				t.Fatalf("got %q, %v; want ErrNoMatch", got, err)
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
}

func TestNewerRanksTwoTagsAsLatestDoes(t *testing.T) {
	tests := []struct {
		name   string
		policy Policy
		a, b   string
		want   bool
	}{
		{"a higher version is newer", semverRange("*"), "1.10.0", "1.9.0", true},
		{"a lower version is not newer", semverRange("*"), "1.9.0", "1.10.0", false},
		{"a tag is not newer than itself", semverRange("*"), "1.0.0", "1.0.0", false},
		{"a release is newer than its prerelease when the range admits both", semverRange(">=1.0.0-0"), "1.0.0", "1.0.0-rc.1", true},
		{"any accepted tag is newer than one outside the range", semverRange("<2.0.0"), "1.0.0", "2.0.0", true},
		{"a tag outside the range is never newer", semverRange("<2.0.0"), "2.0.0", "1.0.0", false},
		{"any accepted tag is newer than one that does not parse", semverRange("*"), "0.0.1", "latest", true},
		{"two tags the policy does not accept are not newer than each other", semverRange("*"), "latest", "main", false},
		{"in alphabetical desc the smaller tag is newer", alphabetical("desc"), "a", "b", true},
		{"in alphabetical asc the larger tag is newer", alphabetical("asc"), "b", "a", true},
		{"in numerical asc the larger number is newer", numerical(""), "10", "9", true},
		{"in numerical desc the smaller number is newer", numerical("desc"), "9", "10", true},
		{"the extracted value decides, not the whole tag",
			filtered(numerical(""), `^main-[a-f0-9]+-(?P<ts>\d+)$`, "$ts"), "main-aaaa-20", "main-ffff-10", true},
		{"a tag the filter keeps outranks one it drops, whatever their order", filtered(alphabetical(""), `^main-`, ""), "main-1", "zzz", true},
		{"a tag the filter drops is never newer", filtered(alphabetical(""), `^main-`, ""), "zzz", "main-1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Newer(tt.policy, tt.a, tt.b)
			if err != nil || got != tt.want {
				t.Fatalf("Newer(%q, %q) = %v, %v; want %v", tt.a, tt.b, got, err, tt.want)
			}
			if tt.a == tt.b {
				return
			}
			latest, err := Latest(tt.policy, []string{tt.b, tt.a}, nil)
			if chose := err == nil && latest == tt.a; chose != tt.want {
				t.Errorf("Latest(%q, %q) = %q, %v, which disagrees with Newer", tt.a, tt.b, latest, err)
			}
		})
	}
}

func TestValidateNamesTheFieldAtFault(t *testing.T) {
	tests := []struct {
		name   string
		policy Policy
		want   []string // substrings of the message
	}{
		{"no policy", Policy{}, []string{"spec.policy:", "one of semver, alphabetical or numerical"}},
		{"two policies", Policy{SemVer: &SemVer{Range: "*"}, Numerical: &Ordering{}}, []string{"spec.policy:", "semver and numerical"}},
		{"an empty semver range", semverRange(""), []string{"spec.policy.semver.range", "empty"}},
		{"a semver range with a letter suffix", semverRange("1.0.0p"), []string{"spec.policy.semver.range", `"1.0.0p"`}},
		{"a semver range that is a word", semverRange("a"), []string{"spec.policy.semver.range"}},
		{"an unknown alphabetical order", alphabetical("up"), []string{"spec.policy.alphabetical.order", `"up"`}},
		{"an unknown numerical order", numerical("newest"), []string{"spec.policy.numerical.order", `"newest"`}},
		{"a pattern that does not compile", filtered(numerical(""), `^main-(`, ""), []string{"spec.filterTags.pattern", "missing closing )"}},
		{"an extract naming a group the pattern lacks", filtered(numerical(""), `^main-(?P<ts>\d+)$`, "$time"),
			[]string{"spec.filterTags.extract", "$time names no group"}},
		{"an extract numbering a group the pattern lacks", filtered(numerical(""), `^main-(\d+)$`, "$2"),
			[]string{"spec.filterTags.extract", "group 2", "has 1"}},
		{"an extract without a pattern", filtered(numerical(""), "", "$ts"), []string{"spec.filterTags.extract", "$ts names no group"}},
		{"an extract that refers to no group", filtered(numerical(""), `^main-(?P<ts>\d+)$`, "ts"),
			[]string{"spec.filterTags.extract", "refers to no group"}},
		{"an extract with an unclosed brace", filtered(numerical(""), `^main-(?P<ts>\d+)$`, "${ts"),
			[]string{"spec.filterTags.extract", "malformed"}},
		{"every problem at once", Policy{SemVer: &SemVer{Range: "x1"}, FilterPattern: "(", Extract: "$a"},
			[]string{"spec.policy.semver.range", "spec.filterTags.pattern"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.policy.Validate()
			if err == nil {
				t.Fatal("Validate accepted the policy")
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			// Latest and Newer refuse the policy with the same error.
			if _, lerr := Latest(tt.policy, []string{"1.0.0"}, nil); lerr == nil || lerr.Error() != err.Error() || errors.Is(lerr, ErrNoMatch) {
				t.Errorf("Latest: %v, want %v", lerr, err)
			}
			if _, nerr := Newer(tt.policy, "1.0.0", "2.0.0"); nerr == nil || nerr.Error() != err.Error() {
				t.Errorf("Newer: %v, want %v", nerr, err)
			}
		})
	}
}

func TestValidateAcceptsWhatTheCRDAllows(t *testing.T) {
	tests := []struct {
		name   string
		policy Policy
	}{
		{"a caret range", semverRange("^1.x")},
		{"a range of two bounds", semverRange(">=1.0.0 <2.0.0")},
		{"an exact version", semverRange("=1.0.0")},
		{"alphabetical with no order", alphabetical("")},
		{"alphabetical desc", alphabetical("desc")},
		{"numerical DESC in upper case", numerical("DESC")},
		{"a pattern without extract", filtered(alphabetical(""), `^RELEASE\.`, "")},
		{"a named group extracted", filtered(numerical(""), `^main-[a-fA-F0-9]+-(?P<ts>.*)`, "$ts")},
		{"a named group in braces", filtered(numerical(""), `^main-(?P<ts>.*)`, "${ts}")},
		{"a numbered group", filtered(numerical(""), `^main-(.*)`, "$1")},
		{"the whole match", filtered(numerical(""), `\d+$`, "$0")},
		{"a literal dollar beside a group", filtered(alphabetical(""), `^(?P<v>.*)$`, "$$-$v")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.policy.Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
