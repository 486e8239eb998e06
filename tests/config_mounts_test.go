package tests

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/internal/testrootfs"
)

const erofs = "Read-only file system"

// hostMount mounts on the host for one test and undoes it at cleanup; the
// test's containers see it only through the propagation under test.
func hostMount(t *testing.T, source, target, fstype string, flags uintptr, data string) {
	t.Helper()
	if err := unix.Mount(source, target, fstype, flags, data); err != nil {
		t.Fatalf("host mount %s on %s: %v", fstype, target, err)
	}
	if flags&(unix.MS_SHARED|unix.MS_PRIVATE|unix.MS_SLAVE|unix.MS_REMOUNT) == 0 {
		t.Cleanup(func() {
			if err := unix.Unmount(target, unix.MNT_DETACH); err != nil {
				t.Errorf("cleanup: umount %s: %v", target, err)
			}
		})
	}
}

// sharedDir returns a new host directory that is a shared mount point, so
// that mounts made under it later propagate to its peers and slaves.
func sharedDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	hostMount(t, d, d, "", unix.MS_BIND, "")
	hostMount(t, "", d, "", unix.MS_SHARED, "")
	return d
}

func TestConfigMountsTakeEffectInside(t *testing.T) {
	e := newEnv(t)
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "hello"), []byte("from-host"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A submount in the source: rbind carries it in, bind does not.
	sub := filepath.Join(src, "sub")
	os.Mkdir(sub, 0o755)
	hostMount(t, "tmpfs", sub, "tmpfs", 0, "size=64k")
	os.WriteFile(filepath.Join(sub, "inner"), []byte("submount"), 0o644)

	for _, tc := range []struct {
		name   string
		mount  specs.Mount
		script string
		want   string // substring of stdout+stderr
	}{
		{"bind reads the host dir", specs.Mount{Destination: "/mnt", Type: "bind", Source: src, Options: []string{"bind"}},
			"cat /mnt/hello; echo; ls /mnt/sub | wc -l", "from-host\n0"},
		{"bind writes reach the host", specs.Mount{Destination: "/mnt", Type: "bind", Source: src, Options: []string{"bind", "rw"}},
			"echo written > /mnt/back && echo ok", "ok"},
		{"rbind carries submounts", specs.Mount{Destination: "/mnt", Type: "bind", Source: src, Options: []string{"rbind"}},
			"cat /mnt/sub/inner", "submount"},
		{"ro bind refuses writes", specs.Mount{Destination: "/mnt", Type: "bind", Source: src, Options: []string{"rbind", "ro"}},
			"touch /mnt/x", erofs},
		{"rro makes submounts read-only too", specs.Mount{Destination: "/mnt", Type: "bind", Source: src, Options: []string{"rbind", "rro"}},
			"touch /mnt/sub/x", erofs},
		{"tmpfs has its size and mode", specs.Mount{Destination: "/mnt", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m", "mode=1770"}},
			"stat -c mode=%a /mnt; stat -f -c bytes=%b*%S /mnt", "mode=1770\nbytes=256*4096"},
		{"proc shows this pid namespace", specs.Mount{Destination: "/proc", Type: "proc", Source: "proc"},
			"echo pid=$$; grep -c ' /proc proc ' /proc/mounts", "pid=1\n1"},
		{"sysfs ro refuses writes", specs.Mount{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			"grep ' /sys sysfs ro' /proc/mounts >/dev/null && echo sysfs-ro; echo 1 2>&1 > /sys/kernel/uevent_helper | grep -o 'Read-only file system'", "sysfs-ro\n" + erofs},
		{"mqueue holds message queues", specs.Mount{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			"grep -c ' /dev/mqueue mqueue ' /proc/mounts; cat /proc/sys/fs/mqueue/queues_max >/dev/null && echo ok", "1\nok"},
		{"devpts gives ptys", specs.Mount{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			"grep -c ' /dev/pts devpts ' /proc/mounts; readlink /dev/ptmx; stat -c %a /dev/pts/ptmx", "1\npts/ptmx\n666"},
		{"cgroup mount is read-only", specs.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro"}},
			"grep -q ' /sys/fs/cgroup' /proc/mounts && echo mounted; for d in /sys/fs/cgroup /sys/fs/cgroup/*/; do mkdir ${d}x 2>&1; done | grep -vc 'Read-only'", "mounted\n0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.sh(func(s *specs.Spec) {
				var ms []specs.Mount
				for _, m := range s.Mounts {
					if m.Destination != tc.mount.Destination {
						ms = append(ms, m)
					}
				}
				s.Mounts = append(ms, tc.mount)
				// Mounts are applied in order: keep /sys/fs/cgroup after /sys.
				sortMountsByDepth(s.Mounts)
			}, tc.script)
			if !strings.Contains(r.stdout+r.stderr, tc.want) {
				t.Fatalf("want %q in output: %v", tc.want, r)
			}
		})
	}
	if b, err := os.ReadFile(filepath.Join(src, "back")); err != nil || string(b) != "written\n" {
		t.Errorf("write through the bind mount did not reach the host: %q %v", b, err)
	}
}

// sortMountsByDepth is a stable sort by path depth, enough to keep parents
// before children for the mounts these tests build.
func sortMountsByDepth(ms []specs.Mount) {
	depth := func(m specs.Mount) int { return strings.Count(filepath.Clean(m.Destination), "/") }
	for i := 1; i < len(ms); i++ {
		for j := i; j > 0 && depth(ms[j]) < depth(ms[j-1]); j-- {
			ms[j], ms[j-1] = ms[j-1], ms[j]
		}
	}
}

func TestConfigRootReadonlyDecidesWrites(t *testing.T) {
	e := newEnv(t)
	for _, ro := range []bool{true, false} {
		r := e.sh(func(s *specs.Spec) { s.Root.Readonly = ro }, "touch /newfile && echo wrote")
		wrote := strings.Contains(r.stdout, "wrote")
		if ro && (wrote || !strings.Contains(r.stderr, erofs)) {
			t.Errorf("root.readonly=true: %v", r)
		}
		if !ro && !wrote {
			t.Errorf("root.readonly=false: %v", r)
		}
	}
}

func TestConfigRelativeBindSourceIsResolvedAgainstTheBundle(t *testing.T) {
	e := newEnv(t)
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
		s.Process.Args = []string{"cat", "/mnt/data/f"}
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt/data", Type: "bind", Source: "data", Options: []string{"rbind", "ro"}})
	})
	if err := os.MkdirAll(filepath.Join(bundle, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(bundle, "data", "f"), []byte("bundle-data"), 0o644)
	os.MkdirAll(filepath.Join(bundle, "rootfs", "mnt", "data"), 0o755)
	// Run from elsewhere: the source must not be resolved against our cwd.
	r := e.bw("run", "-b", bundle, e.id())
	if r.code != 0 || r.stdout != "bundle-data" {
		t.Fatalf("relative bind source: %v", r)
	}
}

