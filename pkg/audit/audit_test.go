package audit

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/pkg/finding"
	"github.com/bulwark-sec/bulwark/pkg/oci"
	"github.com/bulwark-sec/bulwark/pkg/policy"
)

// hardened is what `bulwark spec --profile default` writes.
func hardened(t *testing.T) *specs.Spec {
	t.Helper()
	s, err := policy.Spec("default")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func find(fs []finding.Finding, id, subject string) (finding.Finding, bool) {
	for _, f := range fs {
		if f.ID == id && (subject == "" || f.Subject == subject) {
			return f, true
		}
	}
	return finding.Finding{}, false
}

func ids(fs []finding.Finding) string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Severity.String()+":"+f.ID+"@"+f.Subject)
	}
	return strings.Join(out, " ")
}

func TestHardenedConfigHasNoHighFindings(t *testing.T) {
	fs, err := Audit([]Subject{{Format: FormatOCI, Spec: hardened(t)}})
	if err != nil {
		t.Fatal(err)
	}
	if n := finding.AtOrAbove(fs, finding.Medium); n != 0 {
		t.Errorf("the default profile has %d findings at or above medium: %s", n, ids(fs))
	}
}

func TestConfigFindings(t *testing.T) {
	allCaps := oci.KnownCapabilities()
	for _, tc := range []struct {
		name   string
		change func(s *specs.Spec)
		id     string
		sev    finding.Severity
		absent string // a finding this case must not also raise
	}{
		{"privileged shape", func(s *specs.Spec) {
			s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: allCaps, Effective: allCaps, Permitted: allCaps}
			s.Linux.Seccomp = nil
			s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
		}, "privileged", finding.Critical, "cap-sys-admin"},
		{"all caps", func(s *specs.Spec) {
			s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: allCaps}
		}, "caps-all", finding.Critical, "cap-sys-admin"},
		{"CAP_SYS_ADMIN", func(s *specs.Spec) {
			s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: []string{"CAP_SYS_ADMIN"}}
		}, "cap-sys-admin", finding.Critical, "privileged"},
		{"shocker", func(s *specs.Spec) {
			s.Process.Capabilities = &specs.LinuxCapabilities{Effective: []string{"CAP_DAC_READ_SEARCH"}}
		}, "cap-dac-read-search", finding.High, ""},
		{"SYS_MODULE in ambient", func(s *specs.Spec) {
			s.Process.Capabilities = &specs.LinuxCapabilities{Ambient: []string{"sys_module"}}
		}, "cap-sys-module", finding.Critical, ""},
		{"NET_ADMIN", func(s *specs.Spec) {
			s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: []string{"CAP_NET_ADMIN"}}
		}, "cap-net-admin", finding.High, ""},
		{"no seccomp", func(s *specs.Spec) { s.Linux.Seccomp = nil }, "seccomp-none", finding.High, ""},
		{"unconfined seccomp", func(s *specs.Spec) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}
		}, "seccomp-unconfined", finding.High, "seccomp-none"},
		{"denylist seccomp", func(s *specs.Spec) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"vmsplice"}, Action: specs.ActErrno}}}
		}, "seccomp-denylist", finding.Medium, ""},
		{"no user namespace", func(s *specs.Spec) { oci.RemoveNamespace(s, specs.UserNamespace) }, "userns-none", finding.Medium, ""},
		{"user namespace mapping host root", func(s *specs.Spec) {
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 0, Size: 65536}}
		}, "userns-maps-root", finding.High, "userns-none"},
		{"host pid", func(s *specs.Spec) { oci.RemoveNamespace(s, specs.PIDNamespace) }, "host-pid", finding.High, ""},
		{"host network", func(s *specs.Spec) { oci.RemoveNamespace(s, specs.NetworkNamespace) }, "host-network", finding.High, ""},
		{"host ipc", func(s *specs.Spec) { oci.RemoveNamespace(s, specs.IPCNamespace) }, "host-ipc", finding.Medium, ""},
		{"host uts", func(s *specs.Spec) { oci.RemoveNamespace(s, specs.UTSNamespace) }, "host-uts", finding.Low, ""},
		{"pid ns joined from the host", func(s *specs.Spec) {
			oci.SetNamespace(s, specs.LinuxNamespace{Type: specs.PIDNamespace, Path: "/proc/1/ns/pid"})
		}, "host-pid", finding.High, ""},
		{"docker.sock", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/var/run/docker.sock", Type: "bind", Source: "/var/run/docker.sock", Options: []string{"rbind"}})
		}, "mount-runtime-socket", finding.Critical, ""},
		{"docker.sock read-only is still critical", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/sock", Source: "/run/docker.sock", Options: []string{"bind", "ro"}})
		}, "mount-runtime-socket", finding.Critical, ""},
		{"/var holds docker.sock", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/hostvar", Type: "bind", Source: "/var", Options: []string{"rbind"}})
		}, "mount-runtime-socket", finding.Critical, ""},
		{"host root", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/host", Type: "bind", Source: "/", Options: []string{"rbind"}})
		}, "mount-host-root", finding.Critical, "mount-runtime-socket"},
		{"host /proc", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/hostproc", Type: "bind", Source: "/proc", Options: []string{"rbind"}})
		}, "mount-host-proc", finding.Critical, ""},
		{"host /sys", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/hostsys", Type: "bind", Source: "/sys/", Options: []string{"rbind"}})
		}, "mount-host-sys", finding.High, ""},
		{"host /dev", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/hostdev", Type: "bind", Source: "/dev", Options: []string{"rbind"}})
		}, "mount-host-dev", finding.Critical, ""},
		{"host /etc", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/hostetc", Type: "bind", Source: "/etc", Options: []string{"rbind"}})
		}, "mount-host-etc", finding.High, ""},
		{"one /etc file read-only", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/etc/localtime", Type: "bind", Source: "/etc/localtime", Options: []string{"rbind", "ro"}})
		}, "mount-host-etc", finding.Low, ""},
		{"other host path", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: "/srv/data", Options: []string{"rbind"}})
		}, "mount-host-path", finding.Low, ""},
		{"a disk", func(s *specs.Spec) {
			s.Linux.Devices = append(s.Linux.Devices, specs.LinuxDevice{Path: "/dev/sda", Type: "b"})
		}, "device", finding.High, ""},
		{"a tty", func(s *specs.Spec) {
			s.Linux.Devices = append(s.Linux.Devices, specs.LinuxDevice{Path: "/dev/ttyUSB0", Type: "c"})
		}, "device", finding.Medium, ""},
		{"every device", func(s *specs.Spec) {
			s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, specs.LinuxDeviceCgroup{Allow: true, Access: "rwm"})
		}, "devices-all", finding.High, ""},
		{"writable rootfs", func(s *specs.Spec) { s.Root.Readonly = false }, "rootfs-writable", finding.Low, ""},
		{"no memory limit", func(s *specs.Spec) { s.Linux.Resources.Memory = nil }, "memory-unlimited", finding.Low, ""},
		{"no pids limit", func(s *specs.Spec) { s.Linux.Resources.Pids = nil }, "pids-unlimited", finding.Medium, ""},
		{"root without userns", func(s *specs.Spec) {
			oci.RemoveNamespace(s, specs.UserNamespace)
			s.Process.User = specs.User{}
		}, "user-root", finding.Medium, ""},
		{"no no_new_privs", func(s *specs.Spec) { s.Process.NoNewPrivileges = false }, "no-new-privileges-off", finding.Medium, ""},
		{"/proc/sys writable without userns", func(s *specs.Spec) {
			oci.RemoveNamespace(s, specs.UserNamespace)
			s.Linux.ReadonlyPaths = nil
		}, "proc-sys-writable", finding.High, ""},
		{"/proc/sys writable in a userns", func(s *specs.Spec) { s.Linux.ReadonlyPaths = nil }, "proc-sys-writable", finding.Low, ""},
		{"masked paths missing", func(s *specs.Spec) { s.Linux.MaskedPaths = []string{"/proc/kcore"} }, "masked-paths-missing", finding.Medium, ""},
		{"writable cgroupfs", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup"})
		}, "cgroupfs-writable", finding.High, ""},
		{"no mount namespace", func(s *specs.Spec) { oci.RemoveNamespace(s, specs.MountNamespace) }, "host-mount-ns", finding.Critical, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := hardened(t)
			tc.change(s)
			fs, err := Audit([]Subject{{Format: FormatOCI, Spec: s}})
			if err != nil {
				t.Fatal(err)
			}
			f, ok := find(fs, tc.id, "")
			if !ok {
				t.Fatalf("no %s finding; got %s", tc.id, ids(fs))
			}
			if f.Severity != tc.sev {
				t.Errorf("%s: severity %s, want %s", tc.id, f.Severity, tc.sev)
			}
			if f.Reason == "" || f.Fix == "" || f.Where == "" {
				t.Errorf("%s: reason, fix and where must be set: %+v", tc.id, f)
			}
			if tc.absent != "" {
				if _, ok := find(fs, tc.absent, ""); ok {
					t.Errorf("%s also raised %s: %s", tc.name, tc.absent, ids(fs))
				}
			}
		})
	}
}

