package v1

// fluxGroups maps the API groups of Flux's kinds to Sluice's.
var fluxGroups = map[string]string{
	"source.toolkit.fluxcd.io":       "source.sluice.dev",
	"kustomize.toolkit.fluxcd.io":    "sync.sluice.dev",
	"helm.toolkit.fluxcd.io":         "sync.sluice.dev",
	"notification.toolkit.fluxcd.io": "notification.sluice.dev",
	"image.toolkit.fluxcd.io":        "image.sluice.dev",
}

// SluiceGroup is the group of Sluice's kind for one of Flux's groups, and
// any other group as it is. A manifest migrated from Flux by changing its
// own apiVersion still names Flux's groups inside its spec, in a health
// check or a Receiver's resources: those mean Sluice's kinds.
func SluiceGroup(group string) string {
	if g, ok := fluxGroups[group]; ok {
		return g
	}
	return group
}
