package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/metrics/pkg/apis/external_metrics/v1beta1"
)

// externalMetricsList is an ExternalMetricValueList with one item per value.
func externalMetricsList(values ...string) string {
	var items []string
	for i, v := range values {
		items = append(items, `{"metricName": "s0-rabbitmq-orders", "metricLabels": {"queue": "orders-`+strconv.Itoa(i)+`"},
		  "timestamp": "2026-03-01T12:00:00Z", "value": "`+v+`"}`)
	}
	return `{"kind": "ExternalMetricValueList", "apiVersion": "external.metrics.k8s.io/v1beta1", "metadata": {},
	  "items": [` + strings.Join(items, ",") + `]}`
}

// kubeStatus is the Status body the API server answers errors with.
func kubeStatus(code int, reason string) string {
	return `{"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "` +
		strings.ToLower(reason) + `", "reason": "` + reason + `", "code": ` + strconv.Itoa(code) + `}`
}

// externalMetricsServer is a loopback API server that serves the external
// metrics API group.
type externalMetricsServer struct {
	*httptest.Server
	status int
	body   string

	mu       sync.Mutex
	requests int
	path     string
	selector string
	auth     string
	header   string
}

func newExternalMetricsServer(t *testing.T, status int, body string) *externalMetricsServer {
	t.Helper()
	s := &externalMetricsServer{status: status, body: body}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests++
		s.path = r.Method + " " + r.URL.Path
		s.selector = r.URL.Query().Get("labelSelector")
		s.auth = r.Header.Get("Authorization")
		s.header = r.Header.Get("X-Scope-OrgID")
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(s.status)
		_, _ = io.WriteString(w, s.body)
	}))
	t.Cleanup(s.Close)
	return s
}

// noInCluster is the in-cluster config outside a cluster.
func noInCluster() (*rest.Config, error) { return nil, rest.ErrNotInCluster }

func newTestExternalMetrics(t *testing.T, address string) *ExternalMetrics {
	t.Helper()
	p, err := newExternalMetrics(Config{
		Type:    "externalmetrics",
		Address: address,
		Secret:  map[string][]byte{externalMetricsTokenKey: []byte("secret-token")},
		Headers: http.Header{"X-Scope-OrgID": {"tenant-1"}},
		Timeout: 5 * time.Second,
	}, noInCluster, "")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExternalMetricsListsTheMetricWithItsSelectorAndToken(t *testing.T) {
	srv := newExternalMetricsServer(t, http.StatusOK, externalMetricsList("12500m"))
	p := newTestExternalMetrics(t, srv.URL)

	got, err := p.Query(context.Background(), Query{
		Text:   "keda/s0-rabbitmq-orders?labelSelector=scaledobject.keda.sh%2Fname%3Dpodinfo%2Cqueue+in+%28orders%29\n",
		Window: time.Minute,
	})
	if err != nil {
		t.Fatalf("Query: %v", err)
	}
	if got != 12.5 {
		t.Errorf("value = %v, want 12500m = 12.5", got)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.path != "GET /apis/external.metrics.k8s.io/v1beta1/namespaces/keda/s0-rabbitmq-orders" {
		t.Errorf("request = %q, want the metric in namespace keda", srv.path)
	}
	if srv.selector != "queue in (orders),scaledobject.keda.sh/name=podinfo" {
		t.Errorf("labelSelector = %q, want the query's selector", srv.selector)
	}
	if srv.auth != "Bearer secret-token" {
		t.Errorf("Authorization = %q, want the secret's token", srv.auth)
	}
	if srv.header != "tenant-1" {
		t.Errorf("X-Scope-OrgID = %q, want the template's header", srv.header)
	}
}

func TestExternalMetricsQueryClassifiesAnswers(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		want    float64
		wantErr error
		plain   bool
		// says are words the error must hold.
		says []string
	}{
		{name: "one value is the value", status: 200, body: externalMetricsList("42"), want: 42},
		{name: "no item is no values", status: 200, body: externalMetricsList(), wantErr: ErrNoValues},
		{name: "two items are multiple values", status: 200, body: externalMetricsList("1", "2"), wantErr: ErrMultipleValues},
		{name: "401 is an auth failure", status: 401, body: kubeStatus(401, "Unauthorized"), wantErr: ErrAuth},
		{name: "403 is an auth failure that says which grant is missing", status: 403, body: kubeStatus(403, "Forbidden"), wantErr: ErrAuth,
			says: []string{"external.metrics.k8s.io resource s0-rabbitmq-orders", "rbac.externalMetrics"}},
		{name: "500 is unreachable", status: 500, body: kubeStatus(500, "InternalError"), wantErr: ErrUnreachable},
		{name: "503 from a down adapter is unreachable", status: 503, body: kubeStatus(503, "ServiceUnavailable"), wantErr: ErrUnreachable},
		{name: "an unknown metric is a query error", status: 404, body: kubeStatus(404, "NotFound"), plain: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newExternalMetricsServer(t, tt.status, tt.body)
			got, err := newTestExternalMetrics(t, srv.URL).Query(context.Background(), Query{Text: "s0-rabbitmq-orders"})
			switch {
			case tt.plain:
				if err == nil || errors.Is(err, ErrNoValues) || errors.Is(err, ErrAuth) || errors.Is(err, ErrUnreachable) {
					t.Fatalf("error = %v, want a plain query error", err)
				}
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error = %v, want %v", err, tt.wantErr)
				}
				for _, w := range tt.says {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
			default:
				if err != nil || got != tt.want {
					t.Fatalf("Query = %v, %v; want %v", got, err, tt.want)
				}
			}
			srv.mu.Lock()
			defer srv.mu.Unlock()
			if srv.path != "GET /apis/external.metrics.k8s.io/v1beta1/namespaces/default/s0-rabbitmq-orders" {
				t.Errorf("request = %q, want the metric in namespace default", srv.path)
			}
		})
	}
}

