package tests

import (
	"fmt"
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

// An id-mapped bind whose source lies inside the rootfs of a container with
// a user namespace, as runc ≥ 1.2 has it: the init resolves the source at
// its turn, inside the rootfs (an image's symlink still cannot reach a host
// path), and the runtime, host root, id-maps the clone in the container's
// mount namespace, which the init in its user namespace may not do. Files
// show the owners the mapping gives them, where a plain bind shows nobody.
func TestIdmappedBindSourceInsideTheRootfsOfAUserNamespacedContainer(t *testing.T) {
	testrootfs.RequireUserNS(t)
	e := newEnv(t)
	vol := t.TempDir()
	os.Chmod(vol, 0o755)
	if err := os.MkdirAll(filepath.Join(vol, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	bundle := testrootfs.Bundle(t, nil)
	rootfs := filepath.Join(bundle, "rootfs")
	for _, d := range []string{"data", "etc", "vol", "m1", "m2", "m3", "m4", "m5"} {
		os.MkdirAll(filepath.Join(rootfs, d), 0o755)
	}
	owned := func(dir string) {
		for _, f := range []struct {
			name string
			uid  int
		}{{"root", 0}, {"u1000", 1000}} {
			p := filepath.Join(dir, f.name)
			if err := os.WriteFile(p, []byte(f.name), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(p, f.uid, f.uid); err != nil {
				t.Fatal(err)
			}
		}
	}
	owned(filepath.Join(rootfs, "data"))
	owned(filepath.Join(vol, "x"))
	os.WriteFile(filepath.Join(rootfs, "etc/bulwark-marker"), []byte("image-etc"), 0o644)
	// Absolute, as the image means it: its own /etc, never the host's.
	if err := os.Symlink("/etc", filepath.Join(rootfs, "link")); err != nil {
		t.Fatal(err)
	}
	// Climbs out of the rootfs if followed on the host.
	if err := os.Symlink("../../../../../../../../etc", filepath.Join(rootfs, "up")); err != nil {
		t.Fatal(err)
	}
	one := func(c, h uint32) specs.LinuxIDMapping {
		return specs.LinuxIDMapping{ContainerID: c, HostID: h, Size: 1}
	}
	s := testrootfs.DefaultSpec()
	userNS(s)
	s.Mounts = append(s.Mounts,
		// Implied mapping: the container's own.
		specs.Mount{Destination: "/m1", Type: "bind", Source: filepath.Join(rootfs, "data"), Options: []string{"bind", "idmap"}},
		// The mount's own mappings, without "idmap" (runtime-spec 1.1).
		specs.Mount{Destination: "/m2", Type: "bind", Source: filepath.Join(rootfs, "data"), Options: []string{"bind"},
			UIDMappings: []specs.LinuxIDMapping{one(0, 200000), one(1000, 200500)},
			GIDMappings: []specs.LinuxIDMapping{one(0, 200007), one(1000, 200600)}},
		// The image's symlinks, resolved inside the rootfs.
		specs.Mount{Destination: "/m3", Type: "bind", Source: filepath.Join(rootfs, "link"), Options: []string{"bind", "idmap"}},
		specs.Mount{Destination: "/m4", Type: "bind", Source: filepath.Join(rootfs, "up"), Options: []string{"bind", "idmap"}},
		// Below an earlier mount of the config: that mount's content.
		specs.Mount{Destination: "/vol", Type: "bind", Source: vol, Options: []string{"rbind"}},
		specs.Mount{Destination: "/m5", Type: "bind", Source: filepath.Join(rootfs, "vol/x"), Options: []string{"bind", "idmap"},
			UIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 65536}},
			GIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 65536}}})
	own := func(d string) string {
		return fmt.Sprintf(`echo %s=$(stat -c %%u:%%g /%s/root /%s/u1000 2>&1 | tr '\n' ,)`, d, d, d)
	}
	s.Process.Args = []string{"sh", "-c", strings.Join([]string{
		`echo plain=$(stat -c %u:%g /data/root)`,
		own("m1"), own("m2"), own("m5"),
		`echo m3=$(cat /m3/bulwark-marker 2>&1); echo m3_host=$(ls /m3/shadow 2>/dev/null | wc -l)`,
		`echo m4=$(cat /m4/bulwark-marker 2>&1); echo m4_host=$(ls /m4/shadow 2>/dev/null | wc -l)`,
		`echo m1_write=$(touch /m1/w 2>/dev/null && stat -c %u /m1/w)`,
	}, "; ")}
	testrootfs.WriteConfig(t, bundle, s)
	r := e.bw("run", "-b", bundle, e.id())
	if r.code != 0 && strings.Contains(r.stderr, "may not support idmapped mounts") {
		t.Skipf("filesystem under %s has no idmapped mounts: %s", rootfs, r.stderr)
	}
	got := kv(r.stdout)
	want := map[string]string{
		// Without the id-mapping host root's files are nobody's.
		"plain": "65534:65534",
		"m1":    "0:0,1000:1000,",
		"m2":    "0:7,500:600,",
		"m5":    "0:0,1000:1000,",
		"m3":    "image-etc", "m3_host": "0",
		"m4": "image-etc", "m4_host": "0",
		// Container root writes as container root through the mapping.
		"m1_write": "0",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q: %v", k, got[k], v, r)
		}
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(rootfs, "data", "w"), &st); err != nil || st.Uid != 0 {
		t.Errorf("the file container root made through the id-mapped bind: host uid %d (%v), want 0 (the mapping's)", st.Uid, err)
	}
}

