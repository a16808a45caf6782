package git

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"
)

// AuthFromSecret turns the data of a GitRepository's secretRef into the
// transport's auth, with Flux's keys: username and password (HTTPS basic
// auth) or bearerToken (HTTPS), and identity, known_hosts and an optional
// password for the key (SSH). No data means no auth.
func AuthFromSecret(repoURL string, data map[string][]byte) (transport.AuthMethod, error) {
	if len(data) == 0 {
		return nil, nil
	}
	if isSSH(repoURL) {
		return sshAuth(repoURL, data)
	}
	switch token, user, pass := data["bearerToken"], data["username"], data["password"]; {
	case len(token) > 0:
		return &githttp.TokenAuth{Token: string(token)}, nil
	case len(user) > 0 || len(pass) > 0:
		if len(pass) == 0 {
			return nil, errors.New("secret key password is required with username")
		}
		return &githttp.BasicAuth{Username: string(user), Password: string(pass)}, nil
	}
	return nil, nil
}

// TLSFromSecret reads the HTTPS material of a GitRepository's secretRef,
// with Flux's keys: ca.crt (or the legacy caFile, which ca.crt wins over)
// is trusted besides the system roots, and tls.crt with tls.key is a
// client certificate. Each is checked here, so that a bad one names its
// key rather than failing the first request.
func TLSFromSecret(data map[string][]byte) (TLS, error) {
	var t TLS
	t.CABundle = data["ca.crt"]
	caKey := "ca.crt"
	if len(t.CABundle) == 0 {
		t.CABundle, caKey = data["caFile"], "caFile"
	}
	if len(t.CABundle) > 0 {
		if !x509.NewCertPool().AppendCertsFromPEM(t.CABundle) {
			return TLS{}, fmt.Errorf("secret key %s holds no PEM certificate", caKey)
		}
	}
	cert, key := data["tls.crt"], data["tls.key"]
	switch {
	case len(cert) > 0 && len(key) == 0:
		return TLS{}, errors.New("secret key tls.key is required with tls.crt")
	case len(key) > 0 && len(cert) == 0:
		return TLS{}, errors.New("secret key tls.crt is required with tls.key")
	case len(cert) > 0:
		if _, err := tls.X509KeyPair(cert, key); err != nil {
			return TLS{}, fmt.Errorf("secret keys tls.crt and tls.key: %w", err)
		}
		t.ClientCert, t.ClientKey = cert, key
	}
	return t, nil
}

// isSSH tells ssh://… and scp-like user@host:path URLs from HTTP(S) ones.
func isSSH(repoURL string) bool {
	if u, err := url.Parse(repoURL); err == nil && u.Scheme != "" {
		return u.Scheme == "ssh"
	}
	return strings.Contains(repoURL, "@") && strings.Contains(repoURL, ":")
}

// sshAuth needs the private key and known_hosts: a host key is always
// checked, never trusted on first use.
func sshAuth(repoURL string, data map[string][]byte) (transport.AuthMethod, error) {
	identity, knownHosts := data["identity"], data["known_hosts"]
	if len(identity) == 0 {
		return nil, errors.New("secret key identity (the SSH private key) is required for an ssh URL")
	}
	if len(knownHosts) == 0 {
		return nil, errors.New("secret key known_hosts is required for an ssh URL")
	}
	user := "git"
	if u, err := url.Parse(repoURL); err == nil && u.User != nil && u.User.Username() != "" {
		user = u.User.Username()
	} else if at := strings.Index(repoURL, "@"); at > 0 && !strings.Contains(repoURL, "://") {
		user = repoURL[:at]
	}
	keys, err := gitssh.NewPublicKeys(user, identity, string(data["password"]))
	if err != nil {
		return nil, fmt.Errorf("secret key identity: %w", err)
	}
	callback, err := knownHostsCallback(knownHosts)
	if err != nil {
		return nil, fmt.Errorf("secret key known_hosts: %w", err)
	}
	keys.HostKeyCallback = callback
	return keys, nil
}

// knownHostsCallback checks host keys against known_hosts data. The
// parser reads files only, and reads them at once, so the data goes
// through a temporary file that is gone before this returns.
func knownHostsCallback(data []byte) (ssh.HostKeyCallback, error) {
	f, err := os.CreateTemp("", "known_hosts-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.Remove(f.Name()) }()
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return gitssh.NewKnownHostsCallback(f.Name())
}
