package git

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/go-git/go-git/v5/plumbing/transport"

	"sluice.dev/sluice/test/gitserver"
)

func TestFetchReachesHTTPSServersWithTheSecretsTLSMaterial(t *testing.T) {
	t.Parallel()
	s := gitserver.New(t)
	head := s.Commit(map[string]string{"a.yaml": "a: 1\n"})
	private, mutual := s.ServeTLS(false), s.ServeTLS(true)
	creds := func(extra map[string][]byte) map[string][]byte {
		data := map[string][]byte{"username": []byte("sluice"), "password": []byte("s3cret")}
		for k, v := range extra {
			data[k] = v
		}
		return data
	}
	tests := []struct {
		name string
		url  string
		data map[string][]byte
		// want is in the error; empty means the fetch succeeds.
		want string
	}{
		{"ca.crt makes a private CA trusted", private.URL, creds(map[string][]byte{"ca.crt": private.CA}), ""},
		{"the legacy caFile does the same", private.URL, creds(map[string][]byte{"caFile": private.CA}), ""},
		{"ca.crt wins over caFile", private.URL, creds(map[string][]byte{"ca.crt": private.CA, "caFile": mutual.CA}), ""},
		{"without a CA the private certificate is refused", private.URL, creds(nil), "certificate signed by unknown authority"},
		{"tls.crt and tls.key are the client certificate a server asks for", mutual.URL, creds(map[string][]byte{"ca.crt": mutual.CA, "tls.crt": mutual.ClientCert, "tls.key": mutual.ClientKey}), ""},
		{"without a client certificate that server refuses the connection", mutual.URL, creds(map[string][]byte{"ca.crt": mutual.CA}), "certificate required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			auth, err := AuthFromSecret(tt.url, tt.data)
			if err != nil {
				t.Fatal(err)
			}
			tlsData, err := TLSFromSecret(tt.data)
			if err != nil {
				t.Fatal(err)
			}
			a, err := Fetch(t.Context(), Options{URL: tt.url, Ref: Ref{Branch: "main"}, Auth: auth, TLS: tlsData})
			switch {
			case tt.want == "" && err != nil:
				t.Fatal(err)
			case tt.want == "" && a.Revision != "main@sha1:"+head:
				t.Fatalf("revision %s, want main@sha1:%s", a.Revision, head)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want one with %q", err, tt.want)
			}
		})
	}
}

func TestTLSFromSecretNamesTheKeyThatIsWrong(t *testing.T) {
	s := gitserver.New(t)
	good := s.ServeTLS(true)
	tests := []struct {
		name string
		data map[string][]byte
		want string
	}{
		{"a ca.crt that is no certificate", map[string][]byte{"ca.crt": []byte("nope")}, "ca.crt holds no PEM certificate"},
		{"a caFile that is no certificate", map[string][]byte{"caFile": []byte("nope")}, "caFile holds no PEM certificate"},
		{"tls.crt without tls.key", map[string][]byte{"tls.crt": good.ClientCert}, "tls.key is required"},
		{"tls.key without tls.crt", map[string][]byte{"tls.key": good.ClientKey}, "tls.crt is required"},
		{"a key that is not the certificate's", map[string][]byte{"tls.crt": good.ClientCert, "tls.key": s.ServeTLS(false).ClientKey}, "tls.crt and tls.key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := TLSFromSecret(tt.data); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one with %q", err, tt.want)
			}
		})
	}
}

func TestFetchGoesThroughTheProxy(t *testing.T) {
	t.Parallel()
	s := gitserver.New(t)
	head := s.Commit(map[string]string{"a.yaml": "a: 1\n"})
	proxy, forwarded := forwardProxy(t, "proxy-user", "proxy-pass")
	tests := []struct {
		name  string
		proxy transport.ProxyOptions
		want  string
	}{
		{"the proxy's credentials are sent", transport.ProxyOptions{URL: proxy, Username: "proxy-user", Password: "proxy-pass"}, ""},
		{"a proxy that refuses the credentials fails the fetch", transport.ProxyOptions{URL: proxy, Username: "proxy-user", Password: "nope"}, "407"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := forwarded.Load()
			a, err := Fetch(t.Context(), Options{URL: s.URL, Ref: Ref{Branch: "main"}, Auth: auth, Proxy: tt.proxy})
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("error %v, want one with %q", err, tt.want)
				}
				return
			}
			if err != nil || a.Revision != "main@sha1:"+head {
				t.Fatalf("got %+v, %v", a, err)
			}
			// One ls-remote, and the clone's two requests.
			if n := forwarded.Load() - before; n < 3 {
				t.Fatalf("the proxy forwarded %d requests, want the ls-remote's and the clone's", n)
			}
		})
	}
}

// forwardProxy is an HTTP proxy that wants user:pass and counts the
// requests it forwards.
func forwardProxy(t *testing.T, user, pass string) (string, *atomic.Int64) {
	t.Helper()
	forwarded := &atomic.Int64{}
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	forward := &httputil.ReverseProxy{Rewrite: func(*httputil.ProxyRequest) {}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Proxy-Authorization") != want {
			w.Header().Set("Proxy-Authenticate", `Basic realm="proxy"`)
			w.WriteHeader(http.StatusProxyAuthRequired)
			return
		}
		forwarded.Add(1)
		forward.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, forwarded
}
