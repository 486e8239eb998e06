package tests

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulwark-sec/bulwark/internal/testrootfs"
)

// TestProfileWorkloads runs a real workload of each profile's kind, and the
// same workload where the profile's one privilege is missing.
func TestProfileWorkloads(t *testing.T) {
	e := newEnv(t)
	rootfs := userRootfs(t)
	serveAndFetch := `/usr/local/bin/httpd -addr 127.0.0.1:80 & sleep 0.3; wget -qO- http://127.0.0.1:80/`
	tests := []struct {
		name    string
		flags   []string
		cmd     []string
		wantOK  bool
		wantOut string
	}{
		{name: "webapp serves on port 80 as uid 1000", flags: []string{"--profile", "webapp"},
			cmd: []string{"sh", "-c", "id -u; " + serveAndFetch}, wantOK: true, wantOut: "1000\nlistening 127.0.0.1:80\nok"},
		// In its own network namespace any user may bind a low port (the
		// namespace's ip_unprivileged_port_start is 0); on the host's
		// network the capability is what counts.
		{name: "default serves on port 80 as container root in its own network namespace",
			cmd: []string{"sh", "-c", "id -u; " + serveAndFetch}, wantOK: true, wantOut: "0\nlistening 127.0.0.1:80\nok"},
		{name: "webapp without NET_BIND_SERVICE cannot bind port 80 of the host's network", flags: []string{"--profile", "webapp", "--cap-drop", "NET_BIND_SERVICE", "--net", "host"},
			cmd: []string{"/usr/local/bin/httpd", "-addr", "127.0.0.1:80"}, wantOut: "EACCES"},
		{name: "default cannot bind port 80 of the host's network", flags: []string{"--net", "host"}, cmd: []string{"/usr/local/bin/httpd", "-addr", "127.0.0.1:80"}, wantOut: "EACCES"},
		{name: "database locks memory", flags: []string{"--profile", "database"},
			cmd: []string{"/usr/local/bin/mlock", "4"}, wantOK: true, wantOut: `"result": "OK"`},
		{name: "default cannot lock memory", cmd: []string{"/usr/local/bin/mlock", "4"}, wantOK: true, wantOut: `"result": "ENOMEM"`},
		{name: "netadmin configures its own interfaces", flags: []string{"--profile", "netadmin"},
			cmd: []string{"sh", "-c", "ip addr add 10.99.0.1/24 dev lo && ip addr show dev lo"}, wantOK: true, wantOut: "10.99.0.1/24"},
		{name: "default cannot configure interfaces", cmd: []string{"ip", "addr", "add", "10.99.0.1/24", "dev", "lo"}, wantOut: "Operation not permitted"},
		{name: "strict computes", flags: []string{"--profile", "strict"},
			cmd: []string{"/usr/local/bin/spin", "cpu", "0.1"}, wantOK: true, wantOut: `"op": "cpu"`},
		{name: "strict cannot open a socket", flags: []string{"--profile", "strict"}, cmd: []string{"/usr/local/bin/syscall", "socket", "AF_INET", "SOCK_STREAM"}},
		{name: "strict writes scratch files in /tmp", flags: []string{"--profile", "strict"}, cmd: []string{"sh", "-c", "echo scratch > /tmp/f && cat /tmp/f"}, wantOK: true, wantOut: "scratch"},
		{name: "strict cannot write outside /tmp", flags: []string{"--profile", "strict"}, cmd: []string{"sh", "-c", "echo x > /f"}, wantOut: "Read-only file system"},
		{name: "strict cannot start another program", flags: []string{"--profile", "strict"}, cmd: []string{"sh", "-c", "/usr/local/bin/spin cpu 0.01; echo after"}, wantOut: "can't fork"},
		{name: "dev writes and chowns in its rootfs", flags: []string{"--profile", "dev"},
			cmd: []string{"sh", "-c", "touch /devfile && chown 1000:1000 /devfile && stat -c %u /devfile && rm /devfile"}, wantOK: true, wantOut: "1000"},
		{name: "dev still cannot mount", flags: []string{"--profile", "dev"}, cmd: []string{"/usr/local/bin/syscall", "mount"}, wantOK: true, wantOut: "EPERM"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.userRun(nil, tc.flags, rootfs, tc.cmd...)
			out := r.stdout + r.stderr
			if (r.code == 0) != tc.wantOK || !strings.Contains(out, tc.wantOut) {
				t.Errorf("got %v\nwant success=%v and output containing %q", r, tc.wantOK, tc.wantOut)
			}
			if !tc.wantOK && strings.Contains(r.stdout, "OK") {
				t.Errorf("refused operation reported OK: %v", r)
			}
			e.assertUserRunGone(e.ids[len(e.ids)-1])
		})
	}
	// netadmin's address went to the container's namespace, not the host's.
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if strings.HasPrefix(a.String(), "10.99.0.1/") {
			t.Errorf("the host has the container's address %s", a)
		}
	}
}

