package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// PullSecrets names where a spec's registry credentials are, as Flux
// reads them for an ImageRepository and an OCIRepository: the Secret of
// spec.secretRef, then the imagePullSecrets of spec.serviceAccountName,
// merged.
type PullSecrets struct {
	Namespace string
	// SecretRef is spec.secretRef's Secret; empty when unset.
	SecretRef string
	// ServiceAccountName is spec.serviceAccountName; empty when unset.
	ServiceAccountName string
	// BasicAuthHost, when set, lets the Secret of SecretRef hold
	// username and password in place of a docker config: they are its
	// entry for this registry host.
	BasicAuthHost string
}

// Source names where the credentials come from, for messages:
// spec.secretRef, spec.serviceAccountName's imagePullSecrets, or both.
func (p PullSecrets) Source() string {
	var from []string
	if p.SecretRef != "" {
		from = append(from, "spec.secretRef (Secret "+p.SecretRef+")")
	}
	if p.ServiceAccountName != "" {
		from = append(from, "the imagePullSecrets of spec.serviceAccountName (ServiceAccount "+p.ServiceAccountName+")")
	}
	return strings.Join(from, " and ")
}

// DockerConfigJSON reads the Secrets and merges their docker configs
// (.dockerconfigjson, or the legacy .dockercfg) into one
// .dockerconfigjson, the first Secret naming a registry winning; nil when
// they name no registry. A missing ServiceAccount or Secret, or a Secret
// without a readable docker config, is an error naming the field and the
// Secret: a pull Secret that is wrong is not skipped.
func (p PullSecrets) DockerConfigJSON(ctx context.Context, c client.Reader) ([]byte, error) {
	auths := map[string]json.RawMessage{}
	if name := p.SecretRef; name != "" {
		secret := &corev1.Secret{}
		if err := c.Get(ctx, types.NamespacedName{Namespace: p.Namespace, Name: name}, secret); err != nil {
			return nil, fmt.Errorf("spec.secretRef: Secret %s: %w", name, err)
		}
		if err := p.mergeSecretRef(auths, secret.Data); err != nil {
			return nil, fmt.Errorf("spec.secretRef: Secret %s: %w", name, err)
		}
	}
	if name := p.ServiceAccountName; name != "" {
		sa := &corev1.ServiceAccount{}
		if err := c.Get(ctx, types.NamespacedName{Namespace: p.Namespace, Name: name}, sa); err != nil {
			return nil, fmt.Errorf("spec.serviceAccountName: ServiceAccount %s: %w", name, err)
		}
		for i, ref := range sa.ImagePullSecrets {
			secret := &corev1.Secret{}
			if err := c.Get(ctx, types.NamespacedName{Namespace: p.Namespace, Name: ref.Name}, secret); err != nil {
				return nil, fmt.Errorf("spec.serviceAccountName: ServiceAccount %s: imagePullSecrets[%d]: Secret %s: %w", name, i, ref.Name, err)
			}
			if err := mergeDockerConfig(auths, secret.Data); err != nil {
				return nil, fmt.Errorf("spec.serviceAccountName: ServiceAccount %s: imagePullSecrets[%d]: Secret %s: %w", name, i, ref.Name, err)
			}
		}
	}
	if len(auths) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(map[string]any{"auths": auths})
	if err != nil {
		return nil, fmt.Errorf("encode the registry credentials: %w", err)
	}
	return b, nil
}

// mergeSecretRef adds the auths of the spec.secretRef Secret: its docker
// config, or its username and password for BasicAuthHost.
func (p PullSecrets) mergeSecretRef(auths map[string]json.RawMessage, data map[string][]byte) error {
	_, config := data[corev1.DockerConfigJsonKey]
	_, legacy := data[corev1.DockerConfigKey]
	if p.BasicAuthHost == "" || config || legacy {
		return mergeDockerConfig(auths, data)
	}
	user, pass := string(data["username"]), string(data["password"])
	if user == "" || pass == "" {
		return fmt.Errorf("holds neither %s nor username and password", corev1.DockerConfigJsonKey)
	}
	entry, err := json.Marshal(dockerAuth{Username: user, Password: pass})
	if err != nil {
		return err
	}
	auths[p.BasicAuthHost] = entry
	return nil
}

// mergeDockerConfig adds the auths of a docker-config Secret's data, in
// either of its two formats, to auths; the first Secret naming a
// registry wins.
func mergeDockerConfig(auths map[string]json.RawMessage, data map[string][]byte) error {
	var found map[string]json.RawMessage
	switch {
	case data[corev1.DockerConfigJsonKey] != nil:
		var cfg struct {
			Auths map[string]json.RawMessage `json:"auths"`
		}
		if err := json.Unmarshal(data[corev1.DockerConfigJsonKey], &cfg); err != nil {
			return fmt.Errorf("%s is not a docker config: %w", corev1.DockerConfigJsonKey, err)
		}
		found = cfg.Auths
	case data[corev1.DockerConfigKey] != nil:
		if err := json.Unmarshal(data[corev1.DockerConfigKey], &found); err != nil {
			return fmt.Errorf("%s is not a docker config: %w", corev1.DockerConfigKey, err)
		}
	default:
		return fmt.Errorf("it has neither %s nor %s", corev1.DockerConfigJsonKey, corev1.DockerConfigKey)
	}
	for host, v := range found {
		if _, ok := auths[host]; !ok {
			auths[host] = v
		}
	}
	return nil
}