func TestDockerInspect(t *testing.T) {
	subs, format, err := Load("testdata/docker-inspect.json", nil)
	if err != nil {
		t.Fatal(err)
	}
	if format != FormatDocker || len(subs) != 2 {
		t.Fatalf("format %s, %d subjects", format, len(subs))
	}
	fs, err := Audit(subs)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct {
		id, subject, where string
		sev                finding.Severity
	}{
		{"privileged", "ci-runner", "HostConfig.Privileged", finding.Critical},
		{"mount-runtime-socket", "ci-runner", "Mounts (/var/run/docker.sock)", finding.Critical},
		{"host-network", "ci-runner", "HostConfig.NetworkMode", finding.High},
		{"userns-none", "ci-runner", "HostConfig.UsernsMode", finding.Medium},
		{"user-root", "ci-runner", "Config.User", finding.Medium},
		{"cap-net-admin", "web", "HostConfig.CapAdd", finding.High},
		{"cap-sys-ptrace", "web", "HostConfig.CapAdd", finding.High},
		{"seccomp-none", "web", "HostConfig.SecurityOpt", finding.High},
		{"device", "web", "HostConfig.Devices[0]", finding.High},
		{"mount-host-etc", "web", "Mounts (/etc/localtime)", finding.Low},
	} {
		f, ok := find(fs, want.id, want.subject)
		if !ok {
			t.Errorf("no %s for %s; got %s", want.id, want.subject, ids(fs))
			continue
		}
		if f.Severity != want.sev || f.Where != want.where {
			t.Errorf("%s for %s: %s at %q, want %s at %q", want.id, want.subject, f.Severity, f.Where, want.sev, want.where)
		}
	}
	for _, no := range []struct{ id, subject string }{
		{"cap-net-raw", "web"}, {"no-new-privileges-off", "web"}, {"masked-paths-missing", "web"}, {"user-root", "web"},
		{"rootfs-writable", "web"}, {"pids-unlimited", "web"}, {"memory-unlimited", "web"}, {"mount-host-path", "web"},
		{"cap-sys-admin", "ci-runner"}, // privileged says it once
	} {
		if _, ok := find(fs, no.id, no.subject); ok {
			t.Errorf("unexpected %s for %s", no.id, no.subject)
		}
	}
}

