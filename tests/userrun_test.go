package tests

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bulwark-sec/bulwark/internal/testrootfs"
	"github.com/bulwark-sec/bulwark/pkg/container"
	"github.com/bulwark-sec/bulwark/pkg/oci"
	"github.com/bulwark-sec/bulwark/pkg/userface"
	"github.com/bulwark-sec/bulwark/pkg/userns"
)

// userRootfs builds a rootfs the way testrootfs.Bundle does (parents
// traversable by the container's unprivileged host ids).
func userRootfs(t *testing.T) string {
	t.Helper()
	return filepath.Join(testrootfs.Bundle(t, nil), "rootfs")
}

// userRun runs `bulwark run --name ID [flags] ROOTFS -- CMD...`.
func (e *env) userRun(stdin []byte, flags []string, rootfs string, cmd ...string) result {
	e.t.Helper()
	args := append([]string{"run", "--name", e.id()}, flags...)
	args = append(append(args, rootfs, "--"), cmd...)
	return e.bwIn(stdin, args...)
}

// assertUserRunGone checks what the user face adds to a container's
// leftovers: state, generated bundle, device nodes, user namespace range.
func (e *env) assertUserRunGone(id string) {
	e.t.Helper()
	rt := &container.Runtime{Root: e.root}
	own := userface.PathsOf(e.root, id)
	for _, p := range []string{rt.StateDir(id), own.Bundle, own.Dev, own.Files, own.Volumes} {
		if _, err := os.Stat(p); err == nil {
			e.t.Errorf("%s left behind", p)
		}
	}
	owned, err := userns.Default().Allocated()
	if err != nil {
		e.t.Fatal(err)
	}
	for k, o := range owned {
		if o == rt.StateDir(id) {
			e.t.Errorf("user namespace range %d still allocated to %s", k, o)
		}
	}
}

