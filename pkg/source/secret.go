package source

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	"sluice.dev/sluice/pkg/image/registry"
)

// readSecret reads a Secret that a source's spec names.
func readSecret(ctx context.Context, c client.Reader, namespace, name string) (*corev1.Secret, error) {
	secret := &corev1.Secret{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, secret); err != nil {
		return nil, err
	}
	return secret, nil
}

// proxyFrom reads the proxy of spec.proxySecretRef; nil when ref is nil.
// Its errors name the field and the Secret.
func proxyFrom(ctx context.Context, c client.Reader, namespace string, ref *sourcev1.LocalObjectReference) (*url.URL, error) {
	if ref == nil {
		return nil, nil
	}
	secret, err := readSecret(ctx, c, namespace, ref.Name)
	if err != nil {
		return nil, fmt.Errorf("spec.proxySecretRef: Secret %s: %w", ref.Name, err)
	}
	proxy, err := proxyURL(secret)
	if err != nil {
		return nil, fmt.Errorf("spec.proxySecretRef: Secret %s: %w", ref.Name, err)
	}
	return proxy, nil
}

// proxyURL reads a proxy Secret as Flux does: address, and optionally
// username and password. Its errors never hold the address, which may
// carry credentials: at most the parsed URL, redacted.
func proxyURL(secret *corev1.Secret) (*url.URL, error) {
	address := string(secret.Data["address"])
	if address == "" {
		return nil, errors.New("holds no address")
	}
	u, err := url.Parse(address)
	if err != nil {
		// url.Parse's error quotes the input; only its cause is kept.
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			err = urlErr.Err
		}
		return nil, fmt.Errorf("address is not a URL such as http://proxy:3128: %w", err)
	}
	if u.Scheme == "" || u.Host == "" {
		// Without a host, user:pass@proxy:3128 parses as scheme "user"
		// with the rest opaque: even the redacted form would show it.
		return nil, errors.New("address is not a URL with a scheme and a host, such as http://proxy:3128")
	}
	user, hasUser := secret.Data["username"]
	pass, hasPass := secret.Data["password"]
	if hasUser || hasPass {
		u.User = url.UserPassword(string(user), string(pass))
	}
	return u, nil
}

// certTLS reads the TLS client configuration of spec.certSecretRef: its
// ca.crt, and a client certificate in tls.crt and tls.key; nil when ref
// is nil. Its errors name the field and the Secret.
func certTLS(ctx context.Context, c client.Reader, namespace string, ref *sourcev1.LocalObjectReference) (*tls.Config, error) {
	if ref == nil {
		return nil, nil
	}
	secret, err := readSecret(ctx, c, namespace, ref.Name)
	if err != nil {
		return nil, fmt.Errorf("spec.certSecretRef: Secret %s: %w", ref.Name, err)
	}
	d := secret.Data
	if len(d["ca.crt"]) == 0 && len(d["tls.crt"]) == 0 && len(d["tls.key"]) == 0 {
		return nil, fmt.Errorf("spec.certSecretRef: Secret %s holds none of ca.crt, tls.crt and tls.key", ref.Name)
	}
	cfg, err := registry.TLSConfig(d["ca.crt"], d["tls.crt"], d["tls.key"])
	if err != nil {
		return nil, fmt.Errorf("spec.certSecretRef: Secret %s: %w", ref.Name, err)
	}
	return cfg, nil
}
