package dashboard

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	sluicescheme "sluice.dev/sluice/pkg/scheme"
)

// The tests here render pages from objects built in the test: no
// request reaches a client. The pages against a real API server and a
// real operator, in a real browser, are in test/e2e/dashboard.

var now = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// newTestHandler builds the handler with the production client, pointed
// at an address where no API server listens: New requires a client, and
// these tests render from objects they build, so a request that reached
// it would fail the test with "connection refused" rather than be
// answered by a stand-in.
func newTestHandler(t *testing.T) *handler {
	t.Helper()
	scheme, err := sluicescheme.New()
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.NewWithWatch(&rest.Config{Host: "https://127.0.0.1:1"}, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Options{Client: c, Token: "test-token", Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return h.(*handler)
}

func canary(ns, name string, change func(*sluicev1beta1.Canary)) sluicev1beta1.Canary {
	cn := sluicev1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: sluicev1beta1.CanarySpec{
			TargetRef: sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
			Analysis: &sluicev1beta1.CanaryAnalysis{Threshold: 5, Metrics: []sluicev1beta1.CanaryMetric{
				{Name: "request-success-rate", ThresholdRange: &sluicev1beta1.CanaryThresholdRange{Min: ptr.To(99.0)}},
				{Name: "request-duration", ThresholdRange: &sluicev1beta1.CanaryThresholdRange{Max: ptr.To(500.0)}},
			}},
		},
		Status: sluicev1beta1.CanaryStatus{Phase: sluicev1beta1.CanaryPhaseInitialized, LastTransitionTime: metav1.NewTime(now.Add(-3 * time.Minute))},
	}
	if change != nil {
		change(&cn)
	}
	return cn
}

func TestAnOverviewRowShowsPhaseWeightChecksImageAndRevision(t *testing.T) {
	h := newTestHandler(t)
	tests := []struct {
		name   string
		canary sluicev1beta1.Canary
		want   []string
	}{
		{
			name: "a Canary in a release applied by a Kustomization",
			canary: canary("shop", "cart", func(c *sluicev1beta1.Canary) {
				c.Labels = map[string]string{"sync.sluice.dev/name": "apps", "sync.sluice.dev/namespace": "flux-system"}
				c.Status.Phase, c.Status.CanaryWeight, c.Status.FailedChecks = sluicev1beta1.CanaryPhaseProgressing, 30, 1
			}),
			want: []string{
				`<div id="c/shop/cart" class="row" role="row" data-row>`,
				`<span role="cell"><a href="/canaries/shop/cart">shop/cart</a></span>`,
				`<span role="cell" class="Progressing">Progressing</span>`,
				`<b class="bar w30"></b> 30`,
				`<span role="cell">1/5</span>`,
				`<span role="cell" title="2025-06-01T11:57:00Z">3m00s ago</span>`,
				`<span role="cell">cart:2</span>`,
				`<span role="cell" title="Kustomization flux-system/apps">main@sha1:abc</span>`,
			},
		},
		{
			name: "a paused Canary applied by a HelmRelease",
			canary: canary("shop", "cart", func(c *sluicev1beta1.Canary) {
				c.Labels = map[string]string{"helm.sync.sluice.dev/name": "cart", "helm.sync.sluice.dev/namespace": "shop"}
				c.Status.Paused = &sluicev1beta1.PauseStatus{}
			}),
			want: []string{`Initialized <i>paused</i>`, `<span role="cell" title="HelmRelease shop/cart">1.2.3</span>`},
		},
		{
			name:   "a Canary the operator has not seen yet",
			canary: canary("shop", "cart", func(c *sluicev1beta1.Canary) { c.Status = sluicev1beta1.CanaryStatus{} }),
			want:   []string{`<span role="cell" class="New">New</span>`, `<span role="cell" title=""></span>`},
		},
	}
	lk := lookups{"Deployment/shop/cart": "cart:2", "Kustomization/flux-system/apps": "main@sha1:abc", "HelmRelease/shop/cart": "1.2.3"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			html, err := h.render("overview.html", "row", newRow(&tt.canary, lk, now))
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(html), w) {
					t.Errorf("row lacks %s:\n%s", w, html)
				}
			}
		})
	}
}

