package policy

import (
	"path/filepath"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/bulwark-sec/bulwark/pkg/oci"
)

// EtcFile is one of the container's own /etc/hostname, /etc/hosts and
// /etc/resolv.conf: the runtime writes it on the host and binds it
// read-only (WithMount) at /etc/Name. Binding the host's own files instead
// would let a container with write access to them rewrite the host's name
// resolution, and shows it the host's names; with the default (no network)
// there is nothing to resolve, and with host networking the container gets
// a copy of the host's resolv.conf, never the file itself.
type EtcFile struct {
	Name    string // hostname, hosts or resolv.conf
	Content string
	// CopyOf, when set, is the host file whose content (none if it does not
	// exist) replaces Content.
	CopyOf string
}

// EtcFiles returns the container's /etc files, leaving out those the spec
// already mounts (the user's -v wins).
func EtcFiles(s *specs.Spec) []EtcFile {
	hostname := s.Hostname
	if hostname == "" {
		hostname = "bulwark"
	}
	resolv := EtcFile{Name: "resolv.conf", Content: "# this container has no network but its loopback interface\n"}
	if ns, ok := oci.Namespace(s, specs.NetworkNamespace); !ok || ns.Path != "" {
		resolv = EtcFile{Name: "resolv.conf", CopyOf: "/etc/resolv.conf"}
	}
	var out []EtcFile
	for _, f := range []EtcFile{
		{Name: "hostname", Content: hostname + "\n"},
		{Name: "hosts", Content: "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t" + hostname + "\n"},
		resolv,
	} {
		if !hasMountAt(s, "/etc/"+f.Name) {
			out = append(out, f)
		}
	}
	return out
}

func hasMountAt(s *specs.Spec, dest string) bool {
	for _, m := range s.Mounts {
		if filepath.Clean(m.Destination) == dest {
			return true
		}
	}
	return false
}