func TestConfigMountPropagationCarriesLaterHostMountsIn(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name   string
		spec   func(s *specs.Spec, shared string)
		target func(bundle, shared string) string // host dir to mount on later
		inside string
		seen   bool
	}{
		{"mount rslave sees host mounts",
			func(s *specs.Spec, sh string) {
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt", Type: "bind", Source: sh, Options: []string{"rbind", "rslave"}})
			},
			func(_, sh string) string { return filepath.Join(sh, "sub") }, "/mnt/sub/marker", true},
		{"mount rprivate does not",
			func(s *specs.Spec, sh string) {
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt", Type: "bind", Source: sh, Options: []string{"rbind", "rprivate"}})
			},
			func(_, sh string) string { return filepath.Join(sh, "sub") }, "/mnt/sub/marker", false},
		{"rootfsPropagation rslave sees host mounts in the rootfs",
			func(s *specs.Spec, _ string) { s.Linux.RootfsPropagation = "rslave" },
			func(b, _ string) string { return filepath.Join(b, "rootfs", "mnt") }, "/mnt/marker", true},
		{"rootfsPropagation rprivate does not",
			func(s *specs.Spec, _ string) { s.Linux.RootfsPropagation = "rprivate" },
			func(b, _ string) string { return filepath.Join(b, "rootfs", "mnt") }, "/mnt/marker", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			shared := sharedDir(t)
			os.Mkdir(filepath.Join(shared, "sub"), 0o755)
			bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
				s.Process.Args = []string{"sleep", "100"}
				tc.spec(s, shared)
			})
			// The rootfs cases need the bundle itself on a shared mount.
			hostMount(t, bundle, bundle, "", unix.MS_BIND, "")
			hostMount(t, "", bundle, "", unix.MS_SHARED, "")
			id := e.id()
			e.mustOK("run", "-d", "-b", bundle, id)
			tgt := tc.target(bundle, shared)
			hostMount(t, "tmpfs", tgt, "tmpfs", 0, "size=64k")
			if err := os.WriteFile(filepath.Join(tgt, "marker"), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			r := e.bw("exec", id, "cat", tc.inside)
			if seen := r.code == 0 && r.stdout == "x"; seen != tc.seen {
				t.Fatalf("host mount made after start seen inside: %v, want %v: %v", seen, tc.seen, r)
			}
			e.mustOK("delete", "--force", id)
		})
	}
}