func TestTheOverviewFiltersByNamespaceAndPhase(t *testing.T) {
	canaries := []sluicev1beta1.Canary{
		canary("b", "two", func(c *sluicev1beta1.Canary) { c.Status.Phase = sluicev1beta1.CanaryPhaseProgressing }),
		canary("a", "one", nil),
		canary("b", "three", nil),
	}
	tests := []struct {
		name   string
		filter filter
		want   []string
	}{
		{"no filter lists all, by namespace and name", filter{}, []string{"a/one", "b/three", "b/two"}},
		{"a namespace lists its own", filter{Namespace: "b"}, []string{"b/three", "b/two"}},
		{"a phase lists those in it", filter{Phase: sluicev1beta1.CanaryPhaseProgressing}, []string{"b/two"}},
		{"both filters list what matches both", filter{Namespace: "a", Phase: sluicev1beta1.CanaryPhaseProgressing}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, row := range overviewRows(canaries, tt.filter, lookups{}, now).Rows {
				got = append(got, row.Namespace+"/"+row.Name)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("rows %v, want %v", got, tt.want)
			}
		})
	}
}

func TestABadFilterIsRefusedWithAClearError(t *testing.T) {
	tests := []struct {
		name, query, err string
	}{
		{"an unknown phase lists the phases", "phase=Shipping", `unknown phase "Shipping": want one of Initializing, Initialized`},
		{"a namespace name that cannot be one", "namespace=Not_A_Namespace", `namespace "Not_A_Namespace" is not a namespace name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := parseFilter(q); err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("error %v, want one with %q", err, tt.err)
			}
		})
	}
}

// stepped is a Canary three steps into a release with two metrics, a
// webhook and an earlier release that was rolled back.
func stepped() sluicev1beta1.Canary {
	at := func(m int) metav1.Time { return metav1.NewTime(now.Add(time.Duration(m-10) * time.Minute)) }
	return canary("shop", "cart", func(c *sluicev1beta1.Canary) {
		c.Status.Phase, c.Status.CanaryWeight = sluicev1beta1.CanaryPhaseProgressing, 20
		c.Status.Releases = []sluicev1beta1.ReleaseRecord{
			{Revision: "7d9f8b6c5d", Outcome: sluicev1beta1.ReleaseProgressing, StartTime: at(0)},
			{Revision: "5c4b3a2910", Outcome: sluicev1beta1.ReleaseRolledBack, StartTime: at(-30), EndTime: ptr.To(at(-25)), Message: "request-success-rate 91 < 99"},
		}
		c.Status.Steps = []sluicev1beta1.StepRecord{
			{Time: at(1), Phase: sluicev1beta1.CanaryPhaseProgressing, Weight: 10, Outcome: sluicev1beta1.StepPass,
				Metrics:  []sluicev1beta1.StepMetric{{Name: "request-success-rate", Outcome: sluicev1beta1.MetricPass, Value: "99.5"}, {Name: "request-duration", Outcome: sluicev1beta1.MetricPass, Value: "120"}},
				Webhooks: []sluicev1beta1.StepWebhook{{Type: "rollout", Outcome: "Pass"}}},
			{Time: at(2), Phase: sluicev1beta1.CanaryPhaseProgressing, Weight: 10, Outcome: sluicev1beta1.StepFail, Message: "request-success-rate 97 < 99",
				Metrics:  []sluicev1beta1.StepMetric{{Name: "request-success-rate", Outcome: sluicev1beta1.MetricFail, Value: "97"}, {Name: "request-duration", Outcome: sluicev1beta1.MetricNoData}},
				Webhooks: []sluicev1beta1.StepWebhook{{Type: "rollout", Outcome: "Fail", Message: "load-test answered 500"}}},
			{Time: at(3), Phase: sluicev1beta1.CanaryPhaseProgressing, Weight: 20, Outcome: sluicev1beta1.StepPass,
				Metrics: []sluicev1beta1.StepMetric{{Name: "request-success-rate", Outcome: sluicev1beta1.MetricPass, Value: "100"}, {Name: "request-duration", Outcome: sluicev1beta1.MetricPass, Value: "130.25"}}},
		}
	})
}

var pointAttrs = regexp.MustCompile(`<circle class="(\w*)" cx="([\d.]+)" cy="([\d.]+)" r="3" data-step="(\d+)" data-time="([^"]+)" data-value="([^"]*)">`)

// chartValues are the data-step=data-value pairs of the points of the
// chart in the element that html opens with start.
func chartValues(t *testing.T, html, start string) []string {
	t.Helper()
	i := strings.Index(html, start)
	if i < 0 {
		t.Fatalf("no %s in:\n%s", start, html)
	}
	chart := html[i:]
	chart = chart[:strings.Index(chart, "</svg>")]
	var values []string
	for _, m := range pointAttrs.FindAllStringSubmatch(chart, -1) {
		values = append(values, m[4]+"="+m[6])
	}
	return values
}

func TestTheCanaryPageChartsEachMetricAgainstItsThresholdBand(t *testing.T) {
	h := newTestHandler(t)
	cn := stepped()
	html, err := h.render("canary.html", "detail", newCanaryDetail(&cn, nil, now))
	if err != nil {
		t.Fatal(err)
	}
	page := string(html)
	tests := []struct {
		name   string
		start  string
		values []string
		band   string
	}{
		{"the weight after each step", `id="weight-chart"`, []string{"0=10", "1=10", "2=20"}, ""},
		{"a metric with a minimum, the failed value included", `data-metric="request-success-rate"`, []string{"0=99.5", "1=97", "2=100"}, "passes at ≥ 99"},
		{"a metric with a maximum leaves out the step without data", `data-metric="request-duration"`, []string{"0=120", "2=130.25"}, "passes at ≤ 500"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := chartValues(t, page, tt.start); fmt.Sprint(got) != fmt.Sprint(tt.values) {
				t.Errorf("chart values %v, want %v", got, tt.values)
			}
			if tt.band != "" && (!strings.Contains(page, `<rect class="band"`) || !strings.Contains(page, tt.band)) {
				t.Errorf("no band %q", tt.band)
			}
		})
	}
	for _, want := range []string{
		// The values are in a table too, NoData included.
		`<tr data-step="1"><td>1</td><td title="2025-06-01T11:52:00Z">11:52:00</td><td class="value">97</td><td class="Fail">Fail</td></tr>`,
		`<td class="value"></td><td class="NoData">NoData</td>`,
		// Webhook results, with why one failed.
		`<span class="Fail">rollout: Fail (load-test answered 500)</span>`,
		// The releases, newest first, with outcome, duration and reason.
		`<li class="Progressing"><b>Progressing</b> <code>7d9f8b6c5d</code> <span title="2025-06-01T11:50:00Z">started 10m00s ago</span>, 10m00s</li>`,
		`<li class="RolledBack"><b>RolledBack</b> <code>5c4b3a2910</code> <span title="2025-06-01T11:20:00Z">started 40m00s ago</span>, 5m00s: request-success-rate 91 &lt; 99</li>`,
		`<dd id="weight" data-weight="20">`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
}

func TestAPointIsHigherTheHigherItsValue(t *testing.T) {
	cn := stepped()
	d := newCanaryDetail(&cn, nil, now)
	points := d.Metrics[0].Chart.Points
	// SVG y grows downwards.
	if !(points[2].Y < points[0].Y && points[0].Y < points[1].Y) {
		t.Errorf("points %+v: want 100 above 99.5 above 97", points)
	}
	band := d.Metrics[0].Chart.Band
	if band == nil || band.Y > points[0].Y || band.Y+band.H < points[0].Y || band.Y+band.H > points[1].Y {
		t.Errorf("band %+v: want it to hold 99.5 and not 97 (points %+v)", band, points)
	}
}

func TestEventsAreNewestFirstAndAtMostTwenty(t *testing.T) {
	var events []corev1.Event
	for i := range 25 {
		events = append(events, corev1.Event{Reason: fmt.Sprintf("R%d", i), LastTimestamp: metav1.NewTime(now.Add(time.Duration(i) * time.Second))})
	}
	views := eventViews(events, now.Add(time.Minute))
	if len(views) != maxEvents || views[0].Reason != "R24" || views[19].Reason != "R5" {
		t.Errorf("events %+v", views)
	}
}

func TestDurationsAreShort(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "0s"}, {45 * time.Second, "45s"}, {192 * time.Second, "3m12s"},
		{2*time.Hour + 5*time.Minute, "2h05m"}, {76 * time.Hour, "3d4h"},
	}
	for _, tt := range tests {
		if got := shortDuration(tt.d); got != tt.want {
			t.Errorf("shortDuration(%s) = %s, want %s", tt.d, got, tt.want)
		}
	}
}

func TestAThousandCanariesWeighUnder300KBCompressed(t *testing.T) {
	h := newTestHandler(t)
	var canaries []sluicev1beta1.Canary
	lk := lookups{"Kustomization/flux-system/apps": "main@sha1:0123456789abcdef0123456789abcdef01234567"}
	for i := range 1000 {
		name := fmt.Sprintf("service-%04d", i)
		canaries = append(canaries, canary(fmt.Sprintf("team-%02d", i%20), name, func(c *sluicev1beta1.Canary) {
			c.Labels = map[string]string{"sync.sluice.dev/name": "apps", "sync.sluice.dev/namespace": "flux-system"}
		}))
		lk[targetKey(&canaries[i])] = fmt.Sprintf("registry.example.com/team/%s:1.%d.0", name, i)
	}
	html, err := h.render("overview.html", layout, page{Title: "Canaries", Body: overviewRows(canaries, filter{}, lk, now)})
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	_, _ = w.Write(html)
	_ = w.Close()
	t.Logf("1000 Canaries: %d bytes, %d gzip-compressed", len(html), gz.Len())
	if gz.Len() > 300<<10 {
		t.Errorf("the overview of 1000 Canaries is %d bytes compressed, over 300 KB", gz.Len())
	}
}

func TestAbortAndAFullPromotionAskForConfirmationFirst(t *testing.T) {
	h := newTestHandler(t)
	cn := stepped()
	body := canaryBody{Namespace: cn.Namespace, Name: cn.Name, Actions: canaryActions(cn.Namespace, cn.Name), Detail: newCanaryDetail(&cn, nil, now)}
	html, err := h.render("canary.html", "content", body)
	if err != nil {
		t.Fatal(err)
	}
	buttons := regexp.MustCompile(`<button type="button" data-post="[^"]*/([a-z-]+)"( data-confirm=)?`).FindAllStringSubmatch(string(html), -1)
	confirmed := map[string]bool{}
	for _, b := range buttons {
		confirmed[b[1]] = b[2] != ""
	}
	want := map[string]bool{"promote": false, "promote-full": true, "abort": true, "retry": false, "pause": false, "resume": false}
	if fmt.Sprint(confirmed) != fmt.Sprint(want) {
		t.Errorf("actions and whether they ask first %v, want %v", confirmed, want)
	}
}

func TestAnActionWaitsThirtySecondsForTheOperatorUnlessToldOtherwise(t *testing.T) {
	if h := newTestHandler(t); h.opts.ActionTimeout != 30*time.Second {
		t.Errorf("the default wait is %s, want the README's 30 s", h.opts.ActionTimeout)
	}
}