func TestUserRunDefaultProfileIsHardened(t *testing.T) {
	e := newEnv(t)
	rootfs := userRootfs(t)
	r := e.userRun(nil, nil, rootfs, "/usr/local/bin/probe", "-json")
	if r.code != 0 {
		t.Fatalf("probe: %v", r)
	}
	id := e.ids[len(e.ids)-1]
	var p struct {
		UIDMap     string                          `json:"uid_map"`
		GIDMap     string                          `json:"gid_map"`
		Caps       map[string]struct{ Hex string } `json:"caps"`
		NoNewPrivs int                             `json:"no_new_privs"`
		Seccomp    int                             `json:"seccomp"`
		MountTmpfs string                          `json:"mount_tmpfs"`
		UID        int                             `json:"uid"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &p); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	for _, m := range []string{p.UIDMap, p.GIDMap} {
		f := strings.Fields(m)
		if len(f) != 3 || f[0] != "0" || f[1] == "0" || f[2] != "65536" {
			t.Errorf("map %q: want container 0 mapped to an unprivileged host range of 65536", m)
		}
	}
	for _, set := range []string{"Inh", "Prm", "Eff", "Bnd", "Amb"} {
		if p.Caps[set].Hex != "0000000000000000" {
			t.Errorf("Cap%s = %s, want none", set, p.Caps[set].Hex)
		}
	}
	if p.NoNewPrivs != 1 || p.Seccomp != 2 {
		t.Errorf("NoNewPrivs %d Seccomp %d, want 1 and 2", p.NoNewPrivs, p.Seccomp)
	}
	if p.MountTmpfs == "OK" {
		t.Error("the payload could mount a tmpfs")
	}
	e.assertUserRunGone(id)

	// The filesystem view, from a shell inside the same kind of container.
	script := `touch /bulwark-w 2>/dev/null && echo root=rw || echo root=ro
echo x > /tmp/f && echo tmp=rw
grep ' /tmp ' /proc/self/mounts | grep -o 'size=[0-9]*k' | sed 's/^/tmp/'
echo pids=$(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max)
echo binowner=$(stat -c %u /bin/busybox)
for f in /proc/kcore /proc/keys /proc/timer_list /proc/kallsyms /proc/vmallocinfo /proc/slabinfo /proc/interrupts; do
  [ -e $f ] && echo "masked $f $(cat $f 2>/dev/null | wc -c)"
done
for d in /sys/firmware /proc/acpi /proc/scsi /sys/devices/virtual/powercap; do
  [ -d $d ] && echo "masked $d $(ls -A $d | wc -l)"
done
true`
	r = e.userRun(nil, nil, rootfs, "sh", "-c", script)
	if r.code != 0 {
		t.Fatalf("%v", r)
	}
	out := r.stdout
	for _, want := range []string{"root=ro", "tmp=rw", "tmpsize=65536k", "pids=1024", "binowner=0"} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	masked := 0
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "masked ") {
			masked++
			if !strings.HasSuffix(l, " 0") {
				t.Errorf("not empty: %s", l)
			}
		}
	}
	if masked < 3 {
		t.Errorf("only %d masked paths checked:\n%s", masked, out)
	}
	e.assertUserRunGone(e.ids[len(e.ids)-1])
}

func TestUserRunAttachesStdioAndReturnsExitStatus(t *testing.T) {
	e := newEnv(t)
	rootfs := userRootfs(t)
	tests := []struct {
		name     string
		stdin    string
		cmd      []string
		wantOut  string
		wantCode int
	}{
		{name: "stdin reaches the payload, stdout comes back", stdin: "hello bulwark\n", cmd: []string{"cat"}, wantOut: "hello bulwark\n"},
		{name: "exit status is returned", cmd: []string{"sh", "-c", "exit 42"}, wantCode: 42},
		{name: "a failing command's status is returned", cmd: []string{"false"}, wantCode: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.userRun([]byte(tc.stdin), nil, rootfs, tc.cmd...)
			if r.code != tc.wantCode || (tc.wantOut != "" && r.stdout != tc.wantOut) {
				t.Errorf("got %v, want exit %d stdout %q", r, tc.wantCode, tc.wantOut)
			}
			e.assertUserRunGone(e.ids[len(e.ids)-1])
		})
	}
}

// startUserRun starts `bulwark run` in the background and returns it with
// a reader of its stdout.
func (e *env) startUserRun(flags []string, rootfs string, cmd ...string) (*exec.Cmd, *bufio.Reader, func()) {
	e.t.Helper()
	args := append([]string{"--root", e.root, "run", "--name", e.id()}, flags...)
	args = append(append(args, rootfs, "--"), cmd...)
	c := exec.Command(bulwarkBin, args...)
	out, err := c.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	in, err := c.StdinPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	c.Stderr = os.Stderr
	if err := c.Start(); err != nil {
		e.t.Fatal(err)
	}
	stop := func() {
		in.Close()
		done := make(chan struct{})
		go func() { c.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			c.Process.Kill()
			<-done
		}
	}
	e.t.Cleanup(stop)
	return c, bufio.NewReader(out), stop
}

func TestUserRunConcurrentContainersGetDistinctRanges(t *testing.T) {
	e := newEnv(t)
	rootfs := userRootfs(t)
	var maps []string
	var stops []func()
	for i := 0; i < 2; i++ {
		// Each holds its range until its stdin closes.
		_, out, stop := e.startUserRun(nil, rootfs, "sh", "-c", "cat /proc/self/uid_map; read x")
		line, err := out.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		maps = append(maps, strings.Join(strings.Fields(line), " "))
		stops = append(stops, stop)
	}
	if maps[0] == maps[1] {
		t.Errorf("two running containers share the range %q", maps[0])
	}
	for _, s := range stops {
		s()
	}
	for _, id := range e.ids {
		e.assertUserRunGone(id)
	}
}

// TERM is caught the moment run starts; USR1 and WINCH's neighbours are
// registered on another goroutine while the container is created, and must
// be in place before the payload runs (container.NotifySignals).
func TestUserRunForwardsSignalsToTheContainer(t *testing.T) {
	for _, sig := range []struct {
		name string
		sig  syscall.Signal
	}{{"TERM", syscall.SIGTERM}, {"USR1", syscall.SIGUSR1}, {"USR2", syscall.SIGUSR2}} {
		t.Run(sig.name, func(t *testing.T) {
			e := newEnv(t)
			rootfs := userRootfs(t)
			c, out, stop := e.startUserRun(nil, rootfs, "sh", "-c", `trap 'echo got `+sig.name+`; exit 7' `+sig.name+`; echo ready; while :; do sleep 0.1; done`)
			if line, err := out.ReadString('\n'); err != nil || line != "ready\n" {
				t.Fatalf("container did not start: %q %v", line, err)
			}
			if err := c.Process.Signal(sig.sig); err != nil {
				t.Fatal(err)
			}
			line, _ := out.ReadString('\n')
			stop()
			if line != "got "+sig.name+"\n" || c.ProcessState.ExitCode() != 7 {
				t.Errorf("payload said %q and bulwark exited %d, want the trap's output and 7", line, c.ProcessState.ExitCode())
			}
			e.assertUserRunGone(e.ids[0])
		})
	}
}

func TestUserRunAndRuncRunAreToldApartOnlyByDoubleDash(t *testing.T) {
	e := newEnv(t)
	// A bundle directory whose name is also a valid id: without "--" it is
	// runc's `run ID` from the current directory's config.json.
	bundle := testrootfs.Bundle(t, nil)
	id := e.id()
	cmd := exec.Command(bulwarkBin, "--root", e.root, "run", "-b", bundle, id)
	b, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 0 {
		t.Fatalf("runc-style run: %s", b)
	}
	// The same bundle's rootfs through the user face runs the command given.
	r := e.userRun(nil, nil, filepath.Join(bundle, "rootfs"), "echo", "user face")
	if r.code != 0 || r.stdout != "user face\n" {
		t.Errorf("user face: %v", r)
	}
}

func TestUserRunRefusesBadInputBeforeCreatingAnything(t *testing.T) {
	e := newEnv(t)
	rootfs := userRootfs(t)
	plain := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(plain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		flags []string
		want  string
	}{
		{"unknown profile", []string{"--profile", "yolo"}, "--profile yolo"},
		{"unknown capability", []string{"--cap-add", "CAP_TELEPORT"}, "--cap-add CAP_TELEPORT"},
		{"device that is not a device node", []string{"--device", plain}, "--device " + plain},
		{"host network with netadmin", []string{"--net", "host", "--profile", "netadmin"}, "--net host"},
		{"host network with NET_RAW", []string{"--net", "host", "--cap-add", "NET_RAW"}, "--net host"},
		{"writable and read-only", []string{"--writable", "--read-only"}, "--read-only"},
		{"tmpfs over root", []string{"--tmpfs", "/"}, "--tmpfs /"},
		{"volume source missing", []string{"-v", "/nonexistent/bulwark:/data"}, "--volume /nonexistent/bulwark:/data"},
		{"bad memory", []string{"--memory", "lots"}, "--memory"},
		{"bad net", []string{"--net", "tunnel:x"}, "--net tunnel:x"},
		{"userns range at host root", []string{"--userns-range", "0"}, "--userns-range"},
		{"user the image does not list", []string{"--user", "nosuch"}, `--user "nosuch": user nosuch: no such entry in the image's /etc/passwd`},
		{"group the image does not list", []string{"--user", "app:nosuch"}, `--user "app:nosuch": group nosuch: no such entry in the image's /etc/group`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.userRun(nil, tc.flags, rootfs, "true")
			if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("got %v, want a failure naming %q", r, tc.want)
			}
			id := e.ids[len(e.ids)-1]
			e.assertUserRunGone(id)
			assertNoLeftovers(t, id)
			if ents, _ := os.ReadDir(e.root); len(ents) != 0 {
				t.Errorf("state root not empty: %v", ents)
			}
		})
	}
}

