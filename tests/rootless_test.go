package tests

// Rootless: a user who is not root runs `bulwark run` with the same
// defaults. Each test runs the bulwark binary as a test account with
// subordinate id ranges (internal/testrootfs.RequireRootlessUser), with a
// HOME and an XDG_RUNTIME_DIR of its own, and checks what the run leaves
// behind: nothing under the runtime directory but the seccomp cache, no
// mount, no process of the account.

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/bulwark-sec/bulwark/internal/imagetest"
	"github.com/bulwark-sec/bulwark/internal/testrootfs"
)

// rootlessEnv runs bulwark as a rootless test account.
type rootlessEnv struct {
	t       *testing.T
	u       testrootfs.RootlessUser
	home    string
	runtime string
}

func newRootlessEnv(t *testing.T) *rootlessEnv {
	t.Helper()
	testrootfs.RequireUserNS(t)
	return newRootlessEnvAs(t, testrootfs.RequireRootlessUser(t))
}

func newRootlessEnvAs(t *testing.T, u testrootfs.RootlessUser) *rootlessEnv {
	t.Helper()
	// The test binary's directory is a root-only temp dir.
	if err := os.Chmod(filepath.Dir(bulwarkBin), 0o755); err != nil {
		t.Fatal(err)
	}
	r := &rootlessEnv{t: t, u: u, home: testrootfs.UserDir(t, u), runtime: testrootfs.UserDir(t, u)}
	t.Cleanup(r.assertNothingLeft)
	return r
}

// stateDir is where a rootless run keeps its state: $XDG_RUNTIME_DIR/bulwark.
func (r *rootlessEnv) stateDir() string { return filepath.Join(r.runtime, "bulwark") }

// bw runs bulwark as the account, with no --root: the rootless default.
func (r *rootlessEnv) bw(args ...string) result {
	r.t.Helper()
	return r.bwEnv(nil, args...)
}

// bwEnv is bw with env added to (or, for a name it has, replacing) the
// account's environment.
func (r *rootlessEnv) bwEnv(env []string, args ...string) result {
	r.t.Helper()
	cmd := exec.Command(bulwarkBin, args...)
	cmd.Dir = r.home
	cmd.Env = append([]string{"HOME=" + r.home, "XDG_RUNTIME_DIR=" + r.runtime, "USER=" + r.u.Name,
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(r.u.UID), Gid: uint32(r.u.GID), Groups: []uint32{}}}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := runWithTimeout(cmd, 90*time.Second)
	res := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	default:
		r.t.Fatalf("bulwark %v as %s: %v", args, r.u.Name, err)
	}
	return res
}

// bwTo is bw with stdout written to the file out and stderr to a file
// beside it, for a command whose container outlives it (create): a pipe
// would stay open until the container ends.
func (r *rootlessEnv) bwTo(out string, args ...string) result {
	r.t.Helper()
	fo, err := os.Create(out)
	if err != nil {
		r.t.Fatal(err)
	}
	defer fo.Close()
	fe, err := os.Create(out + ".err")
	if err != nil {
		r.t.Fatal(err)
	}
	defer fe.Close()
	cmd := exec.Command(bulwarkBin, args...)
	cmd.Dir = r.home
	cmd.Env = []string{"HOME=" + r.home, "XDG_RUNTIME_DIR=" + r.runtime, "USER=" + r.u.Name,
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(r.u.UID), Gid: uint32(r.u.GID), Groups: []uint32{}}}
	cmd.Stdout, cmd.Stderr = fo, fe
	err = runWithTimeout(cmd, 90*time.Second)
	serr, _ := os.ReadFile(out + ".err")
	res := result{stderr: string(serr)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	default:
		r.t.Fatalf("bulwark %v as %s: %v", args, r.u.Name, err)
	}
	return res
}

// archive writes img as a docker-archive tagged tag that the account
// can read, for load -i.
func (r *rootlessEnv) archive(img v1.Image, tag string) string {
	r.t.Helper()
	ref, err := name.NewTag(tag)
	if err != nil {
		r.t.Fatal(err)
	}
	archive := filepath.Join(testrootfs.UserDir(r.t, r.u), "img.tar")
	if err := tarball.WriteToFile(archive, ref, img); err != nil {
		r.t.Fatal(err)
	}
	if err := os.Chown(archive, r.u.UID, r.u.GID); err != nil {
		r.t.Fatal(err)
	}
	return archive
}

