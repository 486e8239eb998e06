package policy

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/bulwark-sec/bulwark/pkg/oci"
)

// WriteEtcFiles gives the container its own /etc/hostname, /etc/hosts and
// /etc/resolv.conf: files generated in dir (the container's private bundle
// directory) and bind-mounted read-only. Bind-mounting the host's own files
// instead would let a container with write access to them rewrite the
// host's name resolution, and shows it the host's names; with the default
// (no network) there is nothing to resolve, and with --net host the
// container gets a copy of the host's resolv.conf, never the file itself.
func WriteEtcFiles(s *specs.Spec, dir string) error {
	// Traversable, not listable: the init, as the container's mapped root,
	// opens these by name; nobody else learns which containers exist.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return fmt.Errorf("container /etc files: %w", err)
		}
		if err := os.Chmod(d, 0o711); err != nil {
			return fmt.Errorf("container /etc files: %w", err)
		}
	}
	hostname := s.Hostname
	if hostname == "" {
		hostname = "bulwark"
	}
	resolv := "# this container has no network but its loopback interface\n"
	if !oci.HasNamespace(s, specs.NetworkNamespace) {
		b, err := os.ReadFile("/etc/resolv.conf")
		if err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("container /etc/resolv.conf: reading the host's: %w", err)
		}
		resolv = string(b)
	}
	files := []struct{ name, content string }{
		{"hostname", hostname + "\n"},
		{"hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t" + hostname + "\n"},
		{"resolv.conf", resolv},
	}
	for _, f := range files {
		if hasMountAt(s, "/etc/"+f.name) {
			continue // the user's -v wins
		}
		src := filepath.Join(dir, f.name)
		if err := os.WriteFile(src, []byte(f.content), 0o644); err != nil {
			return fmt.Errorf("container /etc/%s: %w", f.name, err)
		}
		if err := WithMount(src, "/etc/"+f.name, true)(s); err != nil {
			return fmt.Errorf("container /etc/%s: %w", f.name, err)
		}
	}
	return nil
}

func hasMountAt(s *specs.Spec, dest string) bool {
	for _, m := range s.Mounts {
		if filepath.Clean(m.Destination) == dest {
			return true
		}
	}
	return false
}
