package registry

import (
	"encoding/json"
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
				if err = mergeDockerConfig(auths, s.Data); err != nil {
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

func TestASecretRefWithUsernameAndPasswordIsAnEntryForTheRegistryWhenAllowed(t *testing.T) {
	basic := map[string][]byte{"username": []byte("u"), "password": []byte("p")}
	auths := map[string]json.RawMessage{}
	if err := (PullSecrets{}).mergeSecretRef(auths, basic); err == nil || !strings.Contains(err.Error(), "it has neither .dockerconfigjson nor .dockercfg") {
		t.Fatalf("without BasicAuthHost: error %v, want a docker config asked for", err)
	}
	if err := (PullSecrets{BasicAuthHost: "ghcr.io"}).mergeSecretRef(auths, basic); err != nil {
		t.Fatal(err)
	}
	var entry dockerAuth
	if err := json.Unmarshal(auths["ghcr.io"], &entry); err != nil || entry.Username != "u" || entry.Password != "p" {
		t.Fatalf("entry %+v, %v; want u and p for ghcr.io", entry, err)
	}
	if err := (PullSecrets{BasicAuthHost: "ghcr.io"}).mergeSecretRef(auths, map[string][]byte{"token": []byte("t")}); err == nil || !strings.Contains(err.Error(), "username and password") {
		t.Fatalf("a Secret with neither: error %v", err)
	}
}