func TestConfigMountPropagationFlagsShowInMountinfo(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct{ opt, want string }{
		{"shared", "shared:"}, {"private", ""},
	} {
		out := e.mustSh(func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt", Type: "tmpfs", Source: "tmpfs", Options: []string{tc.opt}})
		}, "grep ' /mnt ' /proc/self/mountinfo")
		pre, _, _ := strings.Cut(out, " - ")
		has := strings.Contains(pre, "shared:")
		if has != (tc.want != "") {
			t.Errorf("tmpfs with %q: mountinfo %q", tc.opt, out)
		}
	}
}

func TestConfigIdmappedBindShiftsOwnership(t *testing.T) {
	e := newEnv(t)
	src := t.TempDir()
	os.Chmod(src, 0o755)
	if err := os.WriteFile(filepath.Join(src, "f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// Probe the host: idmapped mounts need kernel and filesystem support.
	tree, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		t.Skipf("open_tree unavailable: %v", err)
	}
	unix.Close(tree)
	r := e.sh(func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt", Type: "bind", Source: src, Options: []string{"bind", "idmap"},
			UIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}},
			GIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}}})
	}, "stat -c %u:%g /mnt/f")
	if r.code != 0 && strings.Contains(r.stderr, "may not support idmapped mounts") {
		t.Skipf("filesystem under %s has no idmapped mounts: %s", src, r.stderr)
	}
	if strings.TrimSpace(r.stdout) != "1000:1000" {
		t.Fatalf("file owned 0:0 on the host seen through an idmapped mount 0->1000: %v", r)
	}
	var st syscall.Stat_t
	syscall.Stat(filepath.Join(src, "f"), &st)
	if st.Uid != 0 {
		t.Fatalf("host ownership changed: %d", st.Uid)
	}
}

func TestConfigMaskedAndReadonlyPaths(t *testing.T) {
	e := newEnv(t)
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
		s.Root.Readonly = false
		s.Linux.MaskedPaths = append(s.Linux.MaskedPaths, "/etc/secret", "/opt/secretdir")
		s.Linux.ReadonlyPaths = append(s.Linux.ReadonlyPaths, "/opt/rodir")
		s.Process.Args = []string{"sh", "-c", `
echo secret=$(cat /etc/secret | wc -c)
echo secretdir=$(ls -A /opt/secretdir | wc -l)
echo rodir=$(cat /opt/rodir/f)
touch /opt/rodir/new 2>&1 | grep -c 'Read-only'
echo 1 2>/dev/null > /proc/sys/kernel/domainname; echo procsys=$?
echo firmware=$(ls -A /sys/firmware | wc -l)
touch /opt/rw && echo rootrw=ok`}
	})
	rootfs := filepath.Join(bundle, "rootfs")
	for _, d := range []string{"opt/secretdir", "opt/rodir"} {
		os.MkdirAll(filepath.Join(rootfs, d), 0o755)
	}
	os.WriteFile(filepath.Join(rootfs, "etc/secret"), []byte("password"), 0o600)
	os.WriteFile(filepath.Join(rootfs, "opt/secretdir/key"), []byte("k"), 0o600)
	os.WriteFile(filepath.Join(rootfs, "opt/rodir/f"), []byte("readable"), 0o644)
	r := e.bw("run", "-b", bundle, e.id())
	got := kv(r.stdout)
	want := map[string]string{"secret": "0", "secretdir": "0", "rodir": "readable", "procsys": "1", "firmware": "0", "rootrw": "ok"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if !strings.Contains(r.stdout, "\n1\n") {
		t.Errorf("write under a readonlyPath did not fail with EROFS: %v", r)
	}
	if t.Failed() {
		t.Log(r)
	}
}

