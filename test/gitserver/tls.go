package gitserver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"time"
)

// TLS is the server's HTTPS endpoint and the material a client needs for
// it, PEM-encoded, in the forms a Flux secret holds them.
type TLS struct {
	// URL is the repository's clone URL, https://127.0.0.1:<port>/repo.git.
	URL string
	// CA signed the server's certificate and ClientCert (ca.crt).
	CA []byte
	// ClientCert and ClientKey are a client certificate the server
	// accepts (tls.crt, tls.key).
	ClientCert, ClientKey []byte
}

// ServeTLS serves the repository over HTTPS as well, until the test ends,
// with a certificate of a CA of its own: the same basic auth, in front
// of the same git http-backend. With clientCert, the server asks for a
// client certificate of that CA and refuses a connection without one.
// The CA and keys are new on every call.
func (s *Server) ServeTLS(clientCert bool) TLS {
	s.t.Helper()
	ca, caKey := s.certificate(nil, nil, func(c *x509.Certificate) {
		c.Subject.CommonName = "gitserver test CA"
		c.IsCA, c.BasicConstraintsValid = true, true
		c.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	})
	serverCert, serverKey := s.certificate(ca, caKey, func(c *x509.Certificate) {
		c.Subject.CommonName = "127.0.0.1"
		c.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	})
	clientCertDER, clientKey := s.certificate(ca, caKey, func(c *x509.Certificate) {
		c.Subject.CommonName = "sluice"
		c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	})
	upstream, err := url.Parse(s.URL)
	if err != nil {
		s.t.Fatalf("parse %s: %v", s.URL, err)
	}
	upstream.Path = ""
	srv := httptest.NewUnstartedServer(httputil.NewSingleHostReverseProxy(upstream))
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	srv.TLS = &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{{Certificate: [][]byte{serverCert.Raw}, PrivateKey: serverKey}},
	}
	if clientCert {
		srv.TLS.ClientCAs, srv.TLS.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	srv.StartTLS()
	s.t.Cleanup(srv.Close)
	keyDER, err := x509.MarshalECPrivateKey(clientKey)
	if err != nil {
		s.t.Fatalf("marshal the client key: %v", err)
	}
	return TLS{
		URL:        srv.URL + "/repo.git",
		CA:         pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw}),
		ClientCert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: clientCertDER.Raw}),
		ClientKey:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}
}

// certificate makes a certificate for a new key, signed by parent (or
// itself when parent is nil), shaped by edit.
func (s *Server) certificate(parent *x509.Certificate, parentKey *ecdsa.PrivateKey, edit func(*x509.Certificate)) (*x509.Certificate, *ecdsa.PrivateKey) {
	s.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		s.t.Fatalf("generate a key: %v", err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		s.t.Fatalf("serial: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{Organization: []string{"sluice tests"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	edit(tmpl)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		s.t.Fatalf("create a certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		s.t.Fatalf("parse a certificate: %v", err)
	}
	return cert, key
}