// pull pulls ref into the account's own store.
func (r *rootlessEnv) pull(ref string) {
	r.t.Helper()
	if res := r.bw("pull", "-q", ref); res.code != 0 {
		r.t.Fatalf("rootless pull %s: %v", ref, res)
	}
}

// assertNothingLeft: no container state, mount or process of the account
// outlives the test's runs. Processes found are reported, then killed.
func (r *rootlessEnv) assertNothingLeft() {
	t := r.t
	if ents, err := os.ReadDir(r.stateDir()); err == nil {
		for _, e := range ents {
			if e.Name() != "@seccomp-cache" {
				t.Errorf("rootless state left behind: %s", filepath.Join(r.stateDir(), e.Name()))
			}
		}
	}
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, r.runtime) || strings.Contains(l, r.home) {
				t.Errorf("mount left behind: %s", l)
			}
		}
	}
	for _, pid := range processesOf(r.u.UID) {
		t.Errorf("process %d of %s left behind: %s", pid, r.u.Name, cmdline(pid))
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// processesOf lists the pids whose real uid is uid.
func processesOf(uid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		// A zombie holds nothing (no memory, files or mounts): a
		// detached run's monitor is init's to reap once it exits, and an
		// init that is not a real one (a sandbox's) may never do it.
		if strings.Contains(string(b), "\nState:\tZ") {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) > 1 && f[0] == "Uid:" && f[1] == strconv.Itoa(uid) {
				out = append(out, pid)
			}
		}
	}
	return out
}

func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.ReplaceAll(string(b), "\x00", " ")
}

func TestRootlessRunIsRootInsideAndWritesFilesAsTheUser(t *testing.T) {
	r := newRootlessEnv(t)
	rootfs := testrootfs.UserRootfs(t, r.u)
	vol := testrootfs.UserDir(t, r.u)
	res := r.bw("run", "-v", vol+":/out", rootfs, "--", "sh", "-c",
		"id -u; id -g; echo hello > /out/f; cat /proc/self/uid_map; grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status")
	if res.code != 0 {
		t.Fatalf("rootless run: %v", res)
	}
	lines := strings.Split(res.stdout, "\n")
	if len(lines) < 2 || lines[0] != "0" || lines[1] != "0" {
		t.Errorf("id inside: want uid 0 and gid 0, got:\n%s", res.stdout)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(vol, "f"), &st); err != nil {
		t.Fatalf("the file the container wrote: %v", err)
	}
	if int(st.Uid) != r.u.UID || int(st.Gid) != r.u.GID {
		t.Errorf("the container root's file is %d:%d on the host, want the user's %d:%d", st.Uid, st.Gid, r.u.UID, r.u.GID)
	}
	// Container root is the user; ids above it are the user's range.
	for _, want := range []string{
		fmt.Sprintf("0 %d 1", r.u.UID),
		fmt.Sprintf("1 %d %d", testrootfs.RootlessSubStart, testrootfs.RootlessSubCount),
		"CapEff:\t0000000000000000", "CapBnd:\t0000000000000000", "NoNewPrivs:\t1", "Seccomp:\t2",
	} {
		if !strings.Contains(strings.Join(strings.Fields(res.stdout), " "), strings.Join(strings.Fields(want), " ")) {
			t.Errorf("missing %q in:\n%s", want, res.stdout)
		}
	}
	// The state went to $XDG_RUNTIME_DIR/bulwark (the seccomp cache stays).
	if _, err := os.Stat(filepath.Join(r.stateDir(), "@seccomp-cache")); err != nil {
		t.Errorf("rootless state not under $XDG_RUNTIME_DIR/bulwark: %v", err)
	}
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err != nil {
		// cgroup v1: one line says the limits are not enforced, and why.
		if n := strings.Count(res.stderr, "cgroup limits not enforced"); n != 1 || !strings.Contains(res.stderr, "cgroup v1") {
			t.Errorf("want exactly one line saying cgroup limits are not enforced on cgroup v1, got %d in:\n%s", n, res.stderr)
		}
	}
}

