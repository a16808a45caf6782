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
