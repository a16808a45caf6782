package v1

// Condition reasons of a Kustomization, as in Flux.
const (
	ReasonSucceeded          = "ReconciliationSucceeded"
	ReasonFailed             = "ReconciliationFailed"
	ReasonArtifactFailed     = "ArtifactFailed"
	ReasonBuildFailed        = "BuildFailed"
	ReasonHealthCheckFailed  = "HealthCheckFailed"
	ReasonDependencyNotReady = "DependencyNotReady"
)
