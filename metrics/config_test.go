package metrics

import (
	"strings"
	"testing"
)

func TestEveryProviderNamesWhatItsConfigLacks(t *testing.T) {
	cases := []struct {
		name    string
		config  func(address string) Config
		drop    string
		address string
		wantErr string
	}{
		{"datadog: no API key", datadogConfig, "datadog_api_key", "", "datadog_api_key"},
		{"datadog: no application key", datadogConfig, "datadog_application_key", "", "datadog_application_key"},
		{"datadog: an address that is not a URL", datadogConfig, "", "api.datadoghq.eu", "api.datadoghq.eu"},
		{"dynatrace: no address", dynatraceConfig, "", "", "address"},
		{"dynatrace: no token", dynatraceConfig, "dynatrace_token", "https://abc123.live.dynatrace.com", "dynatrace_token"},
		{"influxDB: no address", influxDBConfig, "", "", "address"},
		{"influxDB: no token", influxDBConfig, "token", "http://influxdb:8086", "token"},
		{"influxDB: no org", influxDBConfig, "org", "http://influxdb:8086", "org"},
		{"newRelic: no newrelic_query_key", newRelicConfig, "newrelic_query_key", "", "newrelic_query_key"},
		{"newRelic: no newrelic_account_id", newRelicConfig, "newrelic_account_id", "", "newrelic_account_id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.config(tc.address)
			delete(cfg.Secret, tc.drop)
			_, err := New(cfg)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got error %v, want one that names %q", err, tc.wantErr)
			}
		})
	}
}