func TestRootlessRunRefusesWhatOnlyRootMayDo(t *testing.T) {
	r := newRootlessEnv(t)
	rootfs := testrootfs.UserRootfs(t, r.u)
	// A host directory of root's, bound in: root's files are nobody's
	// inside, and nobody's files cannot be written.
	hostDir := t.TempDir()
	if err := os.Chmod(hostDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(hostDir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(hostDir, "root-file"), []byte("root's\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	script := `
echo "mount=$(syscall mount)"
echo "mknod=$(syscall mknod)"
echo "init_module=$(syscall init_module)"
echo "finit_module=$(syscall finit_module)"
echo "hostfile=$(syscall openw /host/root-file)"
echo "hostdir=$(syscall create /host/new)"
echo "hostname=$(syscall openw /proc/sys/kernel/hostname)"
echo "rootfs=$(syscall create /bulwark-w)"
echo "sethostname=$(syscall sethostname)"
echo "setuid=$(syscall setuid 0)"
`
	res := r.bw("run", "-v", hostDir+":/host", rootfs, "--", "sh", "-c", script)
	if res.code != 0 {
		t.Fatalf("rootless run: %v", res)
	}
	got := map[string]string{}
	for _, l := range strings.Split(res.stdout, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			got[k] = v
		}
	}
	for _, k := range []string{"mount", "mknod", "init_module", "finit_module", "hostfile", "hostdir", "hostname", "rootfs", "sethostname"} {
		if v, ok := got[k]; !ok || v == "OK" || !errnoTok.MatchString(v) {
			t.Errorf("%s from a rootless container: want refused, got %q\n%s", k, v, res.stdout)
		}
	}
	if b, err := os.ReadFile(filepath.Join(hostDir, "root-file")); err != nil || string(b) != "root's\n" {
		t.Errorf("the host's file changed: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(hostDir, "new")); err == nil {
		t.Error("the container made a file in root's directory")
	}
}

func TestRootlessRunWithoutSubordinateIDsNamesEtcSubuid(t *testing.T) {
	testrootfs.RequireUserNS(t)
	r := newRootlessEnvAs(t, testrootfs.RequireUserWithoutSubIDs(t))
	rootfs := testrootfs.UserRootfs(t, r.u)
	res := r.bw("run", rootfs, "--", "true")
	if res.code == 0 {
		t.Fatalf("a user without subordinate ids ran a container: %v", res)
	}
	for _, want := range []string{"/etc/subuid", r.u.Name, "usermod --add-subuids"} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("the error does not name %q:\n%s", want, res.stderr)
		}
	}
}

func TestRootlessRunWithoutRuntimeDirFailsClearly(t *testing.T) {
	r := newRootlessEnv(t)
	rootfs := testrootfs.UserRootfs(t, r.u)
	// The variable unset, and no /run/user/UID of the account's.
	if _, err := os.Stat(fmt.Sprintf("/run/user/%d", r.u.UID)); err == nil {
		t.Skipf("/run/user/%d exists", r.u.UID)
	}
	c := exec.Command(bulwarkBin, "run", rootfs, "--", "true")
	c.Env = []string{"HOME=" + r.home, "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(r.u.UID), Gid: uint32(r.u.GID), Groups: []uint32{}}}
	out, err := c.CombinedOutput()
	if err == nil {
		t.Fatalf("ran without a runtime directory:\n%s", out)
	}
	if !strings.Contains(string(out), "XDG_RUNTIME_DIR") || !strings.Contains(string(out), "--root") {
		t.Errorf("the error does not say what to set:\n%s", out)
	}
}

// rootlessFace is the escape suite's rootless column: userFace's runs,
// made by the rootless test account from a rootfs it owns.
func rootlessFace(t *testing.T, _ *env, as []escapeAttempt) map[string]string {
	r := newRootlessEnv(t)
	rootfs := testrootfs.UserRootfs(t, r.u)
	writeEscapeFiles(t, rootfs, as)
	res := r.bw("run", rootfs, "--", "sh", escapeScript)
	got := parseEscape(res.stdout)
	if len(got) == 0 {
		t.Errorf("rootless run: no results: %v", res)
	}
	for _, a := range as {
		if a.asUser {
			got[a.key] = tokenOf(r.bw("run", "--user", "1000:1000", rootfs, "--", a.sh))
		}
	}
	return got
}

// rootlessExpect: everything blocked, except the resource bombs, which
// are recorded: the account runs from the test's own cgroup, which is
// not delegated to it, so no cgroup can be had (nor on cgroup v1 ever).
// The test VM proves the limits where a subtree is delegated.
func rootlessExpect() map[string]string {
	return map[string]string{"*": "blocked", "forkbomb": "record", "membomb": "record"}
}

func TestRootlessOCIFaceRunsARuncRootlessBundleAndRefusesLimits(t *testing.T) {
	r := newRootlessEnv(t)
	bundle := testrootfs.UserDir(t, r.u)
	rootfs := filepath.Join(bundle, "rootfs")
	if err := testrootfs.Build(rootfs); err != nil {
		t.Fatal(err)
	}
	if err := testrootfs.ChownTree(rootfs, r.u.UID, r.u.GID); err != nil {
		t.Fatal(err)
	}
	// runc's form, as a rootless engine drives it: spec --rootless writes
	// a config that maps the caller's own uid alone.
	if res := r.bw("spec", "--rootless", "-b", bundle); res.code != 0 {
		t.Fatalf("spec --rootless: %v", res)
	}
	cfg := filepath.Join(bundle, "config.json")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.Replace(b, []byte(`"sh"`), []byte(`"id", "-u"`), 1)
	if err := os.WriteFile(cfg, b, 0o644); err != nil {
		t.Fatal(err)
	}
	res := r.bw("--rootless", "auto", "run", "-b", bundle, "rl-oci")
	if res.code != 0 || strings.TrimSpace(res.stdout) != "0" {
		t.Fatalf("runc's rootless bundle: want uid 0 inside, got %v", res)
	}
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return
	}
	// A limit no cgroup can enforce is refused, as runc refuses it.
	b = bytes.Replace(b, []byte(`"linux": {`), []byte(`"linux": {"resources": {"memory": {"limit": 104857600}},`), 1)
	if err := os.WriteFile(cfg, b, 0o644); err != nil {
		t.Fatal(err)
	}
	res = r.bw("run", "-b", bundle, "rl-oci")
	if res.code == 0 || !strings.Contains(res.stderr, "linux.resources.memory") {
		t.Errorf("a memory limit without a cgroup: want refused naming linux.resources.memory, got %v", res)
	}
}

func TestRootlessRunImageLoadedByTheUser(t *testing.T) {
	r := newRootlessEnv(t)
	mid := imagetest.Layer(t, "gzip",
		imageEntry{Name: "etc/marker", Body: "from-image\n"},
		imageEntry{Name: "etc/doomed", Body: "x"},
		imageEntry{Name: "work/", Type: tar.TypeDir})
	top := imagetest.Layer(t, "zstd", imageEntry{Name: "etc/.wh.doomed"})
	img := imagetest.Image(t, runtime.GOARCH, layerFromDir(t, userRootfs(t)), mid, top)
	archive := r.archive(img, "rootless-img:1")
	if res := r.bw("load", "-q", "-i", archive); res.code != 0 {
		t.Fatalf("rootless load: %v", res)
	}
	// The store is the user's, under ~/.local/share/bulwark.
	if _, err := os.Stat(filepath.Join(r.home, ".local/share/bulwark/images")); err != nil {
		t.Errorf("rootless image store not under ~/.local/share/bulwark: %v", err)
	}
	res := r.bw("run", "rootless-img:1", "--", "sh", "-c",
		"id -u; cat /etc/marker; test -e /etc/doomed && echo doomed-present; echo w > /tmp/f && cat /tmp/f; touch /bin/x 2>&1 | tail -1")
	if res.code != 0 {
		t.Fatalf("rootless run IMAGE: %v", res)
	}
	for _, want := range []string{"0\n", "from-image\n", "w\n"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("missing %q in:\n%s", want, res.stdout)
		}
	}
	for _, bad := range []string{"doomed-present"} {
		if strings.Contains(res.stdout, bad) {
			t.Errorf("%s:\n%s", bad, res.stdout)
		}
	}
	// --user names are the image's, read from its layers.
	res = r.bw("run", "--user", "app", "rootless-img:1", "--", "id", "-u")
	if res.code != 0 || res.stdout != "1000\n" {
		t.Errorf("--user app (uid 1000 in the image's /etc/passwd): %v", res)
	}
	// Writable: writes land in the container's own upper directory.
	res = r.bw("run", "--writable", "rootless-img:1", "--", "sh", "-c", "echo w > /work/f && cat /work/f && rm /etc/marker && echo removed")
	if res.code != 0 || res.stdout != "w\nremoved\n" {
		t.Fatalf("rootless run --writable IMAGE: %v", res)
	}
	res = r.bw("run", "rootless-img:1", "--", "cat", "/etc/marker")
	if res.code != 0 || res.stdout != "from-image\n" {
		t.Errorf("the next container does not see the image as it was: %v", res)
	}
	if res := r.bw("rmi", "rootless-img:1"); res.code != 0 {
		t.Errorf("rootless rmi: %v", res)
	}
}

func TestRootlessNetNoneAndHost(t *testing.T) {
	r := newRootlessEnv(t)
	rootfs := testrootfs.UserRootfs(t, r.u)
	hostIfs, err := os.ReadDir("/sys/class/net")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		net  string
		want int // interfaces seen inside
	}{{"none", 1}, {"host", len(hostIfs)}} {
		res := r.bw("run", "--net", c.net, rootfs, "--", "sh", "-c", "tail -n +3 /proc/net/dev | wc -l")
		if res.code != 0 {
			t.Fatalf("--net %s: %v", c.net, res)
		}
		if got, _ := strconv.Atoi(strings.TrimSpace(res.stdout)); got != c.want {
			t.Errorf("--net %s: %d interfaces inside, want %d", c.net, got, c.want)
		}
	}
	res := r.bw("run", "--net", "bridge", rootfs, "--", "true")
	if res.code == 0 || !strings.Contains(res.stderr, "need root") || !strings.Contains(res.stderr, "--net pasta") {
		t.Errorf("--net bridge without root: want a clear refusal naming pasta, got %v", res)
	}
}

func TestRootlessUserModeNetworkPublishesAPortOnLoopback(t *testing.T) {
	for i, tool := range []struct{ net, bin string }{{"pasta", "pasta"}, {"slirp", "slirp4netns"}} {
		t.Run(tool.net, func(t *testing.T) {
			testrootfs.RequireBinary(t, tool.bin)
			r := newRootlessEnv(t)
			rootfs := testrootfs.UserRootfs(t, r.u)
			port := 18480 + i
			done := make(chan result, 1)
			go func() {
				done <- r.bw("run", "--net", tool.net, "-p", fmt.Sprintf("127.0.0.1:%d:8080", port), rootfs, "--",
					"sh", "-c", "/usr/local/bin/httpd -addr 0.0.0.0:8080 & sleep 6; kill $!")
			}()
			var body string
			deadline := time.Now().Add(15 * time.Second)
			for time.Now().Before(deadline) && body == "" {
				time.Sleep(200 * time.Millisecond)
				c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
				if err != nil {
					continue
				}
				c.SetDeadline(time.Now().Add(2 * time.Second))
				fmt.Fprintf(c, "GET / HTTP/1.0\r\n\r\n")
				b, _ := io.ReadAll(c)
				c.Close()
				if strings.Contains(string(b), "ok") {
					body = string(b)
				}
			}
			res := <-done
			if body == "" {
				t.Fatalf("--net %s -p %d:8080: no answer from the container's server on 127.0.0.1:%d; run: %v", tool.net, port, port, res)
			}
			if res.code != 0 {
				t.Errorf("run: %v", res)
			}
			// The relay went with the run: the port is closed again.
			if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
				c.Close()
				t.Errorf("127.0.0.1:%d still open after the run", port)
			}
		})
	}
}

func TestRootlessOCIFaceFollowsRuncsRootlessFlag(t *testing.T) {
	r := newRootlessEnv(t)
	bundle := testrootfs.UserDir(t, r.u)
	rootfs := filepath.Join(bundle, "rootfs")
	if err := testrootfs.Build(rootfs); err != nil {
		t.Fatal(err)
	}
	if err := testrootfs.ChownTree(rootfs, r.u.UID, r.u.GID); err != nil {
		t.Fatal(err)
	}
	// runc's root template, no user namespace: refused without root.
	if res := r.bw("spec", "-b", bundle); res.code != 0 {
		t.Fatalf("spec: %v", res)
	}
	for _, flag := range []string{"auto", "true"} {
		res := r.bw("--rootless", flag, "run", "-b", bundle, "rl-nouserns")
		if res.code == 0 || !strings.Contains(res.stderr, "linux.namespaces") || !strings.Contains(res.stderr, "spec --rootless") {
			t.Errorf("--rootless %s, a bundle without a user namespace: want refused naming linux.namespaces, got %v", flag, res)
		}
	}
	// --rootless false: treated as root, it fails at the first step
	// that needs root (runc's state directory).
	res := r.bw("--rootless", "false", "run", "-b", bundle, "rl-false")
	if res.code == 0 || !strings.Contains(res.stderr, "/run/bulwark") {
		t.Errorf("--rootless false without root: want a failure on /run/bulwark, got %v", res)
	}
	if res := r.bw("--rootless", "maybe", "list"); res.code == 0 || !strings.Contains(res.stderr, "auto, true or false") {
		t.Errorf("--rootless maybe: want refused, got %v", res)
	}
}
