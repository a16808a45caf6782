package operator

import (
	"strings"
	"testing"
	"time"
)

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Options)
		want   string // empty: valid
	}{
		{"the defaults are valid", func(*Options) {}, ""},
		{"every Flagger provider is a valid default", func(o *Options) { o.DefaultProvider = "gatewayapi:v1" }, ""},
		{"an unknown default provider is refused", func(o *Options) { o.DefaultProvider = "envoy" }, `default provider "envoy" is not one of`},
		{"leader election without a lease name is refused", func(o *Options) { o.LeaderElectionID = "" }, "needs a lease name"},
		{"no lease name is fine without leader election", func(o *Options) { o.LeaderElection, o.LeaderElectionID = false, "" }, ""},
		{"a negative shutdown timeout is refused", func(o *Options) { o.GracefulShutdownTimeout = -time.Second }, "must not be negative"},
		{"short lease timings in order are valid", func(o *Options) {
			o.LeaseDuration, o.RenewDeadline, o.RetryPeriod = 4*time.Second, 3*time.Second, time.Second
		}, ""},
		{"a renew deadline as long as the lease is refused", func(o *Options) { o.RenewDeadline = o.LeaseDuration }, "--leader-election-renew-deadline (15s) must be shorter than --leader-election-lease-duration (15s)"},
		{"a retry period as long as the renew deadline is refused", func(o *Options) { o.RetryPeriod = o.RenewDeadline }, "--leader-election-renew-deadline (10s) must be more than 1.2 times --leader-election-retry-period (10s)"},
		{"a renew deadline with no room for a jittered retry is refused", func(o *Options) { o.RetryPeriod = 9 * time.Second }, "must be more than 1.2 times --leader-election-retry-period (9s)"},
		{"a zero lease duration is refused", func(o *Options) { o.LeaseDuration = 0 }, "--leader-election-lease-duration must be positive"},
		{"lease timings are not checked without leader election", func(o *Options) { o.LeaderElection, o.LeaseDuration = false, 0 }, ""},
		{"a shard's watch label selector is valid", func(o *Options) { o.WatchLabelSelector = "sharding.sluice.dev/key=a" }, ""},
		{"a watch label selector that does not parse is refused", func(o *Options) { o.WatchLabelSelector = "team in (web" }, `--watch-label-selector: label selector "team in (web"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := DefaultOptions()
			tt.change(&o)
			err := o.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("want valid, got %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("want an error containing %q, got %v", tt.want, err)
			}
		})
	}
}