// TestConfigMaskedPathListedTwiceIsMaskedOnce: a masked path the config
// lists twice (or once more with a trailing slash) gets one mount, as in
// runc, not a stack of two.
func TestConfigMaskedPathListedTwiceIsMaskedOnce(t *testing.T) {
	e := newEnv(t)
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
		s.Linux.MaskedPaths = append(s.Linux.MaskedPaths, "/opt/masked", "/opt/masked/", "/etc/group", "/etc/group")
		s.Process.Args = []string{"sh", "-c", "echo dir=$(grep -c ' /opt/masked ' /proc/self/mountinfo); echo file=$(grep -c ' /etc/group ' /proc/self/mountinfo); echo empty=$(ls -A /opt/masked | wc -l)"}
	})
	if err := os.MkdirAll(filepath.Join(bundle, "rootfs/opt/masked"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(bundle, "rootfs/opt/masked/f"), []byte("x"), 0o644)
	r := e.bw("run", "-b", bundle, e.id())
	got := kv(r.stdout)
	for k, v := range map[string]string{"dir": "1", "file": "1", "empty": "0"} {
		if got[k] != v {
			t.Errorf("%s = %q, want %q (%v)", k, got[k], v, r)
		}
	}
}

// TestConfigDefaultDevicesHaveTheirNumbers checks the nodes every container
// gets, whatever the config says.
func TestConfigDefaultDevicesHaveTheirNumbers(t *testing.T) {
	e := newEnv(t)
	out := e.mustSh(nil, "for d in null zero full random urandom tty; do stat -c '%n=%t:%T:%a' /dev/$d; done; echo ptmx=$(readlink /dev/ptmx); echo fd=$(readlink /dev/fd)")
	got := kv(out)
	for dev, want := range map[string]string{
		"/dev/null": "1:3:666", "/dev/zero": "1:5:666", "/dev/full": "1:7:666",
		"/dev/random": "1:8:666", "/dev/urandom": "1:9:666", "/dev/tty": "5:0:666",
		"ptmx": "pts/ptmx", "fd": "/proc/self/fd",
	} {
		if got[dev] != want {
			t.Errorf("%s = %q, want %q", dev, got[dev], want)
		}
	}
}

func TestConfigSpecDeviceIsCreatedAndUsable(t *testing.T) {
	e := newEnv(t)
	mode := os.FileMode(0o640)
	uid, gid := uint32(0), uint32(0)
	r := e.sh(func(s *specs.Spec) {
		s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/full2", Type: "c", Major: 1, Minor: 7, FileMode: &mode, UID: &uid, GID: &gid}}
	}, "stat -c %t:%T:%a /dev/full2; echo x > /dev/full2")
	if !strings.HasPrefix(r.stdout, "1:7:640") || !strings.Contains(r.stderr, "No space left on device") {
		t.Fatalf("/dev/full2 (c 1 7): %v", r)
	}
}

func TestConfigDevicesCgroupDeniesUnlistedDevices(t *testing.T) {
	testrootfs.RequireCgroupV1Controller(t, "devices")
	e := newEnv(t)
	maj, min := int64(8), int64(0)
	for _, tc := range []struct {
		name  string
		rules []specs.LinuxDeviceCgroup
		want  string
	}{
		// Without any rule, even creating the node is refused ("m").
		{"mknod refused", nil, "mknod=Operation not permitted"},
		// Allowed to create it but not to open it: the open is refused.
		{"open refused", []specs.LinuxDeviceCgroup{{Allow: true, Type: "b", Major: &maj, Minor: &min, Access: "m"}}, "mknod=ok open=Operation not permitted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.sh(func(s *specs.Spec) {
				for _, set := range []*[]string{&s.Process.Capabilities.Bounding, &s.Process.Capabilities.Effective, &s.Process.Capabilities.Permitted} {
					*set = append(*set, "CAP_MKNOD")
				}
				s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, tc.rules...)
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs"})
			}, `if m=$(mknod /tmp/sda b 8 0 2>&1); then echo -n "mknod=ok "; o=$(head -c1 /tmp/sda 2>&1 >/dev/null) && echo open=ok || echo "open=${o##*: }"; else echo "mknod=${m##*: }"; fi`)
			if strings.TrimSpace(r.stdout) != tc.want {
				t.Fatalf("want %q: %v", tc.want, r)
			}
		})
	}
}

