package seccomp

import "github.com/bulwark-sec/bulwark/pkg/oci"

// Support reports this host's seccomp support for oci.Features: the flags
// the kernel and the linked libseccomp accept, and that libseccomp's version.
func Support() oci.SeccompSupport {
	return oci.SeccompSupport{SupportedFlags: SupportedFlags(), LibraryVersion: Version()}
}
