package oci

import (
	"strings"

	"github.com/moby/sys/capability"
)

// Capability names are config vocabulary, so they are spelt here, once:
// pkg/caps (which applies them), pkg/policy and the command line all take
// their spelling from CapabilityName, and a name one of them accepts cannot
// be refused by another.

// knownCaps is every capability name this build knows.
var knownCaps = func() map[string]bool {
	m := map[string]bool{}
	for _, c := range capability.ListKnown() {
		m[CapabilityName(c.String())] = true
	}
	return m
}()

// CapabilityName returns the spelling config.json uses for a capability a
// person may have typed as "net_admin", "NET_ADMIN" or " cap_net_admin":
// "CAP_NET_ADMIN". It does not check that the capability exists; see
// IsKnownCapability.
func CapabilityName(name string) string {
	return "CAP_" + strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(name)), "CAP_")
}

// IsKnownCapability reports whether name, spelt as in config.json, is a
// capability this build knows (the running kernel may still lack it).
func IsKnownCapability(name string) bool { return knownCaps[name] }

// KnownCapabilities returns every capability name ("CAP_CHOWN", ...) this
// build knows, sorted. Names outside this list are rejected by Validate:
// the spec requires an error for unknown capabilities, and silently dropping
// one would run the process with a different privilege set than configured.
func KnownCapabilities() []string { return sortedKeys(knownCaps) }
