package metrics

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"golang.org/x/crypto/bcrypt"

	"sluice.dev/sluice/test/controlplane"
	testprom "sluice.dev/sluice/test/prometheus"
)

func TestPrometheusAnswersOneNumberOrSaysWhyNot(t *testing.T) {
	t.Parallel()
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	exporter := testprom.StartExporter(t)
	open := testprom.Start(t, testprom.Options{Targets: []testprom.Target{{Addr: exporter.Addr, Labels: map[string]string{"namespace": "test"}}}})
	locked := testprom.Start(t, testprom.Options{WebConfig: "basic_auth_users:\n  sluice: " + string(hash) + "\n"})
	// Prometheus has no bearer tokens of its own; a proxy in front of it
	// demands one, as an auth gateway in front of a managed Prometheus does.
	target, _ := url.Parse(open.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	gateway := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer t0ken" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(gateway.Close)
	closed, err := controlplane.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}

	controlplane.Eventually(t, 30*time.Second, "the exporter's series scraped", func(ctx context.Context) (bool, string) {
		p, _ := NewPrometheus(Config{Address: open.URL})
		v, err := p.Query(ctx, Query{Text: `count(http_request_duration_seconds_count{namespace="test"})`})
		return err == nil && v == 1, "not yet"
	})

	tests := []struct {
		name    string
		cfg     Config
		query   string
		want    float64
		wantErr error
	}{
		{"a single series gives its value", Config{Address: open.URL}, `count(http_request_duration_seconds_count{namespace="test"})`, 1, nil},
		{"a scalar gives its value", Config{Address: open.URL}, `scalar(vector(42))`, 42, nil},
		{"no series is no values", Config{Address: open.URL}, `http_request_duration_seconds_count{namespace="absent"}`, 0, ErrNoValues},
		{"NaN is no values", Config{Address: open.URL}, `vector(0) / vector(0)`, 0, ErrNoValues},
		{"two series are multiple values", Config{Address: open.URL}, `label_replace(vector(1), "a", "1", "", "") or label_replace(vector(2), "a", "2", "", "")`, 0, ErrMultipleValues},
		{"basic auth from the Secret is accepted", Config{Address: locked.URL, Secret: map[string][]byte{"username": []byte("sluice"), "password": []byte("s3cret")}}, `vector(7)`, 7, nil},
		{"a wrong password is an auth failure", Config{Address: locked.URL, Secret: map[string][]byte{"username": []byte("sluice"), "password": []byte("wrong")}}, `vector(7)`, 0, ErrAuth},
		{"a bearer token from the Secret is sent", Config{Address: gateway.URL, Secret: map[string][]byte{"token": []byte("t0ken")}}, `vector(3)`, 3, nil},
		{"a missing token is an auth failure", Config{Address: gateway.URL}, `vector(3)`, 0, ErrAuth},
		{"a closed port is unreachable", Config{Address: "http://" + closed, Timeout: 2 * time.Second}, `vector(1)`, 0, ErrUnreachable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := New(Config{Type: "prometheus", Address: tt.cfg.Address, Secret: tt.cfg.Secret, Timeout: tt.cfg.Timeout})
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.Query(t.Context(), Query{Text: tt.query, Window: time.Minute})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}

	t.Run("the health probe passes with good credentials and fails with bad ones", func(t *testing.T) {
		good, _ := NewPrometheus(Config{Address: locked.URL, Secret: map[string][]byte{"username": []byte("sluice"), "password": []byte("s3cret")}})
		bad, _ := NewPrometheus(Config{Address: locked.URL})
		if err := good.Healthy(t.Context()); err != nil {
			t.Fatalf("good credentials: %v", err)
		}
		if err := bad.Healthy(t.Context()); !errors.Is(err, ErrAuth) {
			t.Fatalf("no credentials: %v, want an auth failure", err)
		}
	})
	t.Run("a bad query is an error that is not missing data", func(t *testing.T) {
		p, _ := NewPrometheus(Config{Address: open.URL})
		_, err := p.Query(t.Context(), Query{Text: `sum(`})
		if err == nil || errors.Is(err, ErrNoValues) {
			t.Fatalf("error %v", err)
		}
	})
}

func TestPrometheusRefusesHalfOfBasicAuth(t *testing.T) {
	_, err := NewPrometheus(Config{Address: "http://prometheus:9090", Secret: map[string][]byte{"username": []byte("u")}})
	if err == nil {
		t.Fatal("a username without a password was accepted")
	}
}

func FuzzPrometheusValue(f *testing.F) {
	for _, seed := range []string{
		`[{"metric":{},"value":[1700000000,"99.5"]}]`,
		`[]`,
		`[{"metric":{"a":"1"},"value":[1,"1"]},{"metric":{"a":"2"},"value":[1,"2"]}]`,
		`[{"metric":{},"value":[1,"NaN"]}]`,
		`[{"metric":{},"value":[1,"+Inf"]}]`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var v model.Vector
		if json.Unmarshal(body, &v) != nil {
			return
		}
		got, err := prometheusValue(v)
		if err == nil && len(v) != 1 {
			t.Fatalf("%d samples gave %v with no error", len(v), got)
		}
	})
}

func TestPrometheusOverTLSTrustsTheCAFromTheSecret(t *testing.T) {
	t.Parallel()
	ca, cert, key := certificates(t)
	prom := testprom.Start(t, testprom.Options{TLSCert: cert, TLSKey: key})
	tests := []struct {
		name    string
		cfg     Config
		trusted bool
	}{
		{"the Secret's ca.crt verifies the server", Config{Address: prom.URL, Secret: map[string][]byte{"ca.crt": ca}}, true},
		{"an unknown certificate is refused", Config{Address: prom.URL}, false},
		{"insecureSkipVerify accepts it", Config{Address: prom.URL, InsecureSkipVerify: true}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Type = "prometheus"
			p, err := New(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.Query(t.Context(), Query{Text: "vector(5)"})
			if tt.trusted && (err != nil || got != 5) {
				t.Fatalf("got %v, %v; want 5", got, err)
			}
			if !tt.trusted && (err == nil || !strings.Contains(err.Error(), "certificate")) {
				t.Fatalf("got %v, %v; want a certificate error", got, err)
			}
		})
	}
}

// certificates makes a CA and a server certificate for 127.0.0.1 that it
// signed, PEM encoded.
func certificates(t *testing.T) (caPEM, certPEM, keyPEM []byte) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTemplate := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sluice test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	serverKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serverTemplate := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "prometheus"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	serverDER, err := x509.CreateCertificate(rand.Reader, serverTemplate, caTemplate, &serverKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(serverKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: serverDER}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}
