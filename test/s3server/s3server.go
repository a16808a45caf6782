// Package s3server is a real S3 server for tests: gofakes3 with its
// in-memory backend on loopback, speaking the S3 wire protocol, behind a
// check of AWS Signature Version 4, so that keys are refused as S3
// refuses them.
package s3server

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"encoding/xml"
	"io"
	"log"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// The keys a server accepts unless started WithoutAuth.
const (
	AccessKey = "sluice-test"
	SecretKey = "sluice-test-secret-key"
)

// Server is a running S3 server.
type Server struct {
	// Endpoint is host:port, as a Bucket's spec.endpoint names it.
	Endpoint string
	// CAPEM is the server's certificate, PEM-encoded, when serving TLS.
	CAPEM []byte

	auth    bool
	tls     bool
	backend *s3mem.Backend

	mu sync.Mutex
	// gets are the keys of the objects served, in order.
	gets []string
	// refused counts the requests the signature check turned away.
	refused int
	// regions are those the accepted signatures were made for.
	regions map[string]bool
}

// Option configures New.
type Option func(*Server)

// WithoutAuth serves anonymous requests, as a public bucket does.
func WithoutAuth() Option { return func(s *Server) { s.auth = false } }

// WithTLS serves HTTPS with a self-signed certificate for 127.0.0.1;
// CAPEM holds it.
func WithTLS() Option { return func(s *Server) { s.tls = true } }

// New starts a server until the test ends. It accepts requests signed
// with AccessKey and SecretKey, unless told otherwise.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{auth: true, backend: s3mem.New(), regions: map[string]bool{}}
	for _, o := range opts {
		o(s)
	}
	fake := gofakes3.New(s.backend).Server()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.auth {
			region, code := authorize(r)
			s.mu.Lock()
			if code != "" {
				s.refused++
			} else {
				s.regions[region] = true
			}
			s.mu.Unlock()
			if code != "" {
				writeError(w, r, http.StatusForbidden, code)
				return
			}
		}
		if bucket, key, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/"); ok && bucket != "" && key != "" && r.Method == http.MethodGet {
			s.mu.Lock()
			s.gets = append(s.gets, key)
			s.mu.Unlock()
		}
		fake.ServeHTTP(w, r)
	}))
	if s.tls {
		// A client that does not trust the certificate is a case tests
		// make on purpose; the server need not log each refused handshake.
		srv.Config.ErrorLog = log.New(io.Discard, "", 0)
		srv.StartTLS()
		s.CAPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	s.Endpoint = strings.TrimPrefix(strings.TrimPrefix(srv.URL, "http://"), "https://")
	return s
}

// CreateBucket makes an empty bucket.
func (s *Server) CreateBucket(t testing.TB, name string) {
	t.Helper()
	if err := s.backend.CreateBucket(name); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
}

// Put writes an object, as another client's upload would: straight to
// the backend, so that the requests the server counts are the reader's.
func (s *Server) Put(t testing.TB, bucket, key, content string) {
	t.Helper()
	// The metadata an upload through the API gets; readers need
	// Last-Modified.
	meta := map[string]string{"Content-Type": "application/octet-stream", "Last-Modified": time.Now().UTC().Format(http.TimeFormat)}
	if _, err := s.backend.PutObject(bucket, key, meta, strings.NewReader(content), int64(len(content)), nil); err != nil {
		t.Fatalf("put %s/%s: %v", bucket, key, err)
	}
}

// Delete removes an object.
func (s *Server) Delete(t testing.TB, bucket, key string) {
	t.Helper()
	if _, err := s.backend.DeleteObject(bucket, key); err != nil {
		t.Fatalf("delete %s/%s: %v", bucket, key, err)
	}
}

// Gets returns the keys of the objects served so far, in order.
func (s *Server) Gets() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.gets...)
}

// Regions are the regions the accepted requests were signed for, sorted.
func (s *Server) Regions() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.regions))
}

// Refused is the number of requests turned away for their signature.
func (s *Server) Refused() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

// authorize checks r's AWS Signature Version 4 Authorization header
// against AccessKey and SecretKey, as S3 does, and returns the region it
// was signed for, or the S3 error code of a refusal.
func authorize(r *http.Request) (region, code string) {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return "", "AccessDenied"
	}
	rest, ok := strings.CutPrefix(auth, "AWS4-HMAC-SHA256 ")
	if !ok {
		return "", "AuthorizationHeaderMalformed"
	}
	fields := map[string]string{}
	for part := range strings.SplitSeq(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		fields[k] = v
	}
	// access key / date / region / service / aws4_request
	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 5 || scope[4] != "aws4_request" {
		return "", "AuthorizationHeaderMalformed"
	}
	if scope[0] != AccessKey {
		return "", "InvalidAccessKeyId"
	}
	signed := strings.Split(fields["SignedHeaders"], ";")
	var headers strings.Builder
	for _, h := range signed {
		value := r.Host
		if h != "host" {
			var values []string
			for _, v := range r.Header.Values(h) {
				values = append(values, strings.Join(strings.Fields(v), " "))
			}
			value = strings.Join(values, ",")
		}
		headers.WriteString(h + ":" + value + "\n")
	}
	canonical := strings.Join([]string{
		r.Method,
		s3utils.EncodePath(r.URL.Path),
		strings.ReplaceAll(r.URL.Query().Encode(), "+", "%20"),
		headers.String(),
		fields["SignedHeaders"],
		r.Header.Get("X-Amz-Content-Sha256"),
	}, "\n")
	sum := sha256.Sum256([]byte(canonical))
	toSign := "AWS4-HMAC-SHA256\n" + r.Header.Get("X-Amz-Date") + "\n" + strings.Join(scope[1:], "/") + "\n" + hex.EncodeToString(sum[:])
	key := []byte("AWS4" + SecretKey)
	for _, part := range scope[1:] {
		key = mac(key, part)
	}
	if !hmac.Equal([]byte(hex.EncodeToString(mac(key, toSign))), []byte(fields["Signature"])) {
		return "", "SignatureDoesNotMatch"
	}
	return scope[2], ""
}

func mac(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	_, _ = h.Write([]byte(data))
	return h.Sum(nil)
}

// writeError answers as S3 does: an XML Error document, with no body for
// a HEAD.
func writeError(w http.ResponseWriter, r *http.Request, status int, code string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	_ = xml.NewEncoder(&buf).Encode(struct {
		XMLName  xml.Name `xml:"Error"`
		Code     string   `xml:"Code"`
		Message  string   `xml:"Message"`
		Resource string   `xml:"Resource"`
	}{Code: code, Message: messages[code], Resource: r.URL.Path})
	_, _ = w.Write(buf.Bytes())
}

// messages are S3's own wording of the refusals.
var messages = map[string]string{
	"AccessDenied":                 "Access Denied",
	"AuthorizationHeaderMalformed": "The authorization header is malformed.",
	"InvalidAccessKeyId":           "The AWS Access Key Id you provided does not exist in our records.",
	"SignatureDoesNotMatch":        "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
}
