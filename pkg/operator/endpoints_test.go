package operator

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// servePprof runs the pprof server on a free loopback port until the
// test ends and returns its base URL.
func servePprof(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := pprofServer(l.Addr().String())
	s.Listener = l
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("pprof server: %v", err)
		}
	})
	return "http://" + l.Addr().String()
}

func TestThePprofEndpointIsOffByDefault(t *testing.T) {
	if addr := DefaultOptions().PprofBindAddress; on(addr) {
		t.Fatalf("the default pprof address %q turns the server on", addr)
	}
}

func TestThePprofEndpointServesProfiles(t *testing.T) {
	base := servePprof(t)
	tests := []struct {
		name string
		path string
		// check judges a 200 answer's body.
		check func(body []byte) error
	}{
		{"the index lists the profiles", "/debug/pprof/", func(body []byte) error {
			for _, p := range []string{"heap", "goroutine", "profile"} {
				if !bytes.Contains(body, []byte(p)) {
					return errors.New("no " + p + " in the index")
				}
			}
			return nil
		}},
		{"a heap profile after a GC is a gzipped profile", "/debug/pprof/heap?gc=1", gzipped},
		{"a one-second CPU profile is a gzipped profile", "/debug/pprof/profile?seconds=1", gzipped},
		{"the goroutine dump names the running test", "/debug/pprof/goroutine?debug=2", func(body []byte) error {
			if !bytes.Contains(body, []byte("TestThePprofEndpointServesProfiles")) {
				return errors.New("the test's goroutine is not in the dump")
			}
			return nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Get(base + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = resp.Body.Close() }()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: %s: %s", tt.path, resp.Status, body)
			}
			if err := tt.check(body); err != nil {
				t.Fatalf("GET %s: %v", tt.path, err)
			}
		})
	}
}

// A CPU profile answers after the seconds it covers; net/http/pprof
// refuses at once one as long as the server's write timeout, which for
// /metrics and the probes is 30 s.
func TestThePprofEndpointAcceptsACPUProfileLongerThanTheOtherEndpointsWriteTimeout(t *testing.T) {
	base := servePprof(t)
	seconds := int((endpointWriteTimeout + time.Minute).Seconds())
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/debug/pprof/profile?seconds="+strconv.Itoa(seconds), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		t.Fatalf("a %d s profile was answered at once, %s: %s", seconds, resp.Status, strings.TrimSpace(string(body)))
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want the profile still running when the client gave up, got %v", err)
	}
}

func TestThePprofEndpointRefusesABodyOverTheCap(t *testing.T) {
	base := servePprof(t)
	resp, err := http.Post(base+"/debug/pprof/symbol", "text/plain", strings.NewReader(strings.Repeat("x", EndpointMaxBody+1)))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("POST with a body over %d bytes: %s, want 413", EndpointMaxBody, resp.Status)
	}
}

// gzipped checks the two magic bytes that start a gzip stream: pprof's
// binary profiles are gzipped protocol buffers.
func gzipped(body []byte) error {
	if len(body) < 2 || body[0] != 0x1f || body[1] != 0x8b {
		return errors.New("not a gzipped profile")
	}
	return nil
}
