package tests

import (
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/internal/testrootfs"
	"github.com/bulwark-sec/bulwark/pkg/oci"
)

// A rootfs the host made read-only, or a mount under it the host made
// nosuid, nodev or noexec, must stay so for container root in a user
// namespace even with CAP_SYS_ADMIN there: the kernel locks those flags on
// mounts that reach a mount namespace owned by a less privileged user
// namespace, and a runtime that hands the container a clone made in the
// host's table (an idmapped or nosuid/nodev rootfs tree) would hand it
// unlocked flags, so container root could make a read-only host directory
// writable. Each variant attacks with mount_setattr(2) clearing one flag at
// a time (so no other flag's lock can be what refuses it) and then writes.
// The flags the config itself asks for (root.readonly) are not covered: as
// in runc, container root with CAP_SYS_ADMIN may undo its own runtime's
// remounts.
func TestHostMountFlagsOfTheRootfsStayLockedInAUserNamespace(t *testing.T) {
	testrootfs.RequireUserNS(t)
	e := newEnv(t)
	for _, tc := range []struct {
		name string
		// rootfsOptions is the annotation oci.AnnotationRootfsOptions;
		// empty: the init binds the rootfs itself.
		rootfsOptions string
		// overlay: the rootfs is an engine's overlay, which an idmapped
		// rootfs remounts over idmapped layers: a new mount without the
		// host's locks, whose read-only must then hold on its superblock.
		overlay bool
	}{
		{"idmapped rootfs", "idmap", false},
		{"nosuid nodev rootfs tree", "nosuid,nodev", false},
		{"rootfs bound by the init", "", false},
		{"idmapped engine overlay", "idmap", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var merged, upper string
			if tc.overlay {
				merged, upper = engineOverlay(t)
			}
			bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
				userNS(s)
				if merged != "" {
					s.Root.Path = merged
				}
				s.Root.Readonly = false
				c := s.Process.Capabilities
				c.Bounding = append(c.Bounding, "CAP_SYS_ADMIN")
				c.Effective = append(c.Effective, "CAP_SYS_ADMIN")
				c.Permitted = append(c.Permitted, "CAP_SYS_ADMIN")
				// No linux.seccomp: nothing but the kernel's locks stands
				// between container root and mount_setattr.
				s.Linux.Seccomp = nil
				if tc.rootfsOptions != "" {
					if s.Annotations == nil {
						s.Annotations = map[string]string{}
					}
					s.Annotations[oci.AnnotationRootfsOptions] = tc.rootfsOptions
				}
				s.Process.Args = []string{"sh", "-c", `
echo rdonly=$(syscall mount_setattr / MOUNT_ATTR_RDONLY)
if echo pwned > /pwn/f 2>/dev/null; then echo wrote=yes; else echo wrote=no; fi
for f in NOSUID NODEV NOEXEC; do echo $f=$(syscall mount_setattr /sub MOUNT_ATTR_$f); done
`}
			})
			rootfs := filepath.Join(bundle, "rootfs")
			if merged != "" {
				rootfs = merged
			}
			pwn := filepath.Join(rootfs, "pwn")
			sub := filepath.Join(rootfs, "sub")
			for _, d := range []string{pwn, sub} {
				if err := os.Mkdir(d, 0o777); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(d, 0o777); err != nil {
					t.Fatal(err)
				}
			}
			// The host's own restrictions: a nosuid,nodev,noexec mount
			// under a read-only rootfs. An overlay is remounted afresh from
			// its layers, without the host's submounts: there only its
			// read-only is the host's.
			if tc.overlay {
				hostMount(t, "", rootfs, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, "")
			} else {
				subSrc := t.TempDir()
				hostMount(t, subSrc, sub, "", unix.MS_BIND, "")
				hostMount(t, "", sub, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
				hostMount(t, rootfs, rootfs, "", unix.MS_BIND|unix.MS_REC, "")
				hostMount(t, "", rootfs, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, "")
			}

			r := e.bw("run", "-b", bundle, e.id())
			if r.code != 0 {
				t.Fatalf("container: %v", r)
			}
			got := kv(r.stdout)
			for _, k := range []string{"rdonly", "NOSUID", "NODEV", "NOEXEC"} {
				if tc.overlay {
					// A new mount: its attributes are unlocked, and what
					// holds is the read-only superblock, checked below.
					break
				}
				if got[k] != "EPERM" {
					t.Errorf("container root cleared the host's %s on its rootfs: mount_setattr says %q, want EPERM (the kernel's lock)\n%v", k, got[k], r)
				}
			}
			if got["wrote"] != "no" {
				t.Errorf("container root wrote into the host's read-only rootfs (wrote=%q)", got["wrote"])
			}
			written := []string{filepath.Join(pwn, "f")}
			if upper != "" {
				written = append(written, filepath.Join(upper, "pwn", "f"))
			}
			for _, f := range written {
				if _, err := os.Lstat(f); err == nil {
					t.Errorf("%s exists on the host: the container wrote through a mount the host made read-only", f)
				}
			}
		})
	}
}