func TestKubernetesYAML(t *testing.T) {
	subs, format, err := Load("testdata/pod.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if format != FormatKubernetes || len(subs) != 2 {
		t.Fatalf("format %s, %d subjects", format, len(subs))
	}
	fs, err := Audit(subs)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct {
		id, subject string
		sev         finding.Severity
	}{
		{"cap-sys-admin", "node-agent/agent", finding.Critical},
		{"cap-dac-read-search", "node-agent/agent", finding.High},
		{"host-pid", "node-agent/agent", finding.High},
		{"mount-runtime-socket", "node-agent/agent", finding.Critical},
		{"mount-host-root", "node-agent/agent", finding.High}, // read-only: one lower
		{"seccomp-none", "node-agent/agent", finding.High},
		{"no-new-privileges-off", "node-agent/agent", finding.Medium},
		{"pids-unlimited", "web/app", finding.Info},
	} {
		f, ok := find(fs, want.id, want.subject)
		if !ok {
			t.Errorf("no %s for %s; got %s", want.id, want.subject, ids(fs))
		} else if f.Severity != want.sev {
			t.Errorf("%s for %s: %s, want %s", want.id, want.subject, f.Severity, want.sev)
		}
	}
	var web []finding.Finding
	for _, f := range fs {
		if f.Subject == "web/app" {
			web = append(web, f)
		}
	}
	if n := finding.AtOrAbove(web, finding.Medium); n != 0 {
		t.Errorf("the hardened pod has %d findings at or above medium: %s", n, ids(web))
	}
}