// A node listed in linux.devices but denied in linux.resources.devices
// stays denied: the resources rules have the last word, as in runc.
func TestConfigResourcesDeviceDenyOverridesLinuxDevices(t *testing.T) {
	testrootfs.RequireCgroupV1Controller(t, "devices")
	e := newEnv(t)
	maj, min := int64(1), int64(11)
	r := e.sh(func(s *specs.Spec) {
		s.Linux.Devices = append(s.Linux.Devices, specs.LinuxDevice{Path: "/dev/kmsg", Type: "c", Major: 1, Minor: 11})
		s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, specs.LinuxDeviceCgroup{Allow: false, Type: "c", Major: &maj, Minor: &min, Access: "rwm"})
	}, `test -c /dev/kmsg || { echo no-node; exit 0; }; if o=$(echo bulwark-device-order-test 2>&1 >/dev/kmsg); then echo write=ok; else echo "write=${o##*: }"; fi`)
	if strings.TrimSpace(r.stdout) != "write=Operation not permitted" {
		t.Fatalf("writing /dev/kmsg denied by linux.resources.devices: want EPERM: %v", r)
	}
}

// A node listed in linux.devices and denied by linux.resources.devices (the
// OCI validation suite's linux_devices config: resources deny everything)
// is still made, as runc makes the nodes before it writes the device rules;
// the rules then deny its use. The rules used to be written while the init
// was making its nodes, so mknod raced them and failed about every other
// run (the host has no such node to bind instead): five runs in a row.
func TestConfigDeniedDeviceNodeIsStillMade(t *testing.T) {
	testrootfs.RequireCgroupV1Controller(t, "devices")
	e := newEnv(t)
	mode := os.FileMode(0o660)
	for i := range 5 {
		r := e.sh(func(s *specs.Spec) {
			s.Linux.Devices = append(s.Linux.Devices, specs.LinuxDevice{Path: "/dev/bwtest1", Type: "c", Major: 10, Minor: 666, FileMode: &mode})
			s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, specs.LinuxDeviceCgroup{Allow: false, Access: "rwm"})
		}, `stat -c %t:%T:%a /dev/bwtest1; cat /dev/bwtest1 2>&1 | grep -o "not permitted"`)
		if r.code != 0 || strings.TrimSpace(r.stdout) != "a:29a:660\nnot permitted" {
			t.Fatalf("run %d: a denied node in linux.devices: want it made (a:29a:660) and its use denied: %v", i, r)
		}
	}
}

// A device path that already holds a node (here a host node bind-mounted
// in) is left as it is: its mode and owner belong to the host.
func TestConfigExistingDeviceNodeKeepsItsModeAndOwner(t *testing.T) {
	e := newEnv(t)
	host := filepath.Join(t.TempDir(), "full")
	if err := unix.Mknod(host, unix.S_IFCHR|0o600, int(unix.Mkdev(1, 7))); err != nil {
		t.Skipf("cannot mknod on the host test dir: %v", err)
	}
	if err := os.Chown(host, 4242, 4343); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(host, 0o640); err != nil {
		t.Fatal(err)
	}
	mode := os.FileMode(0o666)
	uid, gid := uint32(65534), uint32(65534)
	r := e.sh(func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/dev/full2", Type: "bind", Source: host, Options: []string{"bind"}})
		s.Linux.Devices = append(s.Linux.Devices, specs.LinuxDevice{Path: "/dev/full2", Type: "c", Major: 1, Minor: 7, FileMode: &mode, UID: &uid, GID: &gid})
	}, "stat -c %t:%T:%a:%u:%g /dev/full2")
	if r.code != 0 {
		t.Fatalf("run with a bind-mounted node in linux.devices: %v", r)
	}
	var st unix.Stat_t
	if err := unix.Stat(host, &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&0o7777 != 0o640 || st.Uid != 4242 || st.Gid != 4343 {
		t.Fatalf("host node changed by create: mode %#o owner %d:%d, want 0640 4242:4343 (inside: %s)", st.Mode&0o7777, st.Uid, st.Gid, r.stdout)
	}
}

