package validation

import (
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// The valid bases the cases break, one field at a time. Each is accepted
// as it is (see the last subtest).
const (
	canary = `
apiVersion: sluice.dev/v1beta1
kind: Canary
metadata: {name: podinfo}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  service: {port: 9898}
  analysis:
    interval: 1m
    threshold: 5
    maxWeight: 50
    stepWeight: 10
    metrics:
      - name: request-success-rate
        thresholdRange: {min: 99}
    webhooks:
      - name: load-test
        url: http://loadtester.test/
    alerts:
      - name: team
        providerRef: {name: slack}
`
	abTest = `
apiVersion: sluice.dev/v1beta1
kind: Canary
metadata: {name: ab}
spec:
  provider: istio
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  service: {port: 9898}
  analysis:
    interval: 1m
    threshold: 5
    iterations: 10
    match:
      - headers:
          x-canary: {exact: insider}
`
	metricTemplate = `
apiVersion: sluice.dev/v1beta1
kind: MetricTemplate
metadata: {name: errors}
spec:
  provider: {type: prometheus, address: "http://prometheus:9090"}
  query: sum(rate(errors[{{ interval }}]))
`
	alertProvider = `
apiVersion: sluice.dev/v1beta1
kind: AlertProvider
metadata: {name: slack}
spec:
  type: slack
  address: https://hooks.slack.com/services/x
`
	gitRepository = `
apiVersion: source.sluice.dev/v1
kind: GitRepository
metadata: {name: app}
spec:
  url: https://git.example.test/org/app.git
  interval: 1m
  ref: {branch: main}
`
	helmRepository = `
apiVersion: source.sluice.dev/v1
kind: HelmRepository
metadata: {name: podinfo}
spec:
  url: https://charts.example.test
  interval: 1h
`
	ociRepository = `
apiVersion: source.sluice.dev/v1
kind: OCIRepository
metadata: {name: manifests}
spec:
  url: oci://ghcr.example.test/org/manifests
  interval: 5m
  ref: {tag: latest}
`
	bucket = `
apiVersion: source.sluice.dev/v1
kind: Bucket
metadata: {name: artifacts}
spec:
  bucketName: artifacts
  endpoint: minio.example.test:9000
  interval: 5m
`
	helmChart = `
apiVersion: source.sluice.dev/v1
kind: HelmChart
metadata: {name: podinfo}
spec:
  chart: podinfo
  version: "6.x"
  sourceRef: {kind: HelmRepository, name: podinfo}
  interval: 5m
`
	kustomization = `
apiVersion: sync.sluice.dev/v1
kind: Kustomization
metadata: {name: app}
spec:
  sourceRef: {kind: GitRepository, name: app}
  path: ./deploy
  interval: 10m
  prune: true
`
	helmRelease = `
apiVersion: sync.sluice.dev/v2
kind: HelmRelease
metadata: {name: podinfo}
spec:
  interval: 10m
  chart:
    spec:
      chart: podinfo
      version: ">=6.0.0 <7.0.0"
      sourceRef: {kind: HelmRepository, name: podinfo}
`
	receiver = `
apiVersion: notification.sluice.dev/v1
kind: Receiver
metadata: {name: github}
spec:
  type: github
  secretRef: {name: webhook-token}
  resources:
    - kind: GitRepository
      name: app
`
	provider = `
apiVersion: notification.sluice.dev/v1beta3
kind: Provider
metadata: {name: slack}
spec:
  type: slack
  address: https://hooks.slack.com/services/x
`
	alert = `
apiVersion: notification.sluice.dev/v1beta3
kind: Alert
metadata: {name: on-call}
spec:
  providerRef: {name: slack}
  eventSources:
    - kind: Kustomization
      name: app
`
	imageRepository = `
apiVersion: image.sluice.dev/v1
kind: ImageRepository
metadata: {name: app}
spec:
  image: ghcr.example.test/org/app
  interval: 5m
`
	imagePolicy = `
apiVersion: image.sluice.dev/v1
kind: ImagePolicy
metadata: {name: app}
spec:
  imageRepositoryRef: {name: app}
  policy:
    semver: {range: ">=1.0.0"}
`
	imageUpdateAutomation = `
apiVersion: image.sluice.dev/v1
kind: ImageUpdateAutomation
metadata: {name: app}
spec:
  sourceRef: {kind: GitRepository, name: app}
  interval: 30m
  git:
    commit:
      author: {name: bot, email: bot@example.test}
    push: {branch: main}
`
)

// invalid is one spec the API server must refuse.
type invalid struct {
	name string
	base string
	// patch is a JSON merge patch, in YAML, applied to base; null removes
	// a field and a list replaces the whole list.
	patch string
	// field is the path the error must name.
	field string
	// says is more text the error must hold, such as the rule's message;
	// empty checks the field alone.
	says string
}

// TestInvalidSpecsAreRefusedNamingTheField creates each spec, with strict
// field validation as kubectl does, as a server-side dry run. Each must be
// refused as Invalid, naming the field, and every base must be accepted,
// so that it is the one broken field that is refused. The cases add to
// those of api/v1beta1/validation_test.go and of the kinds' own refusal
// tests (sources, image automation, Receivers, SOPS, health checks),
// which this table does not repeat.
func TestInvalidSpecsAreRefusedNamingTheField(t *testing.T) {
	const ns = "invalid"
	if err := cp.Client.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	long := func(n int) string { return strings.Repeat("a", n) }
	tests := []invalid{
		// Canary: numbers out of range.
		{"a progressDeadlineSeconds of zero", canary, `{spec: {progressDeadlineSeconds: 0}}`, "spec.progressDeadlineSeconds", "greater than or equal to 1"},
		{"a negative threshold", canary, `{spec: {analysis: {threshold: -1}}}`, "spec.analysis.threshold", "greater than or equal to 0"},
		{"negative iterations", abTest, `{spec: {analysis: {iterations: -1}}}`, "spec.analysis.iterations", "greater than or equal to 0"},
		{"a maxWeight above 100", canary, `{spec: {analysis: {maxWeight: 101}}}`, "spec.analysis.maxWeight", "less than or equal to 100"},
		{"a stepWeight of zero", canary, `{spec: {analysis: {stepWeight: 0}}}`, "spec.analysis.stepWeight", "greater than or equal to 1"},
		{"a negative stepWeight", canary, `{spec: {analysis: {stepWeight: -10}}}`, "spec.analysis.stepWeight", "greater than or equal to 1"},
		{"an empty stepWeights list", canary, `{spec: {analysis: {stepWeight: null, stepWeights: []}}}`, "spec.analysis.stepWeights", "at least 1 items"},
		{"a stepWeightPromotion above 100", canary, `{spec: {analysis: {stepWeightPromotion: 101}}}`, "spec.analysis.stepWeightPromotion", "less than or equal to 100"},
		{"a mirrorWeight above 100", abTest, `{spec: {analysis: {mirror: true, mirrorWeight: 150}}}`, "spec.analysis.mirrorWeight", "less than or equal to 100"},
		{"a negative canaryReadyThreshold", canary, `{spec: {analysis: {canaryReadyThreshold: -1}}}`, "spec.analysis.canaryReadyThreshold", "greater than or equal to 0"},
		// Canary: metrics.
		{"a negative metric interval", canary, `{spec: {analysis: {metrics: [{name: request-success-rate, interval: -1m, thresholdRange: {min: 99}}]}}}`, "spec.analysis.metrics[0].interval", "should match"},
		{"a metric interval of zero", canary, `{spec: {analysis: {metrics: [{name: request-success-rate, interval: 0s, thresholdRange: {min: 99}}]}}}`, "spec.analysis.metrics[0].interval", "longer than zero"},
		{"a metric interval in words", canary, `{spec: {analysis: {metrics: [{name: request-success-rate, interval: 1 minute, thresholdRange: {min: 99}}]}}}`, "spec.analysis.metrics[0].interval", "should match"},
		{"a metric with both templateRef and query", canary, `{spec: {analysis: {metrics: [{name: errors, query: "sum(x)", templateRef: {name: errors}, thresholdRange: {max: 1}}]}}}`, "spec.analysis.metrics[0].query", "mutually exclusive"},
		{"two metrics of the same name", canary, `{spec: {analysis: {metrics: [{name: request-success-rate, thresholdRange: {min: 99}}, {name: request-success-rate, thresholdRange: {min: 90}}]}}}`, "spec.analysis.metrics", "metric names must be unique"},
		{"a metric without a name", canary, `{spec: {analysis: {metrics: [{templateRef: {name: errors}, thresholdRange: {max: 1}}]}}}`, "spec.analysis.metrics[0].name", "Required value"},
		{"a thresholdRange with neither bound", canary, `{spec: {analysis: {metrics: [{name: request-success-rate, thresholdRange: {}}]}}}`, "spec.analysis.metrics[0].thresholdRange", "needs min, max or both"},
		{"an unknown noData policy", canary, `{spec: {analysis: {noData: ignore}}}`, "spec.analysis.noData", `Unsupported value: "ignore"`},
		{"a templateRef with an empty name", canary, `{spec: {analysis: {metrics: [{name: errors, templateRef: {name: ""}, thresholdRange: {max: 1}}]}}}`, "spec.analysis.metrics[0].templateRef.name", "at least 1 chars"},
		// Canary: webhooks and alerts.
		{"a webhook without a url", canary, `{spec: {analysis: {webhooks: [{name: load-test}]}}}`, "spec.analysis.webhooks[0].url", "Required value"},
		{"a webhook without a name", canary, `{spec: {analysis: {webhooks: [{url: "http://loadtester.test/"}]}}}`, "spec.analysis.webhooks[0].name", "Required value"},
		{"a webhook url with an ftp scheme", canary, `{spec: {analysis: {webhooks: [{name: x, url: "ftp://loadtester.test/"}]}}}`, "spec.analysis.webhooks[0].url", "http or https URL"},
		{"a negative webhook timeout", canary, `{spec: {analysis: {webhooks: [{name: x, url: "http://x.test/", timeout: -5s}]}}}`, "spec.analysis.webhooks[0].timeout", "should match"},
		{"a webhook timeout of zero", canary, `{spec: {analysis: {webhooks: [{name: x, url: "http://x.test/", timeout: 0s}]}}}`, "spec.analysis.webhooks[0].timeout", "longer than zero"},
		{"webhook retries above 100", canary, `{spec: {analysis: {webhooks: [{name: x, url: "http://x.test/", retries: 101}]}}}`, "spec.analysis.webhooks[0].retries", "less than or equal to 100"},
		{"an alert without a providerRef", canary, `{spec: {analysis: {alerts: [{name: team}]}}}`, "spec.analysis.alerts[0].providerRef", "Required value"},
		{"an alert providerRef with an empty name", canary, `{spec: {analysis: {alerts: [{name: team, providerRef: {name: ""}}]}}}`, "spec.analysis.alerts[0].providerRef.name", "at least 1 chars"},
		// Canary: target, service and routing.
		{"an empty targetRef name", canary, `{spec: {targetRef: {name: ""}}}`, "spec.targetRef.name", "at least 1 chars"},
		{"a targetRef without an apiVersion", canary, `{spec: {targetRef: {apiVersion: null}}}`, "spec.targetRef.apiVersion", "Required value"},
		{"a service port above 65535", canary, `{spec: {service: {port: 70000}}}`, "spec.service.port", "less than or equal to 65535"},
		{"a service name that is not a DNS label", canary, `{spec: {service: {name: Web_1}}}`, "spec.service.name", "should match"},
		{"a service portName longer than 15", canary, `{spec: {service: {portName: http-with-a-long-name}}}`, "spec.service.portName", "Too long"},
		{"a service timeout with no unit", canary, `{spec: {service: {timeout: "30"}}}`, "spec.service.timeout", "should match"},
		{"an unknown trafficDistribution", canary, `{spec: {service: {trafficDistribution: Random}}}`, "spec.service.trafficDistribution", `Unsupported value: "Random"`},
		{"negative retry attempts", canary, `{spec: {service: {retries: {attempts: -1}}}}`, "spec.service.retries.attempts", "greater than or equal to 0"},
		{"an unknown rewrite type", canary, `{spec: {service: {rewrite: {type: Regex}}}}`, "spec.service.rewrite.type", `Unsupported value: "Regex"`},
		{"a session cookie name with a space", canary, `{spec: {analysis: {sessionAffinity: {cookieName: "my cookie"}}}}`, "spec.analysis.sessionAffinity.cookieName", "should match"},
		{"a session cookie maxAge of zero", canary, `{spec: {analysis: {sessionAffinity: {cookieName: canary, maxAge: 0}}}}`, "spec.analysis.sessionAffinity.maxAge", "greater than or equal to 1"},
		{"an A/B match with no condition", abTest, `{spec: {analysis: {match: [{}]}}}`, "spec.analysis.match[0]", "at least one condition"},
		{"an A/B match on port zero", abTest, `{spec: {analysis: {match: [{port: 0, headers: {x-canary: {exact: insider}}}]}}}`, "spec.analysis.match[0].port", "greater than or equal to 1"},
		{"primaryScalerReplicas min above max", canary, `{spec: {autoscalerRef: {apiVersion: autoscaling/v2, kind: HorizontalPodAutoscaler, name: podinfo, primaryScalerReplicas: {minReplicas: 5, maxReplicas: 2}}}}`, "spec.autoscalerRef.primaryScalerReplicas.minReplicas", "must not be greater than maxReplicas"},
		{"a VerticalPodAutoscaler", canary, `{spec: {autoscalerRef: {apiVersion: autoscaling.k8s.io/v1, kind: VerticalPodAutoscaler, name: podinfo}}}`, "spec.autoscalerRef.kind", `Unsupported value: "VerticalPodAutoscaler"`},
		{"an upstreamRef that is not an Upstream", canary, `{spec: {provider: gloo, upstreamRef: {kind: Service, name: podinfo}}}`, "spec.upstreamRef.kind", "must be Upstream"},
		{"a service.routeRef that is not a route", canary, `{spec: {provider: "gatewayapi:v1", service: {routeRef: {apiVersion: v1, kind: Service, name: podinfo}}}}`, "spec.service.routeRef.kind", "HTTPRoute or GRPCRoute"},
		{"Flagger's misspelt stepweight", canary, `{spec: {analysis: {stepweight: 20}}}`, "spec.analysis.stepweight", "unknown field"},
		{"Flagger's old canaryAnalysis", canary, `{spec: {canaryAnalysis: {interval: 1m}}}`, "spec.canaryAnalysis", "unknown field"},
		// MetricTemplate.
		{"a MetricTemplate address with no scheme", metricTemplate, `{spec: {provider: {address: "prometheus:9090"}}}`, "spec.provider.address", "http or https URL"},
		{"a cloudwatch template without a region", metricTemplate, `{spec: {provider: {type: cloudwatch, address: null}}}`, "spec.provider.region", "region is required"},
		{"a web template without a jsonPath", metricTemplate, `{spec: {provider: {type: web}}}`, "spec.provider.jsonPath", "jsonPath is required"},
		{"a jsonPath on a prometheus template", metricTemplate, `{spec: {provider: {jsonPath: "{.value}"}}}`, "spec.provider.method", "web provider only"},
		{"a web method PUT", metricTemplate, `{spec: {provider: {type: web, jsonPath: "{.value}", method: PUT}}}`, "spec.provider.method", `Unsupported value: "PUT"`},
		{"a provider timeout with no unit", metricTemplate, `{spec: {provider: {timeout: "5"}}}`, "spec.provider.timeout", "should match"},
		{"an empty query", metricTemplate, `{spec: {query: ""}}`, "spec.query", "at least 1 chars"},
		{"a MetricTemplate without a provider", metricTemplate, `{spec: {provider: null}}`, "spec.provider", "Required value"},
		// AlertProvider.
		{"an AlertProvider address over SMTP", alertProvider, `{spec: {address: "smtp://mail.example.test"}}`, "spec.address", "http or https URL"},
		{"an AlertProvider proxy with no scheme", alertProvider, `{spec: {proxy: "proxy:3128"}}`, "spec.proxy", "http or https URL"},
		{"a messageTemplate over 4096 characters", alertProvider, `{spec: {messageTemplate: "` + long(4097) + `"}}`, "spec.messageTemplate", "Too long"},
		{"an AlertProvider without a type", alertProvider, `{spec: {type: null}}`, "spec.type", "Required value"},
		{"Flux's googlechat type", alertProvider, `{spec: {type: googlechat}}`, "spec.type", `Unsupported value: "googlechat"`},
		// GitRepository.
		{"an scp-style Git url", gitRepository, `{spec: {url: "git@github.com:org/app.git"}}`, "spec.url", "should match"},
		{"a GitRepository without an interval", gitRepository, `{spec: {interval: null}}`, "spec.interval", "Required value"},
		{"a GitRepository interval in words", gitRepository, `{spec: {interval: 1 minute}}`, "spec.interval", "should match"},
		{"a negative GitRepository interval", gitRepository, `{spec: {interval: -5m}}`, "spec.interval", "should match"},
		{"a GitRepository timeout in days", gitRepository, `{spec: {timeout: 1d}}`, "spec.timeout", "should match"},
		{"a ref name outside refs/", gitRepository, `{spec: {ref: {name: main}}}`, "spec.ref.name", "should match"},
		{"a Git semver range that does not parse", gitRepository, `{spec: {ref: {branch: null, semver: ">= one"}}}`, "spec.ref.semver", "semver range"},
		{"a GitRepository secretRef with an empty name", gitRepository, `{spec: {secretRef: {name: ""}}}`, "spec.secretRef.name", "at least 1 chars"},
		// Kustomization.
		{"a Kustomization without a sourceRef", kustomization, `{spec: {sourceRef: null}}`, "spec.sourceRef", "Required value"},
		{"a Kustomization of a HelmRepository", kustomization, `{spec: {sourceRef: {kind: HelmRepository}}}`, "spec.sourceRef.kind", `Unsupported value: "HelmRepository"`},
		{"a Kustomization without prune", kustomization, `{spec: {prune: null}}`, "spec.prune", "Required value"},
		{"an unknown deletionPolicy", kustomization, `{spec: {deletionPolicy: Keep}}`, "spec.deletionPolicy", `Unsupported value: "Keep"`},
		{"a retryInterval with no unit", kustomization, `{spec: {retryInterval: "60"}}`, "spec.retryInterval", "should match"},
		{"a namePrefix over 200 characters", kustomization, `{spec: {namePrefix: ` + long(201) + `}}`, "spec.namePrefix", "Too long"},
		{"an unknown substituteStrategy", kustomization, `{spec: {postBuild: {substituteStrategy: Never}}}`, "spec.postBuild.substituteStrategy", `Unsupported value: "Never"`},
		{"variables from a Deployment", kustomization, `{spec: {postBuild: {substituteFrom: [{kind: Deployment, name: vars}]}}}`, "spec.postBuild.substituteFrom[0].kind", `Unsupported value: "Deployment"`},
		{"decryption by vault", kustomization, `{spec: {decryption: {provider: vault}}}`, "spec.decryption.provider", `Unsupported value: "vault"`},
		{"a health check without a kind", kustomization, `{spec: {healthChecks: [{name: app}]}}`, "spec.healthChecks[0].kind", "Required value"},
		{"an ignore rule without paths", kustomization, `{spec: {ignore: [{paths: []}]}}`, "spec.ignore[0].paths", "at least 1 items"},
		{"an unknown buildMetadata option", kustomization, `{spec: {buildMetadata: [comments]}}`, "spec.buildMetadata[0]", `Unsupported value: "comments"`},
		{"a dependency with an empty name", kustomization, `{spec: {dependsOn: [{name: ""}]}}`, "spec.dependsOn[0].name", "at least 1 chars"},
		// HelmRelease.
		{"both chart and chartRef", helmRelease, `{spec: {chartRef: {kind: OCIRepository, name: podinfo}}}`, "spec.chart", "exactly one of spec.chart and spec.chartRef"},
		{"neither chart nor chartRef", helmRelease, `{spec: {chart: null}}`, "spec.chart", "exactly one of spec.chart and spec.chartRef"},
		{"a chartRef to a GitRepository", helmRelease, `{spec: {chart: null, chartRef: {kind: GitRepository, name: app}}}`, "spec.chartRef.kind", `Unsupported value: "GitRepository"`},
		{"a chart from an OCIRepository sourceRef", helmRelease, `{spec: {chart: {spec: {sourceRef: {kind: OCIRepository}}}}}`, "spec.chart.spec.sourceRef.kind", `Unsupported value: "OCIRepository"`},
		{"the chart version latest", helmRelease, `{spec: {chart: {spec: {version: latest}}}}`, "spec.chart.spec.version", "semver range"},
		{"a releaseName over 53 characters", helmRelease, `{spec: {releaseName: ` + long(54) + `}}`, "spec.releaseName", "Too long"},
		{"an upgrade remediation by reinstall", helmRelease, `{spec: {upgrade: {remediation: {strategy: reinstall}}}}`, "spec.upgrade.remediation.strategy", `Unsupported value: "reinstall"`},
		{"a driftDetection mode on", helmRelease, `{spec: {driftDetection: {mode: "on"}}}`, "spec.driftDetection.mode", `Unsupported value: "on"`},
		{"an upgrade crds policy Always", helmRelease, `{spec: {upgrade: {crds: Always}}}`, "spec.upgrade.crds", `Unsupported value: "Always"`},
		{"an unknown uninstall deletionPropagation", helmRelease, `{spec: {uninstall: {deletionPropagation: cascade}}}`, "spec.uninstall.deletionPropagation", `Unsupported value: "cascade"`},
		{"values from a Deployment", helmRelease, `{spec: {valuesFrom: [{kind: Deployment, name: values}]}}`, "spec.valuesFrom[0].kind", `Unsupported value: "Deployment"`},
		// HelmRepository.
		{"an oci HelmRepository with an https url", helmRepository, `{spec: {type: oci}}`, "spec.url", "must start with oci://"},
		{"a default HelmRepository with an oci url", helmRepository, `{spec: {url: "oci://ghcr.example.test/charts"}}`, "spec.url", "must be http:// or https://"},
		{"a HelmRepository url over s3", helmRepository, `{spec: {url: "s3://charts"}}`, "spec.url", "should match"},
		{"a HelmRepository type git", helmRepository, `{spec: {type: git}}`, "spec.type", `Unsupported value: "git"`},
		// OCIRepository.
		{"an OCIRepository semver range that does not parse", ociRepository, `{spec: {ref: {tag: null, semver: "1.0.0 <> 2.0.0"}}}`, "spec.ref.semver", "semver range"},
		{"an OCIRepository timeout in hours", ociRepository, `{spec: {timeout: 1h}}`, "spec.timeout", "should match"},
		// Bucket.
		{"an empty bucketName", bucket, `{spec: {bucketName: ""}}`, "spec.bucketName", "at least 1 chars"},
		// HelmChart.
		{"a HelmChart from an OCIRepository", helmChart, `{spec: {sourceRef: {kind: OCIRepository}}}`, "spec.sourceRef.kind", `Unsupported value: "OCIRepository"`},
		{"an unknown reconcileStrategy", helmChart, `{spec: {reconcileStrategy: Always}}`, "spec.reconcileStrategy", `Unsupported value: "Always"`},
		{"a HelmChart version range that does not parse", helmChart, `{spec: {version: "6.x || "}}`, "spec.version", "semver range"},
		// Receiver.
		{"an unknown Receiver type", receiver, `{spec: {type: jenkins}}`, "spec.type", `Unsupported value: "jenkins"`},
		{"a Receiver with no resources", receiver, `{spec: {resources: []}}`, "spec.resources", "at least 1 items"},
		{"a Receiver of a Canary", receiver, `{spec: {resources: [{kind: Canary, name: podinfo}]}}`, "spec.resources[0].kind", `Unsupported value: "Canary"`},
		{"a Receiver of every object with no labels", receiver, `{spec: {resources: [{kind: GitRepository, name: "*"}]}}`, "spec.resources[0]", "name '*' needs matchLabels"},
		{"a Receiver interval in words", receiver, `{spec: {interval: ten minutes}}`, "spec.interval", "should match"},
		// Provider and Alert.
		{"an unknown Provider type", provider, `{spec: {type: pagerduty}}`, "spec.type", `Unsupported value: "pagerduty"`},
		{"a generic Provider with nowhere to post", provider, `{spec: {type: generic, address: null}}`, "spec.address", "is required for this type"},
		{"a telegram Provider without a chat", provider, `{spec: {type: telegram, secretRef: {name: bot}}}`, "spec.channel", "required for telegram"},
		{"a Provider address over ftp", provider, `{spec: {address: "ftp://hooks.example.test"}}`, "spec.address", "http or https URL"},
		{"a Provider timeout in hours", provider, `{spec: {timeout: 1h}}`, "spec.timeout", "should match"},
		{"an Alert without eventSources", alert, `{spec: {eventSources: []}}`, "spec.eventSources", "at least 1 items"},
		{"an Alert eventSeverity warning", alert, `{spec: {eventSeverity: warning}}`, "spec.eventSeverity", `Unsupported value: "warning"`},
		{"an Alert about Deployments", alert, `{spec: {eventSources: [{kind: Deployment, name: app}]}}`, "spec.eventSources[0].kind", `Unsupported value: "Deployment"`},
		{"an Alert summary over 255 characters", alert, `{spec: {summary: ` + long(256) + `}}`, "spec.summary", "Too long"},
		// Image automation.
		{"an empty ImageRepository image", imageRepository, `{spec: {image: ""}}`, "spec.image", "at least 1 chars"},
		{"more than 25 exclusion patterns", imageRepository, `{spec: {exclusionList: [` + strings.Repeat(`"^x$", `, 26) + `]}}`, "spec.exclusionList", "at most 25 items"},
		{"an unknown alphabetical order", imagePolicy, `{spec: {policy: {semver: null, alphabetical: {order: random}}}}`, "spec.policy.alphabetical.order", `Unsupported value: "random"`},
		{"an ImagePolicy semver range that does not parse", imagePolicy, `{spec: {policy: {semver: {range: "1.x.y"}}}}`, "spec.policy.semver.range", "semver range"},
		{"an automation of an OCIRepository", imageUpdateAutomation, `{spec: {sourceRef: {kind: OCIRepository}}}`, "spec.sourceRef.kind", `Unsupported value: "OCIRepository"`},
		{"a commit author without an email", imageUpdateAutomation, `{spec: {git: {commit: {author: {email: null}}}}}`, "spec.git.commit.author.email", "Required value"},
		{"an unknown onCanaryFailure", imageUpdateAutomation, `{spec: {onCanaryFailure: Rollback}}`, "spec.onCanaryFailure", `Unsupported value: "Rollback"`},
	}
	if len(tests) < 60 {
		t.Fatalf("%d cases: the table must hold at least 60", len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name+" is refused", func(t *testing.T) {
			obj := patched(t, tt.base, tt.patch)
			obj.SetNamespace(ns)
			err := cp.Client.Create(t.Context(), obj, client.DryRunAll, client.FieldValidation("Strict"))
			if err == nil {
				t.Fatal("accepted")
			}
			// Strict validation refuses an unknown field as BadRequest;
			// the schema refuses a value as Invalid.
			strictRefusal := apierrors.IsBadRequest(err) && tt.says == "unknown field"
			if !apierrors.IsInvalid(err) && !strictRefusal {
				t.Fatalf("want an Invalid error, got %v", err)
			}
			for _, w := range []string{tt.field, tt.says} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("the error does not say %q:\n%v", w, err)
				}
			}
		})
	}

	t.Run("every base is accepted as it is", func(t *testing.T) {
		bases := map[string]bool{}
		for _, tt := range tests {
			bases[tt.base] = true
		}
		for base := range bases {
			obj := patched(t, base, `{}`)
			obj.SetNamespace(ns)
			if err := cp.Client.Create(t.Context(), obj, client.DryRunAll, client.FieldValidation("Strict")); err != nil {
				t.Errorf("%s %s refused: %v", obj.GetKind(), obj.GetName(), err)
			}
		}
	})
}

// patched applies a JSON merge patch, written in YAML, to a YAML manifest.
func patched(t *testing.T, base, patch string) *unstructured.Unstructured {
	t.Helper()
	baseJSON, err := yaml.YAMLToJSON([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	patchJSON, err := yaml.YAMLToJSON([]byte(patch))
	if err != nil {
		t.Fatalf("patch %s: %v", patch, err)
	}
	merged, err := jsonpatch.MergePatch(baseJSON, patchJSON)
	if err != nil {
		t.Fatal(err)
	}
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON(merged); err != nil {
		t.Fatal(err)
	}
	return obj
}