// vfsCapV2 builds a security.capability value granting caps (effective).
func vfsCapV2(bits ...int) []byte {
	b := make([]byte, 20)
	binary.LittleEndian.PutUint32(b, 0x02000001)
	var perm uint64
	for _, c := range bits {
		perm |= 1 << c
	}
	binary.LittleEndian.PutUint32(b[4:], uint32(perm))
	binary.LittleEndian.PutUint32(b[12:], uint32(perm>>32))
	return b
}

func TestImageFindings(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root: setuid-root files and security.capability xattrs")
	}
	root := t.TempDir()
	mk := func(rel string, mode os.FileMode) string {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("#!/bin/true\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	mk("bin/sh", 0o755|os.ModeSetuid)
	mk("usr/bin/passwd", 0o755|os.ModeSetuid)
	mk("usr/bin/wall", 0o755|os.ModeSetgid)
	mk("bin/ls", 0o755) // clean
	ping := mk("bin/ping", 0o755)
	tool := mk("usr/sbin/tool", 0o755)
	for p, v := range map[string][]byte{ping: vfsCapV2(unix.CAP_NET_RAW), tool: vfsCapV2(unix.CAP_SYS_ADMIN, unix.CAP_NET_RAW)} {
		if err := unix.Setxattr(p, "security.capability", v, 0); err != nil {
			t.Skipf("setxattr security.capability: %v (filesystem without xattrs?)", err)
		}
	}
	for _, d := range []struct {
		rel  string
		mode os.FileMode
	}{{"srv/drop", 0o777}, {"tmp", 0o777 | os.ModeSticky}} {
		p := filepath.Join(root, d.rel)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, d.mode); err != nil {
			t.Fatal(err)
		}
	}
	subs, format, err := Load(root, nil)
	if err != nil || format != FormatRootfs {
		t.Fatalf("Load: %v, %s", err, format)
	}
	fs, err := Audit(subs)
	if err != nil {
		t.Fatal(err)
	}
	byWhere := map[string]finding.Finding{}
	for _, f := range fs {
		byWhere[f.ID+" "+f.Where] = f
	}
	for _, want := range []struct {
		key string
		sev finding.Severity
		msg string
	}{
		{"image-suid-shell /bin/sh", finding.High, "setuid-root shell"},
		{"image-suid /usr/bin/passwd", finding.Medium, "uid 0"},
		{"image-sgid /usr/bin/wall", finding.Low, "setgid"},
		{"image-file-caps /bin/ping", finding.Low, "CAP_NET_RAW"},
		{"image-file-caps /usr/sbin/tool", finding.High, "CAP_SYS_ADMIN"},
		{"image-world-writable-dir /srv/drop", finding.Medium, "sticky"},
	} {
		f, ok := byWhere[want.key]
		if !ok {
			t.Errorf("no %s; got %v", want.key, ids(fs))
			continue
		}
		if f.Severity != want.sev || !strings.Contains(f.Message, want.msg) {
			t.Errorf("%s: %s %q, want %s and %q", want.key, f.Severity, f.Message, want.sev, want.msg)
		}
	}
	if len(fs) != 6 {
		t.Errorf("%d findings, want 6 (the sticky /tmp and /bin/ls are clean): %s", len(fs), ids(fs))
	}
	// docker inspect's MergedDir is scanned when it exists on this host.
	inspect := `[{"Name": "/x", "HostConfig": {}, "GraphDriver": {"Data": {"MergedDir": "` + root + `"}}}]`
	subs, err = ParseDocker("inspect.json", []byte(inspect))
	if err != nil {
		t.Fatal(err)
	}
	fs, _ = Audit(subs)
	if f, ok := find(fs, "image-suid-shell", "x"); !ok || f.Severity != finding.High {
		t.Errorf("docker MergedDir not scanned: %s", ids(fs))
	}
	// The same tree as a bundle's rootfs is scanned along with the config.
	bundle := t.TempDir()
	s := hardened(t)
	s.Root.Path = root
	b, _ := jsonMarshal(s)
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	subs, _, err = Load(bundle, nil)
	if err != nil {
		t.Fatal(err)
	}
	fs, _ = Audit(subs)
	if f, ok := find(fs, "image-suid-shell", ""); !ok {
		t.Errorf("bundle audit did not scan root.path: %s", ids(fs))
	} else if f.Severity != finding.Low || !strings.Contains(f.Message, "no_new_privs") {
		t.Errorf("under no_new_privs a setuid shell grants nothing: %s %q", f.Severity, f.Message)
	}
}