func TestExternalMetricsQueryOfAnUnreachableServerIsUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	p := newTestExternalMetrics(t, srv.URL)
	if _, err := p.Query(context.Background(), Query{Text: "m"}); !errors.Is(err, ErrUnreachable) {
		t.Errorf("Query = %v, want ErrUnreachable", err)
	}
	if err := p.Healthy(context.Background()); !errors.Is(err, ErrUnreachable) {
		t.Errorf("Healthy = %v, want ErrUnreachable", err)
	}
}

func TestExternalMetricsQueryEndsWithItsContext(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-block }))
	defer srv.Close()
	defer close(block)
	p := newTestExternalMetrics(t, srv.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := p.Query(ctx, Query{Text: "m"}); !errors.Is(err, ErrUnreachable) {
		t.Errorf("Query = %v, want ErrUnreachable at the deadline", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Query took %v, want it to end with its context", d)
	}
}

func TestParseExternalMetricsQueryFollowsFlagger(t *testing.T) {
	tests := []struct {
		query, namespace, metric, selector string
	}{
		{"queue_depth", "default", "queue_depth", ""},
		{"/queue_depth", "default", "queue_depth", ""},
		{"test/queue_depth", "test", "queue_depth", ""},
		{"  test/queue_depth\n", "test", "queue_depth", ""},
		{"test/queue_depth?labelSelector=app%3Dpodinfo%2Cenv%21%3Dprod", "test", "queue_depth", "app=podinfo,env!=prod"},
		{"test/queue_depth?labelSelector=app=podinfo", "test", "queue_depth", "app=podinfo"},
	}
	for _, tt := range tests {
		ns, metric, sel, err := parseExternalMetricsQuery(tt.query)
		if err != nil || ns != tt.namespace || metric != tt.metric || sel.String() != tt.selector {
			t.Errorf("parse(%q) = %q, %q, %q, %v; want %q, %q, %q", tt.query, ns, metric, sel, err, tt.namespace, tt.metric, tt.selector)
		}
	}
	for _, bad := range []string{"", "test/", "a/b/c", "test/m?labelSelector=%3D%3D%3D", "test/.."} {
		if _, _, _, err := parseExternalMetricsQuery(bad); err == nil {
			t.Errorf("parse(%q): no error", bad)
		}
	}
}

func TestExternalMetricsCredentials(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("service-account-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := newExternalMetricsServer(t, http.StatusOK, externalMetricsList("1"))
	inCluster := func() (*rest.Config, error) {
		return &rest.Config{Host: srv.URL, BearerTokenFile: tokenFile}, nil
	}
	tests := []struct {
		name     string
		address  string
		secret   map[string][]byte
		wantAuth string
	}{
		{name: "in the cluster, as the service account", wantAuth: "Bearer service-account-token"},
		{name: "in the cluster, the secret's token wins", secret: map[string][]byte{externalMetricsTokenKey: []byte("secret-token")},
			wantAuth: "Bearer secret-token"},
		{name: "at an address, as the service account", address: srv.URL, wantAuth: "Bearer service-account-token"},
		{name: "at an address, the secret's token wins", address: srv.URL,
			secret: map[string][]byte{externalMetricsTokenKey: []byte("secret-token")}, wantAuth: "Bearer secret-token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := newExternalMetrics(Config{Address: tt.address, Secret: tt.secret}, inCluster, tokenFile)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.Query(context.Background(), Query{Text: "m"}); err != nil {
				t.Fatal(err)
			}
			srv.mu.Lock()
			defer srv.mu.Unlock()
			if srv.auth != tt.wantAuth {
				t.Errorf("Authorization = %q, want %q", srv.auth, tt.wantAuth)
			}
		})
	}

	if _, err := newExternalMetrics(Config{}, noInCluster, ""); err == nil || !strings.Contains(err.Error(), "address") {
		t.Errorf("outside a cluster without an address: error = %v, want one about the address", err)
	}
	if _, err := newExternalMetrics(Config{Address: "not a url"}, noInCluster, ""); err == nil {
		t.Errorf("a malformed address gave no error")
	}
}