func TestUserRunDefaultHasCgroupNamespaceAndLandlock(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	e.mustOK("spec", "--profile", "default", "--bundle", dir)
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Annotations map[string]string `json:"annotations"`
		Linux       struct {
			Namespaces []struct{ Type string } `json:"namespaces"`
		} `json:"linux"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	if s.Annotations[oci.AnnotationLandlock] != "enforce" {
		t.Errorf("default profile does not enforce Landlock: %v", s.Annotations)
	}
	r := e.userRun(nil, nil, userRootfs(t), "cat", "/proc/self/cgroup")
	if r.code != 0 {
		t.Fatalf("%v", r)
	}
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		if !strings.HasSuffix(l, ":/") {
			t.Errorf("cgroup path visible inside the default container: %q", l)
		}
	}
}

func TestUserRunGivesTheContainerPrivateEtcFiles(t *testing.T) {
	e := newEnv(t)
	rootfs := userRootfs(t)
	hostHosts, _ := os.ReadFile("/etc/hosts")
	hostResolv, _ := os.ReadFile("/etc/resolv.conf")
	script := `cat /etc/hostname; grep -c localhost /etc/hosts; grep -c myhost /etc/hosts; cat /etc/resolv.conf | grep -c nameserver
echo evil >> /etc/hosts 2>/dev/null && echo hosts=written || echo hosts=readonly
echo evil >> /etc/resolv.conf 2>/dev/null && echo resolv=written || echo resolv=readonly`
	for _, tc := range []struct {
		net         string
		nameservers string
	}{
		{"none", "0"},
		{"host", strconv.Itoa(strings.Count(string(hostResolv), "nameserver"))},
	} {
		r := e.userRun(nil, []string{"--hostname", "myhost", "--net", tc.net}, rootfs, "sh", "-c", script)
		if r.code != 0 {
			t.Fatalf("--net %s: %v", tc.net, r)
		}
		want := "myhost\n2\n1\n" + tc.nameservers + "\nhosts=readonly\nresolv=readonly\n"
		if r.stdout != want {
			t.Errorf("--net %s: got\n%s\nwant\n%s", tc.net, r.stdout, want)
		}
		e.assertUserRunGone(e.ids[len(e.ids)-1])
	}
	if b, _ := os.ReadFile("/etc/hosts"); string(b) != string(hostHosts) {
		t.Errorf("the host's /etc/hosts changed")
	}
	if b, _ := os.ReadFile("/etc/resolv.conf"); string(b) != string(hostResolv) {
		t.Errorf("the host's /etc/resolv.conf changed")
	}
}

// A person's run killed outright cannot clean up after itself: the
// container keeps running, and it owns what the run made for it (range,
// bundle, /etc files), so delete --force removes all of it.
func TestKilledUserRunLeavesWhatItMadeToForceDelete(t *testing.T) {
	e := newEnv(t)
	rootfs := userRootfs(t)
	c, out, _ := e.startUserRun(nil, rootfs, "sh", "-c", "echo ready; sleep 100")
	if line, err := out.ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("container did not start: %q %v", line, err)
	}
	id := e.ids[len(e.ids)-1]
	if err := c.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	c.Wait()
	// Created or running, depending on whether the kill came before start
	// removed the exec fifo; alive either way.
	if st := e.state(id); st["status"] == "stopped" {
		t.Fatalf("after run was killed: %v, want the container alive", st)
	}
	own := userface.PathsOf(e.root, id)
	for _, p := range []string{own.Bundle, own.Files} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("the killed run's %s: %v, want it still there for delete", p, err)
		}
	}
	e.mustOK("delete", "--force", id)
	e.assertUserRunGone(id)
	assertNoLeftovers(t, id)
}

// TestUserRunFlagValuesKeepTheirCommas: an environment value or a tmpfs's
// options hold commas, and the run command must not split them into two
// flag values.
func TestUserRunFlagValuesKeepTheirCommas(t *testing.T) {
	e := newEnv(t)
	r := e.userRun(nil, []string{"-e", "LIST=a,b", "--tmpfs", "/scratch:size=1m,exec"}, userRootfs(t),
		"sh", "-c", `echo "$LIST"; grep -o ' /scratch tmpfs [^ ]*' /proc/self/mounts`)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "a,b\n /scratch tmpfs ") || !strings.Contains(r.stdout, "size=1024k") || strings.Contains(r.stdout, "noexec") {
		t.Errorf("want LIST=a,b and a 1 MiB exec tmpfs on /scratch, got %v", r)
	}
}
