package tests

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/internal/testrootfs"
)

// A bind source that only host root can reach (a 0700 root-owned
// directory on its path, as containerd keeps a pod's /dev/shm, hostname
// and resolv.conf) is bound into a container whose root is an unprivileged
// host uid, as runc binds it: the runtime opens the source before the init
// enters the user namespace.
func TestBindSourceOnlyHostRootCanReach(t *testing.T) {
	testrootfs.RequireUserNS(t)
	e := newEnv(t)
	private := t.TempDir()
	if err := os.Chmod(private, 0o700); err != nil {
		t.Fatal(err)
	}
	shm := filepath.Join(private, "sandboxes", "id", "shm")
	if err := os.MkdirAll(shm, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shm, 0o1777); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(shm, "f"), []byte("in-shm"), 0o644); err != nil {
		t.Fatal(err)
	}
	hostname := filepath.Join(private, "sandboxes", "id", "hostname")
	if err := os.WriteFile(hostname, []byte("pod-host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got := kv(e.mustSh(func(s *specs.Spec) {
		userNS(s)
		s.Mounts = append(s.Mounts,
			specs.Mount{Destination: "/dev/shm", Type: "bind", Source: shm, Options: []string{"rbind", "nosuid", "nodev", "noexec"}},
			specs.Mount{Destination: "/etc/hostname", Type: "bind", Source: hostname, Options: []string{"rbind", "ro"}})
	}, `echo shm=$(cat /dev/shm/f); echo hostname=$(cat /etc/hostname); touch /dev/shm/w && echo write=ok; echo id=$(id -u)`))
	want := map[string]string{"shm": "in-shm", "hostname": "pod-host", "write": "ok", "id": "0"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(shm, "w"), &st); err != nil || st.Uid != 200000 {
		t.Errorf("the file container root made in the bound /dev/shm: uid %d (%v), want host uid 200000", st.Uid, err)
	}
}

// The runtime opens those sources in the container's mount namespace, so a
// source on a read-only host mount stays read-only: container root (with
// CAP_SYS_ADMIN in its user namespace) cannot remount it writable, because
// the kernel locked the flag when the namespace inherited the mount.
func TestBindSourceReadOnlyOnTheHostStaysLocked(t *testing.T) {
	testrootfs.RequireUserNS(t)
	e := newEnv(t)
	src := t.TempDir()
	if err := unix.Mount(src, src, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(src, unix.MNT_DETACH) })
	if err := unix.Mount("", src, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Fatal(err)
	}
	rw := t.TempDir()
	os.Chmod(rw, 0o755)
	r := e.sh(func(s *specs.Spec) {
		userNS(s)
		s.Process.Capabilities.Bounding = append(s.Process.Capabilities.Bounding, "CAP_SYS_ADMIN")
		s.Process.Capabilities.Effective = append(s.Process.Capabilities.Effective, "CAP_SYS_ADMIN")
		s.Process.Capabilities.Permitted = append(s.Process.Capabilities.Permitted, "CAP_SYS_ADMIN")
		s.Linux.Seccomp = nil
		s.Mounts = append(s.Mounts,
			specs.Mount{Destination: "/mnt", Type: "bind", Source: src, Options: []string{"bind"}},
			specs.Mount{Destination: "/tmp", Type: "bind", Source: rw, Options: []string{"bind"}})
	}, `mount -o remount,bind,ro /tmp; echo remount_rw_ro=$?; mount -o remount,bind,rw /mnt; echo remount=$?; touch /mnt/x 2>/dev/null && echo wrote=yes; true`)
	if r.code != 0 || !strings.Contains(r.stdout, "remount_rw_ro=0") {
		t.Fatalf("container root could not remount a writable bind read-only (no CAP_SYS_ADMIN in its namespace?): %v", r)
	}
	if strings.Contains(r.stdout, "wrote=yes") || strings.Contains(r.stdout, "remount=0") {
		t.Errorf("container root made a read-only host mount writable: %v", r)
	}
	if _, err := os.Stat(filepath.Join(src, "x")); err == nil {
		t.Errorf("the container wrote through a read-only host mount")
	}
}

