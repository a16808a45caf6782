package v1

// Condition reasons of a Kustomization, as in Flux.
const (
	ReasonSucceeded          = "ReconciliationSucceeded"
	ReasonFailed             = "ReconciliationFailed"
	ReasonArtifactFailed     = "ArtifactFailed"
	ReasonBuildFailed        = "BuildFailed"
	ReasonHealthCheckFailed  = "HealthCheckFailed"
	ReasonDependencyNotReady = "DependencyNotReady"
	// ReasonDecryptionFailed is an object or a file that could not be
	// decrypted, or keys of spec.decryption that could not be read;
	// nothing was applied.
	ReasonDecryptionFailed = "DecryptionFailed"
	// ReasonInvalidCELExpression is an expression of spec.healthCheckExprs
	// or spec.dependsOn[].readyExpr that does not compile; nothing is
	// applied until the spec changes.
	ReasonInvalidCELExpression = "InvalidCELExpression"
)
