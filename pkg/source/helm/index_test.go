package helm

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"sluice.dev/sluice/test/helmrepo"
)

// servedIndexDigest downloads r's index.yaml as a client would and
// returns its digest.
func servedIndexDigest(t *testing.T, r *helmrepo.HTTPRepo) string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, r.URL+"/index.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(helmrepo.Username, helmrepo.Password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func TestIndexGivesTheDigestOfTheServedIndexAndSharesItsParse(t *testing.T) {
	t.Parallel()
	r := helmrepo.NewHTTP(t, helmrepo.WithBasicAuth())
	r.Add(t, appChart("app", "1.0.0"))
	r.Add(t, appChart("other", "1.0.0"))
	opts := Options{URL: r.URL, Username: helmrepo.Username, Password: helmrepo.Password}
	var f Fetcher

	index, err := f.Index(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	first := servedIndexDigest(t, r)
	if index.Digest != first || index.Charts != 2 {
		t.Fatalf("index %+v, want digest %s and 2 charts", index, first)
	}
	opts.Chart = "app"
	if _, err := f.Fetch(t.Context(), opts); err != nil {
		t.Fatal(err)
	}
	if n := f.parses.Load(); n != 1 {
		t.Fatalf("%d parses, want Fetch to reuse the index Index parsed", n)
	}

	r.Add(t, appChart("app", "1.1.0"))
	index, err = f.Index(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if index.Digest == first || index.Digest != servedIndexDigest(t, r) {
		t.Fatalf("after a new version the digest is %s, want the new index's", index.Digest)
	}
}

func TestIndexFailsWithANamedError(t *testing.T) {
	t.Parallel()
	private := helmrepo.NewHTTP(t, helmrepo.WithBasicAuth())
	tests := []struct {
		name    string
		opts    Options
		wantErr error
		want    string
	}{
		{"a wrong password is an auth failure", Options{URL: private.URL, Username: helmrepo.Username, Password: "nope"}, ErrAuth, "401"},
		{"an OCI registry has no index", Options{URL: "oci://127.0.0.1:1/charts", Type: TypeOCI}, nil, "has no index"},
		{"an oci URL is not a classic repository", Options{URL: "oci://127.0.0.1:1/charts"}, nil, "want http(s)://"},
	}
	var f Fetcher
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.Index(t.Context(), tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Fatalf("error %v, want one saying %q", err, tt.want)
			}
		})
	}
}