func TestExternalMetricsHealthyReadsTheAPIResourceList(t *testing.T) {
	resources := `{"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "external.metrics.k8s.io/v1beta1",
	  "resources": [{"name": "externalmetrics", "singularName": "", "namespaced": true, "kind": "ExternalMetricValueList", "verbs": ["get"]}]}`
	tests := []struct {
		name    string
		status  int
		body    string
		wantErr error
		plain   bool
		// says are words the error must hold.
		says []string
	}{
		{name: "a served API is healthy", status: 200, body: resources},
		{name: "401 is an auth failure", status: 401, body: kubeStatus(401, "Unauthorized"), wantErr: ErrAuth},
		{name: "a down adapter is unreachable", status: 503, body: kubeStatus(503, "ServiceUnavailable"), wantErr: ErrUnreachable},
		{name: "an unregistered API is an error", status: 404, body: kubeStatus(404, "NotFound"), plain: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newExternalMetricsServer(t, tt.status, tt.body)
			err := newTestExternalMetrics(t, srv.URL).Healthy(context.Background())
			switch {
			case tt.plain:
				if err == nil || errors.Is(err, ErrAuth) || errors.Is(err, ErrUnreachable) {
					t.Fatalf("Healthy = %v, want a plain error", err)
				}
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Healthy = %v, want %v", err, tt.wantErr)
				}
			case err != nil:
				t.Fatalf("Healthy = %v", err)
			}
			srv.mu.Lock()
			defer srv.mu.Unlock()
			if srv.path != "GET /apis/external.metrics.k8s.io/v1beta1" || srv.auth != "Bearer secret-token" {
				t.Errorf("probe = %q with %q, want the API's resource list with the token", srv.path, srv.auth)
			}
		})
	}
}

func TestExternalMetricsIsBuiltByNew(t *testing.T) {
	p, err := New(Config{Type: "externalmetrics", Address: "https://keda-metrics-apiserver.keda:443"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p.(*ExternalMetrics); !ok {
		t.Fatalf("New built a %T", p)
	}
}

func FuzzExternalMetricsQuery(f *testing.F) {
	f.Add("queue_depth")
	f.Add("keda/s0-rabbitmq-orders?labelSelector=scaledobject.keda.sh%2Fname%3Dpodinfo")
	f.Add("/m?labelSelector=a+in+%28x%2Cy%29")
	f.Add("a/b/c")
	f.Add("ns/m?labelSelector=%zz")
	f.Add("ns/m#fragment?labelSelector=a=b")
	f.Fuzz(func(t *testing.T, query string) {
		ns, metric, sel, err := parseExternalMetricsQuery(query)
		if err != nil {
			return
		}
		if ns == "" || metric == "" || sel == nil || strings.Contains(metric, "/") {
			t.Errorf("parse(%q) = %q, %q, %v", query, ns, metric, sel)
		}
	})
}

func FuzzExternalMetricsValueList(f *testing.F) {
	f.Add(externalMetricsList("12500m"))
	f.Add(externalMetricsList())
	f.Add(externalMetricsList("1", "2"))
	f.Add(externalMetricsList("1e308"))
	f.Add(externalMetricsList("9223372036854775807Ei"))
	f.Add(`{"kind": "ExternalMetricValueList", "items": null}`)
	f.Fuzz(func(t *testing.T, body string) {
		var list v1beta1.ExternalMetricValueList
		if json.Unmarshal([]byte(body), &list) != nil {
			return
		}
		v, err := externalMetricValue(&list)
		if err == nil && (len(list.Items) != 1 || math.IsNaN(v) || math.IsInf(v, 0)) {
			t.Errorf("list %s gave %v", body, v)
		}
	})
}
