package notify

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	notificationv1beta3 "sluice.dev/sluice/api/notification/v1beta3"
	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
)

// Kinds of provider, which key a provider's delivery outcomes.
const (
	kindProvider      = "Provider"
	kindAlertProvider = "AlertProvider"
)

// providerTimeout bounds one request to a Provider without
// spec.timeout, as Flux's default.
const providerTimeout = 15 * time.Second

// providerKey names a Provider or an AlertProvider.
type providerKey struct {
	kind string
	name types.NamespacedName
}

// providerSpec is what a Provider and an AlertProvider have in common.
type providerSpec struct {
	key                        providerKey
	uid                        types.UID
	generation                 int64
	typ                        string
	address, channel, username string
	proxy                      string
	secretRef, certSecretRef   string
	timeout                    time.Duration
	messageTemplate            string
	suspend                    bool
}

func fromAlertProvider(p *sluicev1beta1.AlertProvider) providerSpec {
	s := providerSpec{
		key: providerKey{kindAlertProvider, types.NamespacedName{Namespace: p.Namespace, Name: p.Name}}, uid: p.UID, generation: p.Generation,
		typ: string(p.Spec.Type), address: p.Spec.Address, channel: p.Spec.Channel, username: p.Spec.Username, proxy: p.Spec.Proxy,
		messageTemplate: p.Spec.MessageTemplate,
	}
	if p.Spec.SecretRef != nil {
		s.secretRef = p.Spec.SecretRef.Name
	}
	return s
}

func fromProvider(p *notificationv1beta3.Provider) providerSpec {
	s := providerSpec{
		key: providerKey{kindProvider, types.NamespacedName{Namespace: p.Namespace, Name: p.Name}}, uid: p.UID, generation: p.Generation,
		typ: p.Spec.Type, address: p.Spec.Address, channel: p.Spec.Channel, username: p.Spec.Username, proxy: p.Spec.Proxy,
		suspend: p.Spec.Suspend,
	}
	if p.Spec.SecretRef != nil {
		s.secretRef = p.Spec.SecretRef.Name
	}
	if p.Spec.CertSecretRef != nil {
		s.certSecretRef = p.Spec.CertSecretRef.Name
	}
	s.timeout = providerTimeout
	if p.Spec.Timeout != nil {
		s.timeout = p.Spec.Timeout.Duration
	}
	return s
}

// resolved is a provider ready to be posted to.
type resolved struct {
	target
	client  *http.Client
	timeout time.Duration
	// secretVersion is the resource versions of the Secrets read, so that
	// a change to either may clear a delivery failure.
	secretVersion string
}

// resolveError is why a provider cannot be used, with the reason of its
// Ready condition.
type resolveError struct {
	reason string
	err    error
}

func (e *resolveError) Error() string { return e.err.Error() }
func (e *resolveError) Unwrap() error { return e.err }

// resolve reads a provider's Secrets and returns where and how to post.
// A Secret that cannot be read for another reason than its absence is
// returned as it is, to be retried.
func (d *Dispatcher) resolve(ctx context.Context, s providerSpec) (resolved, error) {
	r := resolved{target: target{typ: s.typ, address: s.address, channel: s.channel, username: s.username, uid: s.uid}, timeout: s.timeout}
	proxy := s.proxy
	if s.secretRef != "" {
		secret, err := d.secret(ctx, s.key.name.Namespace, s.secretRef, "spec.secretRef", notificationv1beta3.ReasonSecretNotFound)
		if err != nil {
			return resolved{}, err
		}
		r.secretVersion = secret.ResourceVersion
		value := func(k string) string { return strings.TrimSpace(string(secret.Data[k])) }
		r.address = orElse(value("address"), r.address)
		proxy = orElse(value("proxy"), proxy)
		r.token, r.user, r.password = value("token"), value("username"), value("password")
		if h := secret.Data["headers"]; len(h) > 0 {
			if err := yaml.Unmarshal(h, &r.headers); err != nil {
				return resolved{}, &resolveError{notificationv1beta3.ReasonInvalidSpec, fmt.Errorf("spec.secretRef: Secret %s: the headers key is not a YAML map of strings", s.secretRef)}
			}
		}
	}
	var tlsConfig *tls.Config
	if s.certSecretRef != "" {
		secret, err := d.secret(ctx, s.key.name.Namespace, s.certSecretRef, "spec.certSecretRef", notificationv1beta3.ReasonCertSecretNotFound)
		if err != nil {
			return resolved{}, err
		}
		r.secretVersion += "/" + secret.ResourceVersion
		if tlsConfig, err = tlsConfigOf(secret); err != nil {
			return resolved{}, &resolveError{notificationv1beta3.ReasonInvalidCertificate, fmt.Errorf("spec.certSecretRef: Secret %s: %w", s.certSecretRef, err)}
		}
	}
	svc, err := lookup(s.typ)
	if err != nil {
		return resolved{}, &resolveError{notificationv1beta3.ReasonInvalidSpec, fmt.Errorf("spec.type: %w", err)}
	}
	// A sample event tells whether the service can be posted to at all.
	if _, err := svc.build(r.target, sampleNote()); err != nil && !errors.Is(err, errNotApplicable) {
		return resolved{}, &resolveError{buildReason(err), err}
	}
	if r.client, err = d.client(proxy, s.key.name.String()+"/"+r.secretVersion, tlsConfig); err != nil {
		return resolved{}, &resolveError{notificationv1beta3.ReasonInvalidSpec, err}
	}
	return r, nil
}