// A bind source inside the rootfs is resolved at its turn, in the
// container's mount namespace: below an earlier mount of the config it
// binds that mount's content (runc mounts in order). It is resolved inside
// the rootfs: an image's symlink cannot point it at the host's files.
func TestBindSourceInsideTheRootfs(t *testing.T) {
	for _, tc := range []struct {
		name  string
		apply func(*specs.Spec)
	}{{"host user namespace", nil}, {"own user namespace", userNS}} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.apply != nil {
				testrootfs.RequireUserNS(t)
			}
			e := newEnv(t)
			vol := t.TempDir()
			os.Chmod(vol, 0o755)
			if err := os.MkdirAll(filepath.Join(vol, "x"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(vol, "x", "marker"), []byte("from-volume"), 0o644); err != nil {
				t.Fatal(err)
			}
			bundle := testrootfs.Bundle(t, nil)
			rootfs := filepath.Join(bundle, "rootfs")
			// Mount points made ahead: container root may not write the
			// rootfs, which host root owns.
			for _, d := range []string{"a/x", "etc", "b", "c", "d", "e"} {
				os.MkdirAll(filepath.Join(rootfs, d), 0o755)
			}
			os.WriteFile(filepath.Join(rootfs, "a/x/marker"), []byte("from-image"), 0o644)
			os.WriteFile(filepath.Join(rootfs, "etc/bulwark-marker"), []byte("image-etc"), 0o644)
			// Absolute, as the image means it: its own /etc.
			if err := os.Symlink("/etc", filepath.Join(rootfs, "link")); err != nil {
				t.Fatal(err)
			}
			s := testrootfs.DefaultSpec()
			if tc.apply != nil {
				tc.apply(s)
			}
			s.Mounts = append(s.Mounts,
				specs.Mount{Destination: "/a", Type: "bind", Source: vol, Options: []string{"rbind"}},
				specs.Mount{Destination: "/b", Type: "bind", Source: filepath.Join(rootfs, "a/x"), Options: []string{"rbind"}},
				specs.Mount{Destination: "/c", Type: "bind", Source: filepath.Join(rootfs, "link"), Options: []string{"rbind"}},
				specs.Mount{Destination: "/d", Type: "tmpfs", Source: "tmpfs"},
				specs.Mount{Destination: "/e", Type: "bind", Source: filepath.Join(rootfs, "d"), Options: []string{"rbind"}})
			s.Process.Args = []string{"sh", "-c", `echo b=$(cat /b/marker); echo c=$(cat /c/bulwark-marker 2>&1); echo c_host=$(ls /c/shadow 2>/dev/null | wc -l); echo in-d > /e/f; echo d=$(cat /d/f)`}
			testrootfs.WriteConfig(t, bundle, s)
			r := e.bw("run", "-b", bundle, e.id())
			got := kv(r.stdout)
			want := map[string]string{"b": "from-volume", "c": "image-etc", "c_host": "0", "d": "in-d"}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q: %v", k, got[k], v, r)
				}
			}
		})
	}
}

// Id-mapped mounts as runtime-spec 1.1 and runc ≥ 1.2 have them: mappings
// on a mount without "idmap" still id-map it; "idmap" and "ridmap" without
// mappings take the container's user namespace mapping (so files owned by
// host root show as container root, not nobody); and a mount's own
// mappings may have several ranges, also in a user-namespaced container.
func TestIdmappedMountsPerRuntimeSpec11(t *testing.T) {
	testrootfs.RequireUserNS(t)
	e := newEnv(t)
	// flat has no mount below it: in a user namespace the kernel refuses
	// a non-recursive bind of a directory with (locked) mounts below it.
	flat, tree := t.TempDir(), t.TempDir()
	for _, src := range []string{flat, tree} {
		os.Chmod(src, 0o755)
		for _, f := range []struct {
			name string
			uid  int
		}{{"root", 0}, {"u1000", 1000}} {
			p := filepath.Join(src, f.name)
			if err := os.WriteFile(p, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(p, f.uid, f.uid); err != nil {
				t.Fatal(err)
			}
		}
	}
	sub := filepath.Join(tree, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", sub, "tmpfs", 0, "mode=755"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(sub, unix.MNT_DETACH) })
	if err := os.WriteFile(filepath.Join(sub, "root"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	one := func(c, h uint32) specs.LinuxIDMapping {
		return specs.LinuxIDMapping{ContainerID: c, HostID: h, Size: 1}
	}
	stat := "stat -c %u:%g /mnt/root /mnt/u1000 /mnt/sub/root 2>&1 | tr '\\n' ' '"
	for _, tc := range []struct {
		name   string
		src    string
		mount  specs.Mount
		userns bool
		want   string
	}{
		{"mappings without idmap", flat, specs.Mount{Options: []string{"bind"},
			UIDMappings: []specs.LinuxIDMapping{one(0, 1234)}, GIDMappings: []specs.LinuxIDMapping{one(0, 1234)}}, false, "1234:1234 65534:65534"},
		{"idmap, implied mapping", flat, specs.Mount{Options: []string{"bind", "idmap"}}, true, "0:0 1000:1000"},
		{"ridmap, implied mapping, submount", tree, specs.Mount{Options: []string{"rbind", "ridmap"}}, true, "0:0 1000:1000 0:0"},
		{"idmap on rbind maps the top mount only", tree, specs.Mount{Options: []string{"rbind", "idmap"}}, true, "0:0 1000:1000 65534:65534"},
		{"multi-range mapping in a user namespace", flat, specs.Mount{Options: []string{"bind"},
			UIDMappings: []specs.LinuxIDMapping{one(0, 200000), one(1000, 200500)},
			GIDMappings: []specs.LinuxIDMapping{one(0, 200007), one(1000, 200600)}}, true, "0:7 500:600"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.mount
			m.Destination, m.Type, m.Source = "/mnt", "bind", tc.src
			r := e.sh(func(s *specs.Spec) {
				if tc.userns {
					userNS(s)
				}
				s.Mounts = append(s.Mounts, m)
			}, stat)
			if r.code != 0 && strings.Contains(r.stderr, "may not support idmapped mounts") {
				t.Skipf("filesystem under %s has no idmapped mounts: %s", tc.src, r.stderr)
			}
			if r.code != 0 || !strings.HasPrefix(strings.TrimSpace(r.stdout), tc.want) {
				t.Errorf("owners through %v: want %q first: %v", m, tc.want, r)
			}
		})
	}
}
