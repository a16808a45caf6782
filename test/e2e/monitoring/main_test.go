// Package monitoring tests the monitoring that Sluice ships for platform
// teams: the chart's and kustomize's ServiceMonitor and PodMonitor against
// the Prometheus Operator's CRDs, and every panel of the Grafana dashboard
// run against a real Prometheus that scrapes the real operator while it
// releases commits from Git.
package monitoring

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"sluice.dev/sluice/test/controlplane"
)

// prometheusOperatorModule holds the ServiceMonitor and PodMonitor CRDs as
// the Prometheus Operator ships them; the test downloads it from the
// module proxy once, outside Sluice's go.mod.
const prometheusOperatorModule = "github.com/prometheus-operator/prometheus-operator@v0.85.0"

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	crds, err := crdFiles()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(controlplane.RunTests(m, controlplane.Options{CRDDirectoryPaths: crds}, &cp))
}

// crdFiles are Sluice's CRDs, the Gateway API's (the Canary's router) and
// the Prometheus Operator's ServiceMonitor and PodMonitor.
func crdFiles() ([]string, error) {
	gateway, err := controlplane.GatewayAPICRDs()
	if err != nil {
		return nil, err
	}
	operator, err := controlplane.DownloadModule(prometheusOperatorModule)
	if err != nil {
		return nil, err
	}
	monitors := filepath.Join(operator, "example", "prometheus-operator-crd")
	return append(append([]string{controlplane.SluiceCRDs()}, gateway...),
		filepath.Join(monitors, "monitoring.coreos.com_servicemonitors.yaml"),
		filepath.Join(monitors, "monitoring.coreos.com_podmonitors.yaml"),
	), nil
}