// The runtime clones such a source in the container's mount namespace, so
// the clone keeps the flags the kernel locked there: on a rootfs the host
// mounted read-only, container root (CAP_SYS_ADMIN in its user namespace)
// cannot make the id-mapped bind writable.
func TestIdmappedBindSourceInsideTheRootfsKeepsTheHostsLockedFlags(t *testing.T) {
	testrootfs.RequireUserNS(t)
	e := newEnv(t)
	bundle := testrootfs.Bundle(t, nil)
	rootfs := filepath.Join(bundle, "rootfs")
	for _, d := range []string{"data", "m1"} {
		os.MkdirAll(filepath.Join(rootfs, d), 0o755)
	}
	if err := unix.Mount(rootfs, rootfs, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(rootfs, unix.MNT_DETACH) })
	if err := unix.Mount("", rootfs, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID, ""); err != nil {
		t.Fatal(err)
	}
	s := testrootfs.DefaultSpec()
	userNS(s)
	s.Process.Capabilities.Bounding = append(s.Process.Capabilities.Bounding, "CAP_SYS_ADMIN")
	s.Process.Capabilities.Effective = append(s.Process.Capabilities.Effective, "CAP_SYS_ADMIN")
	s.Process.Capabilities.Permitted = append(s.Process.Capabilities.Permitted, "CAP_SYS_ADMIN")
	s.Linux.Seccomp = nil
	s.Mounts = append(s.Mounts,
		specs.Mount{Destination: "/m1", Type: "bind", Source: filepath.Join(rootfs, "data"), Options: []string{"bind", "idmap"}},
		specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs"})
	s.Process.Args = []string{"sh", "-c", `mount -o remount,bind,ro /tmp; echo remount_tmp=$?; mount -o remount,bind,rw /m1; echo remount=$?; ` +
		`mount -o remount,bind,rw,suid /m1; echo remount_suid=$?; touch /m1/x 2>/dev/null && echo wrote=yes; echo owner=$(stat -c %u /m1); true`}
	testrootfs.WriteConfig(t, bundle, s)
	r := e.bw("run", "-b", bundle, e.id())
	if r.code != 0 && strings.Contains(r.stderr, "may not support idmapped mounts") {
		t.Skipf("filesystem under %s has no idmapped mounts: %s", rootfs, r.stderr)
	}
	got := kv(r.stdout)
	if r.code != 0 || got["remount_tmp"] != "0" || got["owner"] != "0" {
		t.Fatalf("container root could not remount its own tmpfs, or /m1 is not id-mapped (owner %q): %v", got["owner"], r)
	}
	if got["remount"] == "0" || got["remount_suid"] == "0" || got["wrote"] == "yes" {
		t.Errorf("container root cleared a flag the host locked on the id-mapped bind: %v", r)
	}
	if _, err := os.Stat(filepath.Join(rootfs, "data", "x")); err == nil {
		t.Errorf("the container wrote through a read-only host mount")
	}
}

// TestMountDestinationSpelledAsTheHostRootfsPath: a destination written as
// the host path of the rootfs (BUNDLE/rootfs/mnt/vol), as configs written
// for runc do (runc's own suite, "mount order"), is taken relative to the
// rootfs, as runc takes it. One that only climbs out lexically
// (BUNDLE/rootfs/../escape) is a path inside the container like any other:
// nothing appears next to the rootfs on the host.
func TestMountDestinationSpelledAsTheHostRootfsPath(t *testing.T) {
	e := newEnv(t)
	vol := t.TempDir()
	os.Chmod(vol, 0o755)
	if err := os.WriteFile(filepath.Join(vol, "marker"), []byte("from-volume"), 0o644); err != nil {
		t.Fatal(err)
	}
	bundle := testrootfs.Bundle(t, nil)
	rootfs := filepath.Join(bundle, "rootfs")
	os.MkdirAll(filepath.Join(rootfs, "mnt/vol"), 0o755)
	s := testrootfs.DefaultSpec()
	s.Mounts = append(s.Mounts,
		specs.Mount{Destination: filepath.Join(rootfs, "mnt/vol"), Type: "bind", Source: vol, Options: []string{"rbind"}},
		specs.Mount{Destination: filepath.Join(rootfs, "final"), Type: "bind", Source: filepath.Join(rootfs, "mnt"), Options: []string{"rbind"}},
		specs.Mount{Destination: rootfs + "/../escape", Type: "tmpfs", Source: "tmpfs"})
	s.Process.Args = []string{"sh", "-c", `echo vol=$(cat /mnt/vol/marker); echo final=$(cat /final/vol/marker); echo literal=$(ls -d ` + rootfs + `/mnt 2>/dev/null | wc -l)`}
	testrootfs.WriteConfig(t, bundle, s)
	r := e.bw("run", "-b", bundle, e.id())
	got := kv(r.stdout)
	want := map[string]string{"vol": "from-volume", "final": "from-volume", "literal": "0"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q: %v", k, got[k], v, r)
		}
	}
	if _, err := os.Lstat(filepath.Join(bundle, "escape")); err == nil {
		t.Errorf("a destination under the rootfs's parent made %s on the host", filepath.Join(bundle, "escape"))
	}
}
