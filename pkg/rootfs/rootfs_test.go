package rootfs

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func procMount() specs.Mount {
	return specs.Mount{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}}
}

// stdMounts is what `runc spec` generates, which is what most configs carry.
func stdMounts() []specs.Mount {
	return []specs.Mount{
		procMount(),
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
	}
}

func baseSpec(mounts ...specs.Mount) *specs.Spec {
	return &specs.Spec{
		Root:   &specs.Root{Path: "rootfs"},
		Mounts: append(stdMounts(), mounts...),
		Linux:  &specs.Linux{},
	}
}

func fileMode(m os.FileMode) *os.FileMode { return &m }
func u32(v uint32) *uint32                { return &v }

// runBusybox proves the pivoted tree is a usable root: the shell and its
// /dev/null redirection work.
func runBusybox(c *checker) {
	out, err := exec.Command("/bin/sh", "-c", "echo ok >/dev/null && echo hello").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "hello" {
		c.errorf("/bin/sh in the container: %v %q", err, out)
	}
}

var scenarios = []scenario{
	{
		name: "proc-sys-dev",
		spec: func(e *testEnv) *specs.Spec {
			s := baseSpec()
			s.Linux.Devices = []specs.LinuxDevice{
				{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229, FileMode: fileMode(0o600), UID: u32(1), GID: u32(2)},
				{Path: "/dev/fifo0", Type: "p", FileMode: fileMode(0o640)},
			}
			return s
		},
		check: func(c *checker, e *testEnv) {
			c.wantFSType("/proc", "proc")
			c.wantOpt("/proc", "nosuid")
			if _, err := os.Stat("/proc/self/status"); err != nil {
				c.errorf("procfs unusable: %v", err)
			}
			c.wantFSType("/sys", "sysfs")
			c.wantOpt("/sys", "ro")
			c.wantWriteErr("/sys/kernel/uevent_helper", unix.EROFS)
			c.wantFSType("/dev", "tmpfs")
			c.wantFSType("/dev/pts", "devpts")
			c.wantFSType("/dev/shm", "tmpfs")
			c.wantFSType("/dev/mqueue", "mqueue")
			for _, d := range DefaultDevices() {
				c.wantDevice(d.Path, unix.S_IFCHR, uint32(d.Major), uint32(d.Minor), 0o666)
			}
			c.wantDevice("/dev/fuse", unix.S_IFCHR, 10, 229, 0o600)
			var st unix.Stat_t
			if err := unix.Stat("/dev/fuse", &st); err != nil || st.Uid != 1 || st.Gid != 2 {
				c.errorf("/dev/fuse owner: %d:%d (%v), want 1:2", st.Uid, st.Gid, err)
			}
			if err := unix.Stat("/dev/fifo0", &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO || st.Mode&0o777 != 0o640 {
				c.errorf("/dev/fifo0: mode %#o (%v), want fifo 0640", st.Mode, err)
			}
			c.wantSymlink("/dev/ptmx", "pts/ptmx")
			c.wantSymlink("/dev/fd", "/proc/self/fd")
			c.wantSymlink("/dev/stdin", "/proc/self/fd/0")
			c.wantSymlink("/dev/stdout", "/proc/self/fd/1")
			c.wantSymlink("/dev/stderr", "/proc/self/fd/2")
			if _, err := os.Stat("/proc/kcore"); err == nil {
				c.wantSymlink("/dev/core", "/proc/kcore")
			}
			// A pty from the container's own devpts instance through the symlink.
			ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
			if err != nil {
				c.errorf("open /dev/ptmx: %v", err)
			} else {
				n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
				if err != nil || n != 0 {
					c.errorf("first pty of a new devpts instance: %d (%v), want 0", n, err)
				}
				ptmx.Close()
			}
			f, err := os.Open("/dev/zero")
			if err == nil {
				buf := []byte{1, 1, 1}
				if _, err := f.Read(buf); err != nil || buf[0] != 0 {
					c.errorf("/dev/zero read %v (%v)", buf, err)
				}
				f.Close()
			} else {
				c.errorf("open /dev/zero: %v", err)
			}
			runBusybox(c)
		},
	},
	{
		name: "tmpfs-size-mode",
		spec: func(e *testEnv) *specs.Spec {
			return baseSpec(
				specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=2m", "mode=1777", "nosuid"}},
				specs.Mount{Destination: "/run/ro", Type: "tmpfs", Source: "tmpfs", Options: []string{"ro", "size=1m"}},
			)
		},
		check: func(c *checker, e *testEnv) {
			c.wantFSType("/tmp", "tmpfs")
			var sfs unix.Statfs_t
			if err := unix.Statfs("/tmp", &sfs); err != nil {
				c.errorf("statfs /tmp: %v", err)
			} else if got := uint64(sfs.Blocks) * uint64(sfs.Bsize); got != 2<<20 {
				c.errorf("/tmp size %d bytes, want %d", got, 2<<20)
			}
			var st unix.Stat_t
			if err := unix.Stat("/tmp", &st); err != nil || st.Mode&0o7777 != 0o1777 {
				c.errorf("/tmp mode %#o (%v), want 01777", st.Mode&0o7777, err)
			}
			c.wantWriteOK("/tmp")
			c.wantFSType("/run/ro", "tmpfs")
			c.wantWriteErr("/run/ro", unix.EROFS)
		},
	},
	{
		name: "bind-ro-rbind-recursive-attrs",
		hostSetup: func(e *testEnv) error {
			if err := os.MkdirAll(e.path("src/sub"), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(e.path("src/data"), []byte("payload"), 0o644); err != nil {
				return err
			}
			return os.WriteFile(e.path("hostfile"), []byte("file-payload"), 0o644)
		},
		// A submount in the source, so rbind and bind differ visibly.
		childSetup: func(e *testEnv) error {
			return unix.Mount("tmpfs", e.path("src/sub"), "tmpfs", 0, "size=1m")
		},
		spec: func(e *testEnv) *specs.Spec {
			return baseSpec(
				specs.Mount{Destination: "/mnt/ro", Type: "bind", Source: e.path("src"), Options: []string{"bind", "ro"}},
				specs.Mount{Destination: "/mnt/rbind", Source: e.path("src"), Options: []string{"rbind"}},
				specs.Mount{Destination: "/mnt/rro", Type: "bind", Source: e.path("src"), Options: []string{"rbind", "rro", "rnosuid"}},
				specs.Mount{Destination: "/etc/hostfile", Type: "bind", Source: e.path("hostfile"), Options: []string{"bind", "ro", "nosuid", "nodev"}},
			)
		},
		check: func(c *checker, e *testEnv) {
			if b, err := os.ReadFile("/mnt/ro/data"); err != nil || string(b) != "payload" {
				c.errorf("/mnt/ro/data: %q %v", b, err)
			}
			c.wantOpt("/mnt/ro", "ro")
			c.wantWriteErr("/mnt/ro", unix.EROFS)
			c.wantWriteErr("/mnt/ro/data", unix.EROFS)
			c.wantNotMount("/mnt/ro/sub") // plain bind: submount not carried
			c.wantFSType("/mnt/rbind/sub", "tmpfs")
			c.wantWriteOK("/mnt/rbind")
			c.wantWriteErr("/mnt/rro/sub", unix.EROFS) // rro reaches the submount
			c.wantOpt("/mnt/rro/sub", "nosuid")
			if b, err := os.ReadFile("/etc/hostfile"); err != nil || string(b) != "file-payload" {
				c.errorf("/etc/hostfile: %q %v", b, err)
			}
			c.wantOpt("/etc/hostfile", "ro")
			c.wantOpt("/etc/hostfile", "nodev")
			c.wantWriteErr("/etc/hostfile", unix.EROFS)
		},
	},
	{
		name: "propagation",
		hostSetup: func(e *testEnv) error {
			for _, d := range []string{"a", "b", "c"} {
				if err := os.MkdirAll(e.path(d), 0o755); err != nil {
					return err
				}
			}
			return nil
		},
		spec: func(e *testEnv) *specs.Spec {
			s := baseSpec(
				specs.Mount{Destination: "/mnt/shared", Type: "bind", Source: e.path("a"), Options: []string{"bind", "rshared"}},
				specs.Mount{Destination: "/mnt/unbindable", Type: "bind", Source: e.path("b"), Options: []string{"bind", "unbindable"}},
				specs.Mount{Destination: "/mnt/private", Type: "bind", Source: e.path("c"), Options: []string{"bind", "private"}},
			)
			s.Linux.RootfsPropagation = "rprivate"
			return s
		},
		check: func(c *checker, e *testEnv) {
			if m := topMount("/mnt/shared"); m == nil || !strings.Contains(m.Optional, "shared:") {
				c.errorf("/mnt/shared not shared: %+v", m)
			}
			if m := topMount("/mnt/unbindable"); m == nil || !strings.Contains(m.Optional, "unbindable") {
				c.errorf("/mnt/unbindable not unbindable: %+v", m)
			}
			if m := topMount("/mnt/private"); m == nil || m.Optional != "" {
				c.errorf("/mnt/private has propagation %+v, want private", m)
			}
			if err := unix.Mount("/mnt/unbindable", "/mnt/private", "", unix.MS_BIND, ""); err == nil {
				c.errorf("binding an unbindable mount succeeded")
			}
		},
	},
	{
		name: "masked-readonly-root",
		spec: func(e *testEnv) *specs.Spec {
			s := baseSpec()
			s.Root.Readonly = true
			s.Linux.MaskedPaths = []string{"/proc/kcore", "/proc/keys", "/sys/firmware", "/proc/does-not-exist"}
			s.Linux.ReadonlyPaths = []string{"/proc/sys", "/proc/fs", "/proc/nope"}
			return s
		},
		check: func(c *checker, e *testEnv) {
			c.wantEmpty("/proc/keys")
			if _, err := os.Stat("/proc/kcore"); err == nil {
				c.wantEmpty("/proc/kcore")
			}
			c.wantEmptyDir("/sys/firmware")
			c.wantFSType("/sys/firmware", "tmpfs")
			c.wantOpt("/sys/firmware", "ro")
			c.wantFSType("/proc/sys", "proc")
			c.wantOpt("/proc/sys", "ro")
			c.wantWriteErr("/proc/sys/kernel/hostname", unix.EROFS)
			c.wantOpt("/proc/fs", "ro")
			c.wantOpt("/", "ro")
			c.wantWriteErr("/", unix.EROFS)
			c.wantWriteErr("/etc", unix.EROFS)
			c.wantWriteOK("/dev/shm") // a mount on a read-only root stays writable
			runBusybox(c)
		},
	},
	{
		name:    "no-pivot",
		noPivot: true,
		spec: func(e *testEnv) *specs.Spec {
			s := baseSpec()
			s.Linux.MaskedPaths = []string{"/proc/keys"}
			return s
		},
		check: func(c *checker, e *testEnv) {
			if _, err := os.Stat("/bin/busybox"); err != nil {
				c.errorf("/bin/busybox missing after MS_MOVE+chroot: %v", err)
			}
			c.wantMissing(e.work) // the host tree is not reachable by path
			c.wantFSType("/proc", "proc")
			c.wantEmpty("/proc/keys")
			// The host's own full procfs was detached before the chroot.
			var hostProc int
			ms, _ := os.ReadFile("/proc/self/mountinfo")
			for _, l := range strings.Split(string(ms), "\n") {
				if f := strings.Fields(l); len(f) > 8 && f[4] == "/proc" {
					hostProc++
				}
			}
			if hostProc != 1 {
				c.errorf("want exactly the container's procfs at /proc, mountinfo shows %d", hostProc)
			}
			runBusybox(c)
		},
	},
	{
		name: "symlink-escape",
		hostSetup: func(e *testEnv) error {
			// The targets also exist on the host, so a lookup that followed
			// the symlinks out of the rootfs would find (and mount on) them.
			for _, d := range []string{"hostdir/x", "hostdir2/y", "src"} {
				if err := os.MkdirAll(e.path(d), 0o755); err != nil {
					return err
				}
			}
			if err := os.RemoveAll(filepath.Join(e.rootfs, "etc")); err != nil {
				return err
			}
			// Absolute, and relative with more ".." than the rootfs is deep.
			if err := os.Symlink(e.path("hostdir"), filepath.Join(e.rootfs, "etc")); err != nil {
				return err
			}
			up := strings.Repeat("../", strings.Count(e.rootfs, "/")+3)
			if err := os.Symlink(up+strings.TrimPrefix(e.path("hostdir2"), "/"), filepath.Join(e.rootfs, "evil")); err != nil {
				return err
			}
			// Inside the rootfs the symlink targets exist, so securejoin
			// resolves them there.
			for _, d := range []string{"hostdir", "hostdir2"} {
				if err := os.MkdirAll(filepath.Join(e.rootfs, e.path(d)), 0o755); err != nil {
					return err
				}
			}
			return nil
		},
		spec: func(e *testEnv) *specs.Spec {
			s := baseSpec(
				specs.Mount{Destination: "/etc/x", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m"}},
				specs.Mount{Destination: "/evil/y", Type: "tmpfs", Source: "tmpfs"},
				specs.Mount{Destination: "/evil/../../z", Type: "bind", Source: e.path("src"), Options: []string{"bind"}},
			)
			s.Linux.Devices = []specs.LinuxDevice{{Path: "/etc/evilnull", Type: "c", Major: 1, Minor: 3}}
			return s
		},
		prePivot: func(c *checker, e *testEnv) {
			// Before the pivot both trees are visible: the mounts must be in
			// the rootfs, under the literal symlink target names.
			c.wantNotMount(e.path("hostdir/x"))
			c.wantNotMount(e.path("hostdir2/y"))
			c.wantFSType(filepath.Join(e.rootfs, e.path("hostdir/x")), "tmpfs")
			c.wantFSType(filepath.Join(e.rootfs, e.path("hostdir2/y")), "tmpfs")
			c.wantFSType(filepath.Join(e.rootfs, "z"), e.fstype())
			c.wantFSType(e.rootfs, e.fstype())
			c.wantMissing(e.path("hostdir/evilnull"))
		},
		check: func(c *checker, e *testEnv) {
			// In the container the symlink resolves to the same name, now
			// inside the container's own tree.
			c.wantFSType(e.path("hostdir/x"), "tmpfs")
			c.wantFSType(e.path("hostdir2/y"), "tmpfs")
			c.wantFSType("/z", e.fstype())
			c.wantDevice("/etc/evilnull", unix.S_IFCHR, 1, 3, 0o666)
		},
		hostCheck: func(t *testing.T, e *testEnv) {
			for _, d := range []string{"hostdir", "hostdir2"} {
				ents, _ := os.ReadDir(e.path(d))
				if len(ents) != 1 {
					t.Errorf("host directory %s was written through a rootfs symlink: %v", d, ents)
				}
			}
		},
	},
	{
		// A symlink to a host path with no counterpart in the rootfs must
		// not be followed onto the host; failing is the safe outcome.
		name: "dangling-symlink-escape",
		hostSetup: func(e *testEnv) error {
			if err := os.MkdirAll(e.path("hostdir"), 0o755); err != nil {
				return err
			}
			if err := os.RemoveAll(filepath.Join(e.rootfs, "etc")); err != nil {
				return err
			}
			return os.Symlink(e.path("hostdir"), filepath.Join(e.rootfs, "etc"))
		},
		spec: func(e *testEnv) *specs.Spec {
			return baseSpec(specs.Mount{Destination: "/etc/x", Type: "tmpfs", Source: "tmpfs"})
		},
		// The absolute link names the host's hostdir, which does not
		// exist inside the rootfs: like runc, the mount is made at the
		// link's target resolved inside the rootfs, never on the host.
		prePivot: func(c *checker, e *testEnv) {
			c.wantNotMount(e.path("hostdir/x"))
			c.wantMissing(e.path("hostdir/x"))
			c.wantFSType(filepath.Join(e.rootfs, e.path("hostdir/x")), "tmpfs")
		},
	},
	{
		name: "mount-over-root-via-symlink",
		hostSetup: func(e *testEnv) error {
			return os.Symlink("/", filepath.Join(e.rootfs, "mnt/root"))
		},
		spec: func(e *testEnv) *specs.Spec {
			return baseSpec(specs.Mount{Destination: "/mnt/root", Type: "tmpfs", Source: "tmpfs"})
		},
		wantPrepareErr: "rootfs itself",
	},
	{
		name: "proc-through-symlink",
		hostSetup: func(e *testEnv) error {
			if err := os.Remove(filepath.Join(e.rootfs, "proc")); err != nil {
				return err
			}
			return os.Symlink("tmp", filepath.Join(e.rootfs, "proc"))
		},
		spec:           func(e *testEnv) *specs.Spec { return baseSpec() },
		wantPrepareErr: "must be mounted on ordinary directory",
		prePivot: func(c *checker, e *testEnv) {
			c.wantNotMount(filepath.Join(e.rootfs, "tmp"))
		},
	},
	{
		name: "mount-inside-proc",
		spec: func(e *testEnv) *specs.Spec {
			return baseSpec(specs.Mount{Destination: "/proc/sys/kernel/core_pattern", Type: "bind", Source: "/dev/null", Options: []string{"bind"}})
		},
		wantPrepareErr: "mounts inside /proc are limited",
	},
	{
		name: "cgroup",
		spec: func(e *testEnv) *specs.Spec {
			return baseSpec(specs.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro", "nosuid", "noexec", "nodev"}})
		},
		check: checkCgroupMount(false),
	},
	{
		name:       "cgroup-ns",
		cloneFlags: unix.CLONE_NEWCGROUP,
		opts:       Options{CgroupNS: true},
		spec: func(e *testEnv) *specs.Spec {
			return baseSpec(specs.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro", "nosuid", "noexec", "nodev"}})
		},
		check: checkCgroupMount(true),
	},
	{
		name: "idmap",
		hostSetup: func(e *testEnv) error {
			if err := os.MkdirAll(e.path("idsrc"), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(e.path("idsrc/owned-by-0"), nil, 0o644); err != nil {
				return err
			}
			return os.Chown(e.path("idsrc/owned-by-0"), 0, 0)
		},
		childSetup: func(e *testEnv) error {
			// tmpfs as well as the host filesystem of the work dir.
			if err := os.MkdirAll(e.path("idtmp"), 0o755); err != nil {
				return err
			}
			if err := unix.Mount("tmpfs", e.path("idtmp"), "tmpfs", 0, "size=1m"); err != nil {
				return err
			}
			return os.WriteFile(e.path("idtmp/owned-by-0"), nil, 0o644)
		},
		spec: func(e *testEnv) *specs.Spec {
			idm := func(dst, src, opt string) specs.Mount {
				return specs.Mount{Destination: dst, Type: "bind", Source: src, Options: []string{"bind", opt},
					UIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 10}},
					GIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 2000, Size: 10}}}
			}
			return baseSpec(idm("/mnt/disk", e.path("idsrc"), "idmap"), idm("/mnt/tmp", e.path("idtmp"), "ridmap"))
		},
		check: func(c *checker, e *testEnv) {
			for _, p := range []string{"/mnt/disk/owned-by-0", "/mnt/tmp/owned-by-0"} {
				var st unix.Stat_t
				if err := unix.Stat(p, &st); err != nil || st.Uid != 1000 || st.Gid != 2000 {
					c.errorf("%s through the idmapped mount: owner %d:%d (%v), want 1000:2000", p, st.Uid, st.Gid, err)
				}
			}
			c.wantOpt("/mnt/disk", "idmapped")
		},
	},
	{
		// The bind source's atime mode is locked in a user namespace; a
		// request to change it must fail loudly, not silently differ.
		name:   "userns-locked-atime",
		userns: true,
		opts:   Options{InUserNS: true},
		hostSetup: func(e *testEnv) error {
			return os.MkdirAll(e.path("src"), 0o755)
		},
		skip: func() string {
			var st unix.Statfs_t
			if err := unix.Statfs(os.TempDir(), &st); err != nil || st.Flags&unix.ST_RELATIME == 0 {
				return "needs the temp dir on a relatime mount to have a locked atime mode to violate"
			}
			return ""
		},
		spec: func(e *testEnv) *specs.Spec {
			return baseSpec(specs.Mount{Destination: "/mnt/x", Type: "bind", Source: e.path("src"), Options: []string{"bind", "strictatime"}})
		},
		wantPrepareErr: "cannot change atime flags locked",
	},
	{
		name:   "userns",
		userns: true,
		opts:   Options{InUserNS: true},
		hostSetup: func(e *testEnv) error {
			if err := os.MkdirAll(e.path("src"), 0o755); err != nil {
				return err
			}
			return os.WriteFile(e.path("src/data"), []byte("payload"), 0o644)
		},
		spec: func(e *testEnv) *specs.Spec {
			s := baseSpec(specs.Mount{Destination: "/mnt/ro", Type: "bind", Source: e.path("src"), Options: []string{"bind", "ro", "nosuid", "nodev"}})
			s.Root.Readonly = true
			s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229}}
			s.Linux.MaskedPaths = []string{"/proc/keys", "/sys/firmware"}
			s.Linux.ReadonlyPaths = []string{"/proc/sys"}
			return s
		},
		check: func(c *checker, e *testEnv) {
			c.wantFSType("/proc", "proc")
			if m := topMount("/sys"); m == nil || (m.FSType != "sysfs") {
				c.errorf("/sys: %+v, want sysfs (fresh or the host's bound)", m)
			} else {
				c.fact("sys_root", m.Root)
				c.wantOpt("/sys", "ro")
			}
			for _, d := range append(DefaultDevices(), specs.LinuxDevice{Path: "/dev/fuse", Major: 10, Minor: 229}) {
				c.wantDevice(d.Path, unix.S_IFCHR, uint32(d.Major), uint32(d.Minor), 0)
				// mknod is impossible here: every node is a bind of the host's.
				if m := topMount(d.Path); m == nil || m.FSType != "devtmpfs" {
					c.errorf("%s: want a bind mount of the host devtmpfs node, got %+v", d.Path, m)
				}
			}
			c.wantSymlink("/dev/ptmx", "pts/ptmx")
			if f, err := os.OpenFile("/dev/null", os.O_WRONLY, 0); err != nil {
				c.errorf("open /dev/null in userns: %v", err)
			} else {
				f.Close()
			}
			c.wantFSType("/dev/pts", "devpts")
			c.wantFSType("/dev/mqueue", "mqueue")
			c.wantOpt("/mnt/ro", "ro")
			c.wantWriteErr("/mnt/ro", unix.EROFS)
			c.wantWriteErr("/", unix.EROFS)
			c.wantEmpty("/proc/keys")
			c.wantEmptyDir("/sys/firmware")
			c.wantWriteErr("/proc/sys/kernel/hostname", unix.EROFS)
			if os.Getuid() != 0 {
				c.errorf("uid in the container %d, want 0", os.Getuid())
			}
			runBusybox(c)
		},
	},
}