func TestImageLayers(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root: setuid-root files and whiteout devices")
	}
	lower, upper := t.TempDir(), t.TempDir()
	for _, f := range []struct {
		dir, rel string
		mode     os.FileMode
	}{
		{lower, "bin/sh", 0o755 | os.ModeSetuid},
		{lower, "usr/bin/su", 0o755 | os.ModeSetuid},
		{upper, "usr/bin/su", 0o755 | os.ModeSetuid}, // same path in two layers: once
		{upper, "usr/bin/passwd", 0o755 | os.ModeSetuid},
	} {
		p := filepath.Join(f.dir, f.rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, nil, 0o755); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, f.mode)
	}
	// The upper layer deletes /bin/sh.
	os.MkdirAll(filepath.Join(upper, "bin"), 0o755)
	if err := unix.Mknod(filepath.Join(upper, "bin/sh"), unix.S_IFCHR, 0); err != nil {
		t.Skipf("mknod whiteout: %v", err)
	}
	fs, err := Audit([]Subject{ImageSubject("example:1", []string{lower, upper}, "")})
	if err != nil {
		t.Fatal(err)
	}
	got := ids(fs)
	want := map[string]int{"image-suid /usr/bin/su": 1, "image-suid /usr/bin/passwd": 1, "image-user-root config.User": 1}
	for _, f := range fs {
		want[f.ID+" "+f.Where]--
	}
	for k, n := range want {
		if n != 0 {
			t.Errorf("%s: off by %d; got %s", k, n, got)
		}
	}
	if len(fs) != 3 {
		t.Errorf("the whited-out /bin/sh or a duplicate is reported: %s", got)
	}
	if fs, _ := Audit([]Subject{ImageSubject("example:1", nil, "1000:1000")}); len(fs) != 0 {
		t.Errorf("non-root image user: %s", ids(fs))
	}
}