// loopDevice attaches a small file holding content to a free loop device
// and detaches it when the test ends.
func loopDevice(t *testing.T, content string) string {
	t.Helper()
	losetup := testrootfs.RequireBinary(t, "losetup")
	img := filepath.Join(t.TempDir(), "disk.img")
	data := append([]byte(content), bytes.Repeat([]byte{0}, 1<<20-len(content))...)
	if err := os.WriteFile(img, data, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(losetup, "-f", "--show", img).CombinedOutput()
	if err != nil {
		t.Skipf("losetup: %v: %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command(losetup, "-d", dev).Run() })
	return dev
}

func TestRawdiskProfileGivesOnlyTheNamedDisk(t *testing.T) {
	e := newEnv(t)
	rootfs := userRootfs(t)
	mine := loopDevice(t, "BWDISK-MINE")
	other := loopDevice(t, "BWDISK-OTHER")
	tests := []struct {
		name   string
		flags  []string
		path   string
		wantOK bool
	}{
		{name: "the named disk is readable", flags: []string{"--profile", "rawdisk", "--device", mine}, path: mine, wantOK: true},
		// Bound in as a volume, bypassing --device: nodev and the devices
		// cgroup both stand in the way.
		{name: "another block device is not", flags: []string{"--profile", "rawdisk", "--device", mine, "-v", other + ":/mnt/other"}, path: "/mnt/other"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.userRun(nil, tc.flags, rootfs, "head", "-c", "6", tc.path)
			if ok := r.code == 0 && r.stdout == "BWDISK"; ok != tc.wantOK {
				t.Errorf("read of %s: %v, want success=%v", tc.path, r, tc.wantOK)
			}
			e.assertUserRunGone(e.ids[len(e.ids)-1])
		})
	}
	if r := e.userRun(nil, []string{"--profile", "rawdisk"}, rootfs, "true"); r.code == 0 || !strings.Contains(r.stderr, "--device") {
		t.Errorf("rawdisk without --device: %v", r)
	}
}

func TestGPUProfileWithoutGPUNodesSaysSo(t *testing.T) {
	for _, pat := range []string{"/dev/dri/*", "/dev/nvidia*"} {
		if m, _ := filepath.Glob(pat); len(m) > 0 {
			t.Skip("this host has GPU nodes")
		}
	}
	e := newEnv(t)
	r := e.userRun(nil, []string{"--profile", "gpu"}, userRootfs(t), "true")
	if r.code == 0 || !strings.Contains(r.stderr, "--device") {
		t.Errorf("gpu without nodes: %v", r)
	}
}

// TestUnprivilegedPortStartIsTheContainersOwn: the person face lowers
// net.ipv4.ip_unprivileged_port_start to 0 in the container's own network
// namespace only; the host's value, and what a --net host container sees,
// stay the host's.
func TestUnprivilegedPortStartIsTheContainersOwn(t *testing.T) {
	const p = "/proc/sys/net/ipv4/ip_unprivileged_port_start"
	before, err := os.ReadFile(p)
	if err != nil {
		t.Skipf("this kernel has no %s: %v", p, err)
	}
	e := newEnv(t)
	rootfs := userRootfs(t)
	for _, tc := range []struct {
		name  string
		flags []string
		want  string
	}{
		{"own network namespace", nil, "0\n"},
		{"netadmin", []string{"--profile", "netadmin"}, "0\n"},
		{"host network", []string{"--net", "host"}, string(before)},
		// Written by the runtime: the container's root does not own a
		// namespace attached to a bridge.
		{"bridge network", []string{"--net", "bridge"}, "0\n"},
	} {
		r := e.userRun(nil, tc.flags, rootfs, "cat", p)
		if r.code != 0 || r.stdout != tc.want {
			t.Errorf("%s: want %q, got %v", tc.name, tc.want, r)
		}
	}
	after, err := os.ReadFile(p)
	if err != nil || string(after) != string(before) {
		t.Errorf("the host's %s changed from %q to %q (%v)", p, before, after, err)
	}
}