// fstype of the host filesystem holding the work dir (what a bind shows).
func (e *testEnv) fstype() string {
	var best string
	ms, _ := os.ReadFile("/proc/self/mountinfo")
	bestLen := -1
	for _, l := range strings.Split(string(ms), "\n") {
		f := strings.Fields(l)
		if len(f) < 10 {
			continue
		}
		mp := f[4]
		if (e.work == mp || strings.HasPrefix(e.work, strings.TrimSuffix(mp, "/")+"/")) && len(mp) > bestLen {
			for i := 6; i < len(f); i++ {
				if f[i] == "-" {
					best, bestLen = f[i+1], len(mp)
					break
				}
			}
		}
	}
	return best
}

func checkCgroupMount(ns bool) func(c *checker, e *testEnv) {
	return func(c *checker, e *testEnv) {
		var sfs unix.Statfs_t
		if err := unix.Statfs("/sys/fs/cgroup", &sfs); err != nil {
			c.errorf("statfs /sys/fs/cgroup: %v", err)
			return
		}
		if sfs.Type == unix.CGROUP2_SUPER_MAGIC {
			// Unified host: one cgroup2 mount, read-only.
			c.wantFSType("/sys/fs/cgroup", "cgroup2")
			c.wantWriteErr("/sys/fs/cgroup/cgroup.procs", unix.EROFS)
			return
		}
		c.wantFSType("/sys/fs/cgroup", "tmpfs")
		c.wantOpt("/sys/fs/cgroup", "ro")
		c.wantWriteErr("/sys/fs/cgroup", unix.EROFS)
		ents, err := os.ReadDir("/sys/fs/cgroup")
		if err != nil || len(ents) == 0 {
			c.errorf("no hierarchies under /sys/fs/cgroup: %v", err)
			return
		}
		names := []string{}
		for _, en := range ents {
			names = append(names, en.Name())
			p := filepath.Join("/sys/fs/cgroup", en.Name())
			if en.Type()&os.ModeSymlink != 0 {
				continue
			}
			m := topMount(p)
			if m == nil || (m.FSType != "cgroup" && m.FSType != "cgroup2") {
				c.errorf("%s: %+v, want a cgroup mount", p, m)
				continue
			}
			c.wantOpt(p, "ro")
			c.wantWriteErr(filepath.Join(p, "cgroup.procs"), unix.EROFS)
			// Only the container's own cgroup is visible: the namespace root
			// with a cgroup namespace, or the bound directory without.
			b, err := os.ReadFile(filepath.Join(p, "cgroup.procs"))
			if err != nil || !strings.Contains("\n"+string(b), "\n"+itoa(os.Getpid())+"\n") {
				c.errorf("%s/cgroup.procs does not list the container init %d: %v", p, os.Getpid(), err)
			}
			if ns && m.Root != "/" {
				c.errorf("%s: mount root %q, want / (a fresh mount in the cgroup namespace)", p, m.Root)
			}
		}
		c.fact("hierarchies", strings.Join(names, " "))
		if _, err := os.Stat("/sys/fs/cgroup/memory/memory.limit_in_bytes"); err != nil {
			c.errorf("memory hierarchy not usable: %v", err)
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func scenarioByName(name string) (scenario, bool) {
	for _, s := range scenarios {
		if s.name == name {
			return s, true
		}
	}
	return scenario{}, false
}

func TestScenarios(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) { runScenario(t, sc) })
	}
}
