package image

import (
	"fmt"
	"testing"
)

func TestScanSummaries(t *testing.T) {
	var tags []string
	for i := range 12 {
		tags = append(tags, fmt.Sprintf("1.%02d.0", i))
	}
	latest := latestTags(tags)
	if len(latest) != latestTagsShown || latest[0] != "1.11.0" || latest[9] != "1.02.0" {
		t.Errorf("latest tags %v", latest)
	}
	if tags[0] != "1.00.0" {
		t.Error("latestTags changed its argument")
	}
	reordered := append([]string{tags[11]}, tags[:11]...)
	if tagsRevision(tags) != tagsRevision(reordered) {
		t.Error("the revision depends on the tags' order")
	}
	if tagsRevision(tags) == tagsRevision(tags[:11]) {
		t.Error("a removed tag does not change the revision")
	}
}
