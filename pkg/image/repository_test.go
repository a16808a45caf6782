package image

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestMergeDockerConfig(t *testing.T) {
	tests := []struct {
		name    string
		secrets []*corev1.Secret
		want    string
		err     string
	}{
		{
			name:    "a dockerconfigjson Secret gives its auths",
			secrets: []*corev1.Secret{{Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{"ghcr.io":{"auth":"dTpw"}}}`)}}},
			want:    `{"ghcr.io":{"auth":"dTpw"}}`,
		},
		{
			name:    "a legacy dockercfg Secret gives its auths",
			secrets: []*corev1.Secret{{Data: map[string][]byte{corev1.DockerConfigKey: []byte(`{"quay.io":{"auth":"dTpw"}}`)}}},
			want:    `{"quay.io":{"auth":"dTpw"}}`,
		},
		{
			name: "the first Secret naming a registry wins",
			secrets: []*corev1.Secret{
				{Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{"ghcr.io":{"auth":"Zmlyc3Q="}}}`)}},
				{Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{"ghcr.io":{"auth":"c2Vjb25k"},"quay.io":{"auth":"cQ=="}}}`)}},
			},
			want: `{"ghcr.io":{"auth":"Zmlyc3Q="},"quay.io":{"auth":"cQ=="}}`,
		},
		{
			name:    "a Secret without a docker config is refused",
			secrets: []*corev1.Secret{{Data: map[string][]byte{"token": []byte("x")}}},
			err:     "it has neither .dockerconfigjson nor .dockercfg",
		},
		{
			name:    "a docker config that is not JSON is refused",
			secrets: []*corev1.Secret{{Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`auths: {}`)}}},
			err:     ".dockerconfigjson is not a docker config",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			auths := map[string]json.RawMessage{}
			var err error
			for _, s := range tt.secrets {
				if err = mergeDockerConfig(auths, s); err != nil {
					break
				}
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(auths)
			if string(got) != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
}

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
