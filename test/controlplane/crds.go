package controlplane

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// The environment variables that hold the folders of `make traefik` and
// `make skipper`: each proxy's binary and its CRDs.
const (
	TraefikDirEnv = "SLUICE_TRAEFIK_DIR"
	SkipperDirEnv = "SLUICE_SKIPPER_DIR"
)

// SluiceCRDs is the folder of Sluice's own CRDs.
func SluiceCRDs() string { return filepath.Join(RepoRoot(), "kustomize", "crds") }

// GatewayAPICRDs are the Gateway API's standard-channel CRD files, from its
// Go module.
func GatewayAPICRDs() ([]string, error) {
	gatewayAPI, err := moduleDir("sigs.k8s.io/gateway-api")
	if err != nil {
		return nil, err
	}
	var files []string
	for _, kind := range []string{"gatewayclasses", "gateways", "httproutes", "grpcroutes", "referencegrants", "backendtlspolicies"} {
		files = append(files, filepath.Join(gatewayAPI, "config", "crd", "standard", "gateway.networking.k8s.io_"+kind+".yaml"))
	}
	return files, nil
}

// Modules that Sluice does not import, whose CRD files the tests install
// as their projects ship them; `go mod download` fetches each from the
// module proxy once into the module cache.
const (
	contourModule = "github.com/projectcontour/contour@v1.33.8"
	apisixModule  = "github.com/apache/apisix-ingress-controller@v1.8.4"
	kedaModule    = "github.com/kedacore/keda/v2@v2.17.2"
	knativeModule = "knative.dev/serving@v0.51.0"
)

// UpstreamCRDs are the CRD files of the routing APIs Sluice writes, as
// their projects ship them: the Gateway API's standard channel and Istio's
// from their Go modules, Traefik's from its module (copied by `make
// traefik`), Skipper's RouteGroup (which Skipper needs to start) from its
// module (copied by `make skipper`), Contour's and APISIX's from their
// modules, Knative Serving's Service from its module, and pinned
// copies, each naming its source, of SMI's TrafficSplit, Gloo Edge's
// RouteTable and Upstream, Kuma's TrafficRoute, and the App Mesh
// controller's v1beta2 kinds.
func UpstreamCRDs() ([]string, error) {
	files, err := GatewayAPICRDs()
	if err != nil {
		return nil, err
	}
	istio, err := moduleDir("istio.io/api")
	if err != nil {
		return nil, err
	}
	traefik, err := TraefikDir()
	if err != nil {
		return nil, err
	}
	skipper, err := SkipperDir()
	if err != nil {
		return nil, err
	}
	contour, err := DownloadModule(contourModule)
	if err != nil {
		return nil, err
	}
	apisix, err := DownloadModule(apisixModule)
	if err != nil {
		return nil, err
	}
	knative, err := DownloadModule(knativeModule)
	if err != nil {
		return nil, err
	}
	return append(files,
		filepath.Join(knative, "config", "core", "300-resources", "service.yaml"),
		filepath.Join(apisix, "samples", "deploy", "crd", "v1", "ApisixRoute.yaml"),
		filepath.Join(contour, "examples", "contour", "01-crds.yaml"),
		filepath.Join(istio, "kubernetes", "customresourcedefinitions.gen.yaml"),
		filepath.Join(traefik, "crds", "traefik.yaml"),
		filepath.Join(skipper, "crds", "skipper-routegroups.yaml"),
		filepath.Join(RepoRoot(), "test", "fixtures", "crds", "smi", "split.smi-spec.io_trafficsplits.yaml"),
		filepath.Join(RepoRoot(), "test", "fixtures", "crds", "gloo", "gateway.solo.io_v1_RouteTable.yaml"),
		filepath.Join(RepoRoot(), "test", "fixtures", "crds", "gloo", "gloo.solo.io_v1_Upstream.yaml"),
		filepath.Join(RepoRoot(), "test", "fixtures", "crds", "kuma", "kuma.io_trafficroutes.yaml"),
		filepath.Join(RepoRoot(), "test", "fixtures", "crds", "appmesh", "appmesh.k8s.aws_meshes.yaml"),
		filepath.Join(RepoRoot(), "test", "fixtures", "crds", "appmesh", "appmesh.k8s.aws_virtualnodes.yaml"),
		filepath.Join(RepoRoot(), "test", "fixtures", "crds", "appmesh", "appmesh.k8s.aws_virtualrouters.yaml"),
		filepath.Join(RepoRoot(), "test", "fixtures", "crds", "appmesh", "appmesh.k8s.aws_virtualservices.yaml"),
	), nil
}

// KEDACRDs are KEDA's ScaledObject CRD, from its Go module.
func KEDACRDs() ([]string, error) {
	keda, err := DownloadModule(kedaModule)
	if err != nil {
		return nil, err
	}
	return []string{filepath.Join(keda, "config", "crd", "bases", "keda.sh_scaledobjects.yaml")}, nil
}

// TraefikDir finds the Traefik build of `make traefik`.
func TraefikDir() (string, error) { return proxyDir(TraefikDirEnv, "traefik") }

// SkipperDir finds the Skipper build of `make skipper`.
func SkipperDir() (string, error) { return proxyDir(SkipperDirEnv, "skipper") }

// proxyDir is the folder named by the environment variable env, or else the
// newest complete build of proxy in the tool cache.
func proxyDir(env, proxy string) (string, error) {
	dir := os.Getenv(env)
	if dir == "" {
		cache := os.Getenv("XDG_CACHE_HOME")
		if cache == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", err
			}
			cache = filepath.Join(home, ".cache")
		}
		found, _ := filepath.Glob(filepath.Join(cache, "sluice", "dataplane", proxy+"-*", ".complete"))
		if len(found) == 0 {
			return "", fmt.Errorf("no %s build in %s: run `make %s` (or `make test`, which builds it)", proxy, filepath.Join(cache, "sluice", "dataplane"), proxy)
		}
		dir = filepath.Dir(found[len(found)-1])
	}
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err != nil {
		return "", fmt.Errorf("the %s build is missing in %s: run `make %s` (or `make test`, which builds it)", proxy, dir, proxy)
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

// DownloadModule is the folder of module@version in the module cache,
// downloaded from the module proxy when missing. It runs outside Sluice's
// module, so that a project Sluice does not import stays out of go.mod.
func DownloadModule(moduleAtVersion string) (string, error) {
	cmd := exec.Command("go", "mod", "download", "-json", moduleAtVersion)
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GO111MODULE=on", "GOFLAGS=-mod=mod")
	out, runErr := cmd.Output()
	var info struct{ Dir, Error string }
	// A failed download still prints its JSON, whose Error says why.
	_ = json.Unmarshal(out, &info)
	switch {
	case info.Error != "":
		return "", fmt.Errorf("go mod download %s: %s", moduleAtVersion, info.Error)
	case runErr != nil:
		return "", fmt.Errorf("go mod download %s: %w", moduleAtVersion, runErr)
	case info.Dir == "":
		return "", fmt.Errorf("go mod download %s: no folder in %q", moduleAtVersion, out)
	}
	return info.Dir, nil
}
