package tests

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/internal/testrootfs"
	"github.com/bulwark-sec/bulwark/pkg/container"
	"github.com/bulwark-sec/bulwark/pkg/floorns"
	"github.com/bulwark-sec/bulwark/pkg/userns"
)

// engineOverlay mounts, as Docker's overlay2 or containerd's snapshotter
// would, an overlay whose lower layer is a test rootfs, and returns its
// mount point and upper directory.
func engineOverlay(t *testing.T) (merged, upper string) {
	t.Helper()
	lower := filepath.Join(testrootfs.Bundle(t, nil), "rootfs")
	d := t.TempDir()
	os.Chmod(d, 0o755)
	for _, s := range []string{"layer/diff", "layer/work", "merged"} {
		if err := os.MkdirAll(filepath.Join(d, s), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	merged, upper = filepath.Join(d, "merged"), filepath.Join(d, "layer/diff")
	opts := "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + filepath.Join(d, "layer/work") + ",index=off"
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		t.Skipf("overlayfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(merged, unix.MNT_DETACH) })
	return merged, upper
}

func ownerOf(t *testing.T, path string) uint32 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Uid
}

// Under the floor a Docker-shaped config, whose rootfs is an engine's
// overlay, runs in a user namespace from the pool: container root is an
// unprivileged host uid, yet the image's files and a volume's keep their
// owners inside (idmapped layers and bind), and what container root
// writes, in the rootfs or in the volume, is root-owned on the host disk,
// as the engine itself would have written it. bulwark exec (docker exec)
// joins the same user namespace. Delete leaves no mount, directory or
// range behind.
func TestHardenGivesAnEngineContainerAUserNamespaceWithIdmappedRootfsAndVolumes(t *testing.T) {
	merged, upper := engineOverlay(t)
	vol := t.TempDir()
	os.Chmod(vol, 0o755)
	if err := os.WriteFile(filepath.Join(vol, "users"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chown(filepath.Join(vol, "users"), 1000, 1000)
	e := newEnv(t)
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
		s.Process.Args = []string{"sleep", "100"}
		dockerShaped(s)
		s.Root.Path = merged
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/vol", Type: "bind", Source: vol, Options: []string{"rbind", "rw"}})
	})
	id := e.id()
	r := e.bw("--harden", "--policy", emptyPolicy(t), "run", "-d", "-b", bundle, id)
	if r.code != 0 {
		t.Fatalf("run: %v", r)
	}
	if !strings.Contains(r.stderr, "added a user namespace") {
		t.Errorf("the floor did not log the user namespace it added:\n%s", r.stderr)
	}
	got := kv(e.mustOK("exec", id, "sh", "-c", `echo map=$(cat /proc/self/uid_map | tr -s ' ' | sed 's/^ //')
echo busybox=$(stat -c %u /bin/busybox); echo users=$(stat -c %u /vol/users)
echo > /vol/new; echo > /written; echo wrote=$?
echo devmem=$(syscall openw /dev/mem)`))
	fields := strings.Fields(got["map"])
	if len(fields) != 3 || fields[0] != "0" || fields[1] == "0" || fields[2] != "65536" {
		t.Errorf("uid_map inside = %q, want 0 mapped to a pool range of 65536 ids", got["map"])
	}
	if got["busybox"] != "0" || got["users"] != "1000" {
		t.Errorf("owners inside: /bin/busybox %q (want 0), /vol/users %q (want 1000): the rootfs and the volume must keep their on-disk owners", got["busybox"], got["users"])
	}
	if got["wrote"] != "0" {
		t.Fatalf("container root could not write its rootfs and volume: %v", got)
	}
	if u := ownerOf(t, filepath.Join(vol, "new")); u != 0 {
		t.Errorf("file container root wrote to the volume is owned by host uid %d, want 0", u)
	}
	if u := ownerOf(t, filepath.Join(upper, "written")); u != 0 {
		t.Errorf("file container root wrote to its rootfs is owned by host uid %d in the engine's upper directory, want 0", u)
	}
	// Container root is not host root: a host-owned node it opens fails.
	if got["devmem"] == "OK" {
		t.Errorf("container root opened /dev/mem: %v", got)
	}
	stateDir := (&container.Runtime{Root: e.root}).StateDir(id)
	idmap := floorns.IdmapDir(stateDir)
	if _, err := os.Stat(idmap); err != nil {
		t.Errorf("idmapped volume mounts not where expected: %v", err)
	}
	e.mustOK("delete", "--force", id)
	if _, err := os.Stat(idmap); !os.IsNotExist(err) {
		t.Errorf("%s left behind after delete: %v", idmap, err)
	}
	if mi, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mi), idmap) {
		t.Errorf("idmapped mounts under %s left behind after delete", idmap)
	}
	if al, _ := userns.Default().Allocated(); func() bool {
		for _, owner := range al {
			if owner == stateDir {
				return true
			}
		}
		return false
	}() {
		t.Errorf("user namespace range of %s not released", id)
	}
	if _, err := os.Stat(filepath.Join(vol, "users")); err != nil {
		t.Errorf("the volume's own files are gone after delete: %v", err)
	}
}