func TestDecodeFileCaps(t *testing.T) {
	got, err := DecodeFileCaps(vfsCapV2(unix.CAP_NET_BIND_SERVICE, unix.CAP_CHECKPOINT_RESTORE))
	if err != nil || !slices.Equal(got, []string{"CAP_NET_BIND_SERVICE", "CAP_CHECKPOINT_RESTORE"}) {
		t.Errorf("got %v, %v", got, err)
	}
	for _, bad := range [][]byte{nil, make([]byte, 12), {0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}} {
		if _, err := DecodeFileCaps(bad); err == nil {
			t.Errorf("DecodeFileCaps(%x) accepted", bad)
		}
	}
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name, path string
		want       []string
	}{
		{"missing file", filepath.Join(dir, "nope.json"), []string{"nope.json", "no such file"}},
		{"malformed JSON", write("bad.json", "{\n  \"ociVersion\": \"1.0.2\",\n  \"process\": {,\n}"), []string{"bad.json", "line 3"}},
		{"wrong type", write("type.json", `{"ociVersion": "1.0.2", "process": {"args": "sh"}}`), []string{"type.json", "process.args", "want []string"}},
		{"no process", write("noproc.json", `{"ociVersion": "1.0.2"}`), []string{"noproc.json", "process", "missing"}},
		{"unknown JSON", write("other.json", `{"name": "x"}`), []string{"other.json", "unknown format"}},
		{"empty", write("empty.json", "  \n"), []string{"empty.json", "empty"}},
		{"empty inspect", write("inspect.json", "[]"), []string{"inspect.json", "no container"}},
		{"image inspect", write("image.json", `[{"Id": "sha256:1", "RepoTags": ["x"], "Config": {}}]`), []string{"image.json", "[0].HostConfig", "image"}},
		{"inspect wrong type", write("inspect2.json", `[{"HostConfig": {"Privileged": "yes"}}]`), []string{"inspect2.json", "HostConfig.Privileged"}},
		{"malformed YAML", write("pod.yaml", "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: a\n   image: b\n"), []string{"pod.yaml", "YAML"}},
		{"YAML without kind", write("nokind.yaml", "apiVersion: v1\nspec: {}\n"), []string{"nokind.yaml", "kind"}},
		{"Deployment without template", write("dep.yaml", "apiVersion: apps/v1\nkind: Deployment\nspec: {replicas: 1}\n"), []string{"dep.yaml", "spec.template"}},
		{"pod without containers", write("pod2.yaml", "apiVersion: v1\nkind: Pod\nspec: {containers: []}\n"), []string{"pod2.yaml", "containers"}},
		{"pod wrong type", write("pod3.yaml", "apiVersion: v1\nkind: Pod\nspec: {hostPID: maybe, containers: [{name: a}]}\n"), []string{"pod3.yaml", "hostPID"}},
		{"plain text", write("notes.txt", "just some words\n"), []string{"notes.txt"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Load(tc.path, nil)
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrInput) {
				t.Errorf("error does not wrap ErrInput: %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestKubernetesList(t *testing.T) {
	list := `apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: a}
  spec:
    hostNetwork: true
    containers: [{name: c, image: x}]
- apiVersion: v1
  kind: Pod
  metadata: {name: b}
  spec:
    containers: [{name: c, image: x, securityContext: {privileged: true}}]
`
	subs, err := ParseKubernetes("pods.yaml", []byte(list))
	if err != nil || len(subs) != 2 {
		t.Fatalf("%d subjects, %v", len(subs), err)
	}
	fs, _ := Audit(subs)
	if _, ok := find(fs, "host-network", "a/c"); !ok {
		t.Errorf("no host-network for a/c: %s", ids(fs))
	}
	if _, ok := find(fs, "privileged", "b/c"); !ok {
		t.Errorf("no privileged for b/c: %s", ids(fs))
	}
	_, err = ParseKubernetes("pods.yaml", []byte("kind: List\nitems:\n- kind: Pod\n  spec: {}\n"))
	if err == nil || !strings.Contains(err.Error(), "items[0].spec.containers") {
		t.Errorf("error %v does not name items[0].spec.containers", err)
	}
}

func TestStdin(t *testing.T) {
	b, err := os.ReadFile("testdata/docker-inspect.json")
	if err != nil {
		t.Fatal(err)
	}
	subs, format, err := Load("-", strings.NewReader(string(b)))
	if err != nil || format != FormatDocker || len(subs) != 2 {
		t.Fatalf("stdin: %v %s %d", err, format, len(subs))
	}
}