// A FIFO in linux.devices is created but has no place in the devices cgroup
// (runtime-tools linux_devices).
func TestFifoDeviceIsCreated(t *testing.T) {
	e := newEnv(t)
	out := e.mustSh(func(s *specs.Spec) {
		s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/test-fifo", Type: "p", FileMode: ptrMode(0o644)}}
	}, "test -p /dev/test-fifo && echo fifo")
	if out != "fifo" {
		t.Fatalf("container output %q, want \"fifo\"", out)
	}
}

func ptrMode(m os.FileMode) *os.FileMode { return &m }

// TestReadonlyRootfsKeepsItsNosuidNodev: a rootfs the caller bind-mounted
// nosuid,nodev stays nosuid,nodev when root.readonly remounts it read-only
// (a remount clears the per-mount flags it is not given), as in runc.
func TestReadonlyRootfsKeepsItsNosuidNodev(t *testing.T) {
	e := newEnv(t)
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
		s.Root.Readonly = true
		s.Process.Args = []string{"awk", `$5 == "/" {print "," $6 ","}`, "/proc/self/mountinfo"}
	})
	rootfs := filepath.Join(bundle, "rootfs")
	if err := unix.Mount(rootfs, rootfs, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(rootfs, unix.MNT_DETACH) })
	if err := unix.Mount("", rootfs, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		t.Fatal(err)
	}
	r := e.bw("run", "-b", bundle, e.id())
	for _, want := range []string{",ro,", ",nosuid,", ",nodev,"} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("the container's / has flags %q, want %s among them (%v)", strings.TrimSpace(r.stdout), want, r)
		}
	}
}

// TestConfigMaskedDirectoriesShareOneReadOnlyTmpfs: every masked directory
// shows the same empty tmpfs (one st_dev, as runc 1.5 has it, and one
// kernel mount instead of one per directory), read-only, nosuid, nodev and
// noexec wherever it appears, in a container with or without a user
// namespace of its own.
func TestConfigMaskedDirectoriesShareOneReadOnlyTmpfs(t *testing.T) {
	for _, tc := range []struct {
		name  string
		apply func(*specs.Spec)
	}{{"host user namespace", nil}, {"own user namespace", userNS}} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.apply != nil {
				testrootfs.RequireUserNS(t)
			}
			e := newEnv(t)
			bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
				if tc.apply != nil {
					tc.apply(s)
				}
				s.Linux.MaskedPaths = append(s.Linux.MaskedPaths, "/m1", "/m2", "/m3")
				s.Process.Args = []string{"sh", "-c", `set -- $(stat -c %d /m1 /m2 /m3); echo same=$([ "$1" = "$2" ] && [ "$2" = "$3" ] && echo yes)
for d in m1 m2 m3; do echo opts_$d=$(awk -v d=/$d '$5 == d {print $6}' /proc/self/mountinfo); echo empty_$d=$(ls -A /$d | wc -l); done
touch /m2/f 2>/dev/null; echo write=$?`}
			})
			for _, d := range []string{"m1", "m2", "m3"} {
				if err := os.MkdirAll(filepath.Join(bundle, "rootfs", d), 0o755); err != nil {
					t.Fatal(err)
				}
				os.WriteFile(filepath.Join(bundle, "rootfs", d, "secret"), []byte("x"), 0o644)
			}
			r := e.bw("run", "-b", bundle, e.id())
			got := kv(r.stdout)
			want := map[string]string{"same": "yes", "write": "1"}
			for _, d := range []string{"m1", "m2", "m3"} {
				want["empty_"+d] = "0"
				for _, o := range []string{"ro", "nosuid", "nodev", "noexec"} {
					if !slices.Contains(strings.Split(got["opts_"+d], ","), o) {
						t.Errorf("/%s is mounted %q, without %s: %v", d, got["opts_"+d], o, r)
					}
				}
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q: %v", k, got[k], v, r)
				}
			}
		})
	}
}