// secret reads a Secret named by field, with reason when it is missing.
func (d *Dispatcher) secret(ctx context.Context, namespace, name, field, reason string) (*corev1.Secret, error) {
	var secret corev1.Secret
	key := types.NamespacedName{Namespace: namespace, Name: name}
	if err := d.opts.Reader.Get(ctx, key, &secret); apierrors.IsNotFound(err) {
		return nil, &resolveError{reason, fmt.Errorf("%s: Secret %s not found", field, key)}
	} else if err != nil {
		return nil, fmt.Errorf("read Secret %s: %w", key, err)
	}
	return &secret, nil
}

// buildReason is the Ready reason of a post that cannot be built.
func buildReason(err error) string {
	switch {
	case errors.Is(err, errNoAddress):
		return notificationv1beta3.ReasonAddressNotFound
	case errors.Is(err, errInvalidAddress):
		return notificationv1beta3.ReasonInvalidAddress
	case errors.Is(err, errNoToken):
		return notificationv1beta3.ReasonTokenNotFound
	}
	return notificationv1beta3.ReasonInvalidSpec
}

// sampleNote is an event with a revision, to check that a provider can
// build a post before any event is due.
func sampleNote() note {
	e := Event{
		InvolvedObject: corev1.ObjectReference{Kind: "Kustomization", Namespace: "default", Name: "sample"},
		Severity:       severityInfo, Reason: "Sample", Message: "sample",
		Metadata: map[string]string{metaRevision: "main@sha1:" + strings.Repeat("0", 40)},
	}
	return note{event: e, message: eventMessage(e, "", func(s string) string { return s })}
}

// tlsConfigOf reads ca.crt, and tls.crt with tls.key, as Flux does; the
// older caFile, certFile and keyFile keys are read too.
func tlsConfigOf(s *corev1.Secret) (*tls.Config, error) {
	get := func(keys ...string) []byte {
		for _, k := range keys {
			if v := s.Data[k]; len(v) > 0 {
				return v
			}
		}
		return nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca := get("ca.crt", "caFile"); ca != nil {
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(ca) {
			return nil, errors.New("ca.crt holds no PEM certificate")
		}
	}
	crt, key := get("tls.crt", "certFile"), get("tls.key", "keyFile")
	if (crt == nil) != (key == nil) {
		return nil, errors.New("tls.crt and tls.key go together")
	}
	if crt != nil {
		pair, err := tls.X509KeyPair(crt, key)
		if err != nil {
			return nil, fmt.Errorf("tls.crt and tls.key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	if cfg.RootCAs == nil && cfg.Certificates == nil {
		return nil, errors.New("no ca.crt, and no tls.crt with tls.key")
	}
	return cfg, nil
}

// client returns the HTTP client for a proxy and a TLS configuration, one
// per pair so that connections are reused. tlsKey names the
// configuration's source and version.
func (d *Dispatcher) client(proxy, tlsKey string, tlsConfig *tls.Config) (*http.Client, error) {
	key := proxy
	if tlsConfig != nil {
		sum := sha256.Sum256([]byte(tlsKey))
		key += "|" + hex.EncodeToString(sum[:8])
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if c, ok := d.clients[key]; ok {
		return c, nil
	}
	var proxyURL *url.URL
	if proxy != "" {
		u, err := url.Parse(proxy)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, errors.New("spec.proxy is not an http or https URL")
		}
		proxyURL = u
	}
	rt := d.opts.Transport(proxyURL)
	if tlsConfig != nil {
		t, ok := rt.(*http.Transport)
		if !ok {
			return nil, errors.New("spec.certSecretRef: the transport cannot take a TLS configuration")
		}
		t = t.Clone()
		t.TLSClientConfig = tlsConfig
		rt = t
	}
	if t, ok := rt.(*http.Transport); ok {
		rt = d.opts.Egress.Transport(t)
	}
	c := &http.Client{Transport: rt}
	d.clients[key] = c
	return c, nil
}
