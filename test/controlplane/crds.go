package controlplane

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// DataplaneDirEnv names the environment variable that holds the folder of
// the data-plane binaries and Traefik's CRDs.
const DataplaneDirEnv = "SLUICE_DATAPLANE_DIR"

// SluiceCRDs is the folder of Sluice's own CRDs.
func SluiceCRDs() string { return filepath.Join(RepoRoot(), "kustomize", "crds") }

// UpstreamCRDs are the CRD files of the routing APIs Sluice writes, as
// their projects ship them: the Gateway API's standard channel and Istio's
// from their Go modules, Traefik's from its module (copied by `make
// dataplane`), Skipper's RouteGroup (which Skipper needs to start) from its
// module, and SMI's TrafficSplit from a pinned copy.
func UpstreamCRDs() ([]string, error) {
	gatewayAPI, err := moduleDir("sigs.k8s.io/gateway-api")
	if err != nil {
		return nil, err
	}
	istio, err := moduleDir("istio.io/api")
	if err != nil {
		return nil, err
	}
	dataplane, err := DataplaneDir()
	if err != nil {
		return nil, err
	}
	var files []string
	for _, kind := range []string{"gatewayclasses", "gateways", "httproutes", "grpcroutes", "referencegrants", "backendtlspolicies"} {
		files = append(files, filepath.Join(gatewayAPI, "config", "crd", "standard", "gateway.networking.k8s.io_"+kind+".yaml"))
	}
	return append(files,
		filepath.Join(istio, "kubernetes", "customresourcedefinitions.gen.yaml"),
		filepath.Join(dataplane, "crds", "traefik.yaml"),
		filepath.Join(dataplane, "crds", "skipper-routegroups.yaml"),
		filepath.Join(RepoRoot(), "test", "fixtures", "crds", "smi", "split.smi-spec.io_trafficsplits.yaml"),
	), nil
}

// DataplaneDir finds the Traefik and Skipper build of `make dataplane`.
func DataplaneDir() (string, error) {
	dir := os.Getenv(DataplaneDirEnv)
	if dir == "" {
		cache := os.Getenv("XDG_CACHE_HOME")
		if cache == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", err
			}
			cache = filepath.Join(home, ".cache")
		}
		found, _ := filepath.Glob(filepath.Join(cache, "sluice", "dataplane", "traefik-*", ".complete"))
		if len(found) == 0 {
			return "", fmt.Errorf("no data plane build in %s: run `make dataplane` (or `make test`, which builds it)", filepath.Join(cache, "sluice", "dataplane"))
		}
		dir = filepath.Dir(found[len(found)-1])
	}
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err != nil {
		return "", fmt.Errorf("the data plane is missing in %s: run `make dataplane` (or `make test`, which builds it)", dir)
	}
	return dir, nil
}

// moduleDir is where the Go module cache holds a dependency of Sluice.
func moduleDir(module string) (string, error) {
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", module)
	cmd.Dir = RepoRoot()
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go list -m %s: %w", module, err)
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		return "", fmt.Errorf("module %s is not downloaded: run go mod download", module)
	}
	return dir, nil
}
