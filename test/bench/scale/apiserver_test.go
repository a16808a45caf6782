package scale

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/test/binary"
	"sluice.dev/sluice/test/chaos"
)

// operatorFlowSchema classifies the operator's requests, by its
// ServiceAccount, in the API server's priority and fairness: its
// apiserver_flowcontrol_dispatched_requests_total counts them, and
// theirs alone. apiserver_request_total has no label for the client.
const operatorFlowSchema = "sluice-operator"

// createFlowSchema puts the operator's ServiceAccount in a flow schema of
// its own, at the priority level the built-in service-accounts schema
// would give it: the count changes, the treatment does not.
func createFlowSchema(ctx context.Context, c client.Client) error {
	fs := &flowcontrolv1.FlowSchema{
		ObjectMeta: metav1.ObjectMeta{Name: operatorFlowSchema},
		Spec: flowcontrolv1.FlowSchemaSpec{
			PriorityLevelConfiguration: flowcontrolv1.PriorityLevelConfigurationReference{Name: "workload-low"},
			MatchingPrecedence:         1000,
			DistinguisherMethod:        &flowcontrolv1.FlowDistinguisherMethod{Type: flowcontrolv1.FlowDistinguisherMethodByUserType},
			Rules: []flowcontrolv1.PolicyRulesWithSubjects{{
				Subjects: []flowcontrolv1.Subject{{
					Kind:           flowcontrolv1.SubjectKindServiceAccount,
					ServiceAccount: &flowcontrolv1.ServiceAccountSubject{Namespace: chaos.OperatorNamespace, Name: "sluice"},
				}},
				ResourceRules: []flowcontrolv1.ResourcePolicyRule{{
					Verbs: []string{"*"}, APIGroups: []string{"*"}, Resources: []string{"*"}, ClusterScope: true, Namespaces: []string{"*"},
				}},
				NonResourceRules: []flowcontrolv1.NonResourcePolicyRule{{Verbs: []string{"*"}, NonResourceURLs: []string{"*"}}},
			}},
		},
	}
	if err := c.Create(ctx, fs); err != nil {
		return fmt.Errorf("create FlowSchema %s: %w", operatorFlowSchema, err)
	}
	return nil
}

// counts are the API server's request counters at one scrape.
type counts struct {
	// requests is apiserver_request_total summed by "VERB resource", with
	// the subresource after a slash.
	requests map[string]float64
	// operator is apiserver_flowcontrol_dispatched_requests_total of the
	// operator's flow schema.
	operator float64
}

// total is the sum of requests.
func (c counts) total() float64 {
	var sum float64
	for _, v := range c.requests {
		sum += v
	}
	return sum
}

// windowCounts are the requests of a window, with its length in minutes.
type windowCounts struct {
	counts
	minutes float64
}

// parseCounts reads the two counters from the API server's /metrics.
func parseCounts(r io.Reader) (counts, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return counts{}, fmt.Errorf("parse the API server's metrics: %w", err)
	}
	c := counts{requests: map[string]float64{}}
	if f, ok := families["apiserver_request_total"]; ok {
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			what := labels["resource"]
			if what == "" {
				what = "(non-resource)"
			}
			if sub := labels["subresource"]; sub != "" {
				what += "/" + sub
			}
			c.requests[labels["verb"]+" "+what] += m.GetCounter().GetValue()
		}
	}
	if f, ok := families["apiserver_flowcontrol_dispatched_requests_total"]; ok {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "flow_schema" && l.GetValue() == operatorFlowSchema {
					c.operator += m.GetCounter().GetValue()
				}
			}
		}
	}
	return c, nil
}

// sub is c minus an earlier scrape.
func (c counts) sub(earlier counts) counts {
	out := counts{requests: map[string]float64{}, operator: c.operator - earlier.operator}
	for k, v := range c.requests {
		if d := v - earlier.requests[k]; d != 0 {
			out.requests[k] = d
		}
	}
	return out
}

// rate is the requests a minute of one verb and resource.
type rate struct {
	what      string
	perMinute float64
}

// difference is, by verb and resource, the rate of a window less that of
// the baseline, the largest first; rates that differ by less than one
// request in ten minutes are left out.
func difference(w, baseline windowCounts) []rate {
	keys := map[string]bool{}
	for k := range w.requests {
		keys[k] = true
	}
	for k := range baseline.requests {
		keys[k] = true
	}
	var out []rate
	for k := range keys {
		d := w.requests[k]/w.minutes - baseline.requests[k]/baseline.minutes
		if d >= 0.1 || d <= -0.1 {
			out = append(out, rate{what: k, perMinute: d})
		}
	}
	slices.SortFunc(out, func(a, b rate) int {
		if c := cmpFloat(b.perMinute, a.perMinute); c != 0 {
			return c
		}
		return strings.Compare(a.what, b.what)
	})
	return out
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// scraper reads the API server's /metrics as the cluster admin.
type scraper struct {
	http *http.Client
	// host is the API server's base URL; url that of its /metrics.
	host, url string
}

func newScraper(cfg *rest.Config) (*scraper, error) {
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("create the metrics client: %w", err)
	}
	host := strings.TrimSuffix(cfg.Host, "/")
	return &scraper{http: hc, host: host, url: host + "/metrics"}, nil
}

func (s *scraper) scrape(ctx context.Context) (counts, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return counts{}, err
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return counts{}, fmt.Errorf("scrape the API server's metrics: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return counts{}, fmt.Errorf("scrape the API server's metrics: %s", resp.Status)
	}
	return parseCounts(resp.Body)
}

// window counts the requests over d; sample, when given, runs every 5 s
// and at the end.
func (s *scraper) window(ctx context.Context, d time.Duration, sample func() error) (windowCounts, error) {
	before, err := s.scrape(ctx)
	if err != nil {
		return windowCounts{}, err
	}
	began := time.Now()
	end := began.Add(d)
	for time.Now().Before(end) {
		select {
		case <-ctx.Done():
			return windowCounts{}, ctx.Err()
		case <-time.After(min(5*time.Second, time.Until(end))):
		}
		if sample != nil {
			if err := sample(); err != nil {
				return windowCounts{}, err
			}
		}
	}
	after, err := s.scrape(ctx)
	if err != nil {
		return windowCounts{}, err
	}
	return windowCounts{counts: after.sub(before), minutes: time.Since(began).Minutes()}, nil
}

// quietRequests is the most requests the operator may send in
// quietPeriod for the idle window to start: leader election renews the
// lease every 2 s, five requests in 10 s, and a watch may restart.
const (
	quietRequests = 8
	quietPeriod   = 10 * time.Second
	quietTimeout  = 5 * time.Minute
)

// waitQuiet waits until the operator's requests fall to what leader
// election sends: once every Canary is initialised, it still scales
// targets down and writes events. It gives up waiting after
// quietTimeout, and the idle window then shows what keeps it busy.
func (s *scraper) waitQuiet(ctx context.Context, op *binary.Operator) (time.Duration, error) {
	began := time.Now()
	prev, err := s.scrape(ctx)
	if err != nil {
		return 0, err
	}
	for time.Since(began) < quietTimeout {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-op.Exited():
			return 0, fmt.Errorf("the operator exited: %w", op.Err())
		case <-time.After(quietPeriod):
		}
		cur, err := s.scrape(ctx)
		if err != nil {
			return 0, err
		}
		if cur.operator-prev.operator <= quietRequests {
			return time.Since(began), nil
		}
		prev = cur
	}
	return time.Since(began), nil
}