// Configs the kernel cannot give a user namespace keep the host's, logged;
// with "userns": "require" the floor refuses them and leaves nothing.
func TestHardenLeavesHostNetworkConfigsWithoutAUserNamespaceOrRefusesThem(t *testing.T) {
	hostNet := func(s *specs.Spec) {
		s.Process.Args = []string{"cat", "/proc/self/uid_map"}
		dockerShaped(s)
		var ns []specs.LinuxNamespace
		for _, n := range s.Linux.Namespaces {
			if n.Type != specs.NetworkNamespace {
				ns = append(ns, n)
			}
		}
		s.Linux.Namespaces = ns
	}
	e := newEnv(t)
	bundle := testrootfs.Bundle(t, hostNet)
	r := e.bw("--harden", "--policy", emptyPolicy(t), "run", "-b", bundle, e.id())
	if r.code != 0 || !strings.Contains(r.stdout, "4294967295") {
		t.Fatalf("host-network config under the floor: %v, want it run in the host's user namespace", r)
	}
	if !strings.Contains(r.stderr, "left without a user namespace") || !strings.Contains(r.stderr, "network") {
		t.Errorf("the floor did not log why it added no user namespace:\n%s", r.stderr)
	}
	p := filepath.Join(t.TempDir(), "policy.json")
	if err := os.WriteFile(p, []byte(`{"userns": "require"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	id := e.id()
	r = e.bw("--harden", "--policy", p, "run", "-b", bundle, id)
	if r.code == 0 || !strings.Contains(r.stderr, "require") {
		t.Fatalf("host-network config with userns required: %v, want a refusal naming the policy", r)
	}
	if _, err := os.Stat((&container.Runtime{Root: e.root}).StateDir(id)); !os.IsNotExist(err) {
		t.Errorf("refused container left its state directory: %v", err)
	}
}

// A pod under the floor, as containerd's CRI shapes it: the sandbox gets a
// user namespace from the pool, and a container that joins the sandbox's
// IPC, UTS and PID namespaces by /proc path joins its user namespace too
// (alone beside it, it could not mount /proc for a PID namespace another
// user namespace owns). Delete releases the pin of the joined namespace and
// takes no range for the joining container.
func TestHardenPutsAContainerJoiningAPodsNamespacesInThePodsUserNamespace(t *testing.T) {
	testrootfs.RequireUserNS(t)
	e := newEnv(t)
	pol := emptyPolicy(t)
	sandbox := testrootfs.Bundle(t, func(s *specs.Spec) {
		s.Process.Args = []string{"sleep", "100"}
		dockerShaped(s)
	})
	sid := e.id()
	pidFile := filepath.Join(t.TempDir(), "pid")
	if r := e.bw("--harden", "--policy", pol, "run", "-d", "-b", sandbox, "--pid-file", pidFile, sid); r.code != 0 {
		t.Fatalf("run the sandbox: %v", r)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	spid := strings.TrimSpace(string(b))
	if nsLink(t, spid, "user") == nsLink(t, "self", "user") {
		t.Fatalf("the sandbox was given no user namespace of its own")
	}
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
		s.Process.Args = []string{"sh", "-c", "readlink /proc/self/ns/user; ls /proc | grep -c '^[0-9]'"}
		dockerShaped(s)
		for i, ns := range s.Linux.Namespaces {
			switch ns.Type {
			case specs.IPCNamespace, specs.UTSNamespace, specs.PIDNamespace:
				s.Linux.Namespaces[i].Path = "/proc/" + spid + "/ns/" + map[specs.LinuxNamespaceType]string{
					specs.IPCNamespace: "ipc", specs.UTSNamespace: "uts", specs.PIDNamespace: "pid"}[ns.Type]
			}
		}
	})
	id := e.id()
	r := e.bw("--harden", "--policy", pol, "run", "-b", bundle, id)
	if r.code != 0 {
		t.Fatalf("run the container joining the sandbox's namespaces: %v", r)
	}
	if !strings.Contains(r.stderr, "joined the user namespace of process "+spid) {
		t.Errorf("the floor did not log joining the sandbox's user namespace:\n%s", r.stderr)
	}
	out := strings.Fields(r.stdout)
	if len(out) != 2 || out[0] != nsLink(t, spid, "user") {
		t.Errorf("container's user namespace and process count %q, want the sandbox's %s", out, nsLink(t, spid, "user"))
	} else if out[1] == "1" {
		t.Errorf("the container's /proc shows one process: not the sandbox's PID namespace")
	}
	stateDir := (&container.Runtime{Root: e.root}).StateDir(id)
	if al, _ := userns.Default().Allocated(); slices.Contains(slices.Collect(maps.Values(al)), stateDir) {
		t.Errorf("the joining container took a range of its own")
	}
	e.mustOK("delete", "--force", id)
	idmap := floorns.IdmapDir(stateDir)
	if _, err := os.Stat(idmap); !os.IsNotExist(err) {
		t.Errorf("%s left behind after delete: %v", idmap, err)
	}
	if mi, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mi), idmap) {
		t.Errorf("mounts under %s (the pinned user namespace, the rootfs) left behind after delete", idmap)
	}
}

// A volume the kernel cannot idmap (a directory on an overlayfs mount) is
// bound as it is, logged, and still reached by container root when its
// host path is below a directory only host root may traverse (t.TempDir's
// parent is 0700, as containerd's sandbox directories are).
func TestHardenBindsAVolumeItCannotIdmapWhereContainerRootReachesIt(t *testing.T) {
	testrootfs.RequireUserNS(t)
	private := t.TempDir()
	for _, s := range []string{"lower", "upper", "work", "merged"} {
		if err := os.Mkdir(filepath.Join(private, s), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(private, "lower", "file"), []byte("from-overlay\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	vol := filepath.Join(private, "merged")
	opts := "lowerdir=" + filepath.Join(private, "lower") + ",upperdir=" + filepath.Join(private, "upper") + ",workdir=" + filepath.Join(private, "work")
	if err := unix.Mount("overlay", vol, "overlay", 0, opts); err != nil {
		t.Skipf("overlayfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(vol, unix.MNT_DETACH) })
	if err := os.Chmod(filepath.Dir(private), 0o700); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
		s.Process.Args = []string{"sh", "-c", "cat /vol/file; stat -c %u /vol/file"}
		dockerShaped(s)
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/vol", Type: "bind", Source: vol, Options: []string{"rbind", "ro"}})
	})
	r := e.bw("--harden", "--policy", emptyPolicy(t), "run", "-b", bundle, e.id())
	if r.code != 0 {
		t.Fatalf("run with a volume on overlayfs below a 0700 directory: %v", r)
	}
	if !strings.Contains(r.stderr, "added a user namespace") || !strings.Contains(r.stderr, "bound without an idmap") {
		t.Errorf("want a user namespace and the volume bound without an idmap, logged:\n%s", r.stderr)
	}
	if got := strings.Fields(r.stdout); len(got) != 2 || got[0] != "from-overlay" || got[1] != "65534" {
		t.Errorf("inside: %q, want the file's content and owner 65534 (host root's, unmapped)", got)
	}
}
