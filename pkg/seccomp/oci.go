package seccomp

import "github.com/bulwark-sec/bulwark/pkg/oci"

// pkg/oci validates whole configs but must not depend on libseccomp (cgo);
// it calls back into this package through these hooks.
func init() {
	oci.ValidateSeccomp = Validate
	oci.SeccompSupportedFlags = SupportedFlags
	oci.SeccompLibraryVersion = Version
}
