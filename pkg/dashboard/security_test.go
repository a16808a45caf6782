package dashboard

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRequestsFromAnotherHostAreRefused(t *testing.T) {
	h := newTestHandler(t)
	tests := []struct {
		host string
		want int
	}{
		{"localhost:3100", http.StatusOK},
		{"127.0.0.1:3100", http.StatusOK},
		{"[::1]:3100", http.StatusOK},
		{"LOCALHOST", http.StatusOK},
		// A page whose name an attacker rebinds to 127.0.0.1.
		{"attacker.example.com:3100", http.StatusMisdirectedRequest},
		{"127.0.0.1.nip.io:3100", http.StatusMisdirectedRequest},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/static/app.css", nil)
			r.Host = tt.host
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Errorf("status %d, want %d: %s", w.Code, tt.want, w.Body)
			}
		})
	}
}

func TestAPostNeedsTheTokenAndTheDashboardsOrigin(t *testing.T) {
	h := newTestHandler(t)
	tests := []struct {
		name   string
		token  string
		origin string
		want   int
		body   string
	}{
		{"no token", "", "http://127.0.0.1:3100", http.StatusForbidden, "no valid X-Sluice-Token header"},
		{"a wrong token", "guess", "http://127.0.0.1:3100", http.StatusForbidden, "no valid X-Sluice-Token header"},
		{"no origin", "test-token", "", http.StatusForbidden, "no Origin header"},
		{"another site's page", "test-token", "https://attacker.example.com", http.StatusForbidden, "comes from https://attacker.example.com"},
		// Past the checks, an unknown action is refused before any read.
		{"the dashboard's own page", "test-token", "http://127.0.0.1:3100", http.StatusNotFound, `unknown action \"ship\"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/canaries/shop/cart/ship", nil)
			r.Host = "127.0.0.1:3100"
			if tt.token != "" {
				r.Header.Set(TokenHeader, tt.token)
			}
			if tt.origin != "" {
				r.Header.Set("Origin", tt.origin)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.want || !strings.Contains(w.Body.String(), tt.body) {
				t.Errorf("status %d %s, want %d with %q", w.Code, w.Body, tt.want, tt.body)
			}
		})
	}
}

func TestResponsesAreCompressedAndLockedToTheDashboard(t *testing.T) {
	h := newTestHandler(t)
	tests := []struct {
		name, path, accept, encoding string
		status                       int
	}{
		{"the script, compressed", "/static/app.js", "gzip, deflate, br", "gzip", http.StatusOK},
		{"the stylesheet, for a client that does not take gzip", "/static/app.css", "", "", http.StatusOK},
		{"a page that does not exist", "/nowhere", "gzip", "gzip", http.StatusNotFound},
		{"an asset that does not exist", "/static/nothing.js", "gzip", "gzip", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, tt.path, nil)
			r.Host = "127.0.0.1:3100"
			r.Header.Set("Accept-Encoding", tt.accept)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.status || w.Header().Get("Content-Encoding") != tt.encoding {
				t.Errorf("status %d encoding %q, want %d %q", w.Code, w.Header().Get("Content-Encoding"), tt.status, tt.encoding)
			}
			if csp := w.Header().Get("Content-Security-Policy"); !strings.HasPrefix(csp, "default-src 'self'") {
				t.Errorf("Content-Security-Policy %q", csp)
			}
		})
	}
}
