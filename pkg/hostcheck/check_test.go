package hostcheck

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulwark-sec/bulwark/pkg/finding"
)

func TestKernelCVETable(t *testing.T) {
	for _, tc := range []struct {
		kernel string
		cve    string
		want   bool
	}{
		{"5.10.101", "CVE-2022-0847", true},
		{"5.10.102", "CVE-2022-0847", false},
		{"5.7.19", "CVE-2022-0847", false}, // before the bug
		{"5.13.19", "CVE-2022-0847", true}, // end-of-life branch, never fixed
		{"5.17.0", "CVE-2022-0847", false},
		{"6.1.75", "CVE-2024-1086", true},
		{"6.1.76", "CVE-2024-1086", false},
		{"6.7.2", "CVE-2024-1086", true},
		{"6.8.0", "CVE-2024-1086", false},
		{"3.14.79", "CVE-2024-1086", false}, // nf_tables bug came in 3.15
		{"4.4.25", "CVE-2016-5195", true},
		{"4.4.26", "CVE-2016-5195", false},
		{"2.6.24.1", "CVE-2008-0600", true},
		{"2.6.24.2", "CVE-2008-0600", false},
		{"2.6.16", "CVE-2008-0600", false},
		{"5.15.19", "CVE-2022-0492", true},
		{"5.15.20", "CVE-2022-0492", false},
		{"5.16.1", "CVE-2022-0185", true},
		{"5.4.173", "CVE-2022-0185", false},
		{"5.0.21", "CVE-2022-0185", false},
		{"5.11.14", "CVE-2021-22555", true},
		{"5.11.15", "CVE-2021-22555", false}, // not 5.11.16
		{"5.12.0", "CVE-2021-22555", false},
		// Checked against each entry's FixSource.
		{"3.16.37", "CVE-2016-5195", true},
		{"3.16.38", "CVE-2016-5195", false}, // was missing
		{"4.1.34", "CVE-2016-5195", true},
		{"4.1.35", "CVE-2016-5195", false}, // was missing
		{"3.12.65", "CVE-2016-5195", true},
		{"3.12.66", "CVE-2016-5195", false},
		{"3.18.44", "CVE-2016-5195", false},
		{"4.7.8", "CVE-2016-5195", true},
		{"4.8.3", "CVE-2016-5195", false},
		{"3.2.102", "CVE-2016-5195", true},  // no fix found on the 3.2 branch
		{"3.10.108", "CVE-2016-5195", true}, // 3.10: unchecked, so unfixed
		{"2.6.21", "CVE-2016-5195", false},  // before the bug
		{"2.6.22.17", "CVE-2008-0600", true},
		{"2.6.22.18", "CVE-2008-0600", false},
		{"2.6.23.17", "CVE-2008-0600", true}, // 2.6.23: unchecked
		{"4.19.306", "CVE-2024-1086", true},  // was listed as fixed
		{"4.19.307", "CVE-2024-1086", false},
		{"5.10.209", "CVE-2024-1086", true}, // was listed as fixed
		{"5.10.210", "CVE-2024-1086", false},
		{"5.4.268", "CVE-2024-1086", true},
		{"5.15.149", "CVE-2024-1086", false},
		{"6.6.14", "CVE-2024-1086", true},
		{"4.9.300", "CVE-2022-0492", true},
		{"4.9.301", "CVE-2022-0492", false},
		{"5.16.5", "CVE-2022-0492", true},
		{"5.15.15", "CVE-2022-0185", true},
		{"5.15.16", "CVE-2022-0185", false},
		{"5.15.24", "CVE-2022-0847", true},
		{"5.15.25", "CVE-2022-0847", false},
		{"5.16.10", "CVE-2022-0847", true},
	} {
		k, err := ParseVersion(tc.kernel)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range KernelCVEs {
			if c.ID == tc.cve {
				if got := c.Affected(k); got != tc.want {
					t.Errorf("%s on %s: affected %v, want %v", tc.cve, tc.kernel, got, tc.want)
				}
			}
		}
	}
	for _, c := range KernelCVEs {
		if !strings.HasPrefix(c.Source, "https://") || !strings.HasPrefix(c.FixSource, "https://") || c.Impact == "" || len(c.Stable) == 0 {
			t.Errorf("%s: source, fix source, impact and stable fixes are required", c.ID)
		}
		for i, f := range c.Stable {
			if f.Compare(c.Introduced) <= 0 || f.Compare(c.Mainline) >= 0 || i > 0 && f.Compare(c.Stable[i-1]) <= 0 {
				t.Errorf("%s: stable fix %s out of order or outside [%s, %s)", c.ID, f, c.Introduced, c.Mainline)
			}
		}
		if c.ID == "CVE-2019-5736" {
			t.Errorf("CVE-2019-5736 is runc's, not the kernel's")
		}
	}
}

func TestParseVersion(t *testing.T) {
	for in, want := range map[string]string{"6.1.0-18-amd64": "6.1.0", "5.15.0-91-generic": "5.15.0", "6.18.44-fc-v1272": "6.18.44", "2.6.24.2": "2.6.24.2", "6.8": "6.8",
		"1.2.3.4.5": "1.2.3.4", " 6.1\n": "6.1", "6.1.-rc1": "6.1"} {
		v, err := ParseVersion(in)
		if err != nil || v.String() != want {
			t.Errorf("ParseVersion(%q) = %v, %v; want %s", in, v, err, want)
		}
	}
	for _, bad := range []string{"", "linux", "6", "x.y", "6.", "6.-1", "-6.1", "99999999999999999999.1"} {
		if _, err := ParseVersion(bad); err == nil {
			t.Errorf("ParseVersion(%q) accepted", bad)
		}
	}
}

// goodRoot builds a host tree with nothing to report above info.
func goodRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	files := map[string]string{
		"proc/sys/kernel/osrelease":                 "6.12.10-generic",
		"proc/version":                              "Linux version 6.12.10-generic (gcc) #1 SMP",
		"proc/sys/kernel/kptr_restrict":             "1",
		"proc/sys/kernel/dmesg_restrict":            "1",
		"proc/sys/kernel/perf_event_paranoid":       "3",
		"proc/sys/kernel/unprivileged_bpf_disabled": "2",
		"proc/sys/kernel/yama/ptrace_scope":         "1",
		"proc/sys/dev/tty/legacy_tiocsti":           "0",
		"proc/sys/kernel/randomize_va_space":        "2",
		"proc/sys/user/max_user_namespaces":         "15000",
		"proc/sys/kernel/unprivileged_userns_clone": "0",
		"proc/sys/kernel/seccomp/actions_avail":     "kill_process kill_thread trap errno user_notif trace log allow",
		"sys/kernel/security/lsm":                   "lockdown,capability,landlock,yama,apparmor",
		"sys/fs/cgroup/cgroup.controllers":          "cpu memory pids",
		"etc/bulwark/policy.json":                   `{"harden": true}`,
	}
	for p, c := range files {
		write(t, root, p, c)
	}
	if err := os.MkdirAll(filepath.Join(root, "run/bulwark"), 0o700); err != nil {
		t.Fatal(err)
	}
	return root
}

func write(t *testing.T, root, p, content string) {
	t.Helper()
	full := filepath.Join(root, p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(content+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func run(t *testing.T, root string) *Result {
	t.Helper()
	r, err := Check(Options{Root: root, StateDir: "/run/bulwark", PolicyPath: "/etc/bulwark/policy.json"})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func idsOf(fs []finding.Finding) string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Severity.String()+":"+f.ID)
	}
	return strings.Join(out, " ")
}

func TestGoodRootIsClean(t *testing.T) {
	r := run(t, goodRoot(t))
	if n := finding.AtOrAbove(r.Findings, finding.Low); n != 0 {
		t.Errorf("%d findings on a hardened host: %s", n, idsOf(r.Findings))
	}
	for k, want := range map[string]string{"kernel": "6.12.10-generic", "cgroup": "v2 (unified)", "lsm": "lockdown,capability,landlock,yama,apparmor", "/dev/kvm": "absent"} {
		if r.Facts[k] != want {
			t.Errorf("fact %s = %q, want %q", k, r.Facts[k], want)
		}
	}
}

func TestCheckFlipsEachFinding(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, root string)
		id     string
		sev    finding.Severity
	}{
		{"Dirty Pipe kernel", func(t *testing.T, r string) { write(t, r, "proc/sys/kernel/osrelease", "5.10.101") }, "kernel-cve-2022-0847", finding.Critical},
		{"CVE-2024-1086 kernel", func(t *testing.T, r string) { write(t, r, "proc/sys/kernel/osrelease", "6.6.14-custom") }, "kernel-cve-2024-1086", finding.Critical},
		{"Dirty COW kernel", func(t *testing.T, r string) { write(t, r, "proc/sys/kernel/osrelease", "4.4.21") }, "kernel-cve-2016-5195", finding.Critical},
		{"release_agent kernel", func(t *testing.T, r string) { write(t, r, "proc/sys/kernel/osrelease", "5.4.176") }, "kernel-cve-2022-0492", finding.Critical},
		{"unreadable release", func(t *testing.T, r string) { os.Remove(filepath.Join(r, "proc/sys/kernel/osrelease")) }, "kernel-unknown", finding.Medium},
		{"kptr_restrict", func(t *testing.T, r string) { write(t, r, "proc/sys/kernel/kptr_restrict", "0") }, "sysctl-kernel.kptr_restrict", finding.Medium},
		{"dmesg_restrict", func(t *testing.T, r string) { write(t, r, "proc/sys/kernel/dmesg_restrict", "0") }, "sysctl-kernel.dmesg_restrict", finding.Low},
		{"perf_event_paranoid", func(t *testing.T, r string) { write(t, r, "proc/sys/kernel/perf_event_paranoid", "1") }, "sysctl-kernel.perf_event_paranoid", finding.Medium},
		{"unprivileged bpf", func(t *testing.T, r string) { write(t, r, "proc/sys/kernel/unprivileged_bpf_disabled", "0") }, "sysctl-kernel.unprivileged_bpf_disabled", finding.High},
		{"ptrace_scope", func(t *testing.T, r string) { write(t, r, "proc/sys/kernel/yama/ptrace_scope", "0") }, "sysctl-kernel.yama.ptrace_scope", finding.Low},
		{"no Yama", func(t *testing.T, r string) { os.Remove(filepath.Join(r, "proc/sys/kernel/yama/ptrace_scope")) }, "sysctl-kernel.yama.ptrace_scope", finding.Info},
		{"legacy_tiocsti", func(t *testing.T, r string) { write(t, r, "proc/sys/dev/tty/legacy_tiocsti", "1") }, "sysctl-dev.tty.legacy_tiocsti", finding.Medium},
		{"ASLR partial", func(t *testing.T, r string) { write(t, r, "proc/sys/kernel/randomize_va_space", "1") }, "sysctl-kernel.randomize_va_space", finding.Medium},
		{"unprivileged userns", func(t *testing.T, r string) { write(t, r, "proc/sys/kernel/unprivileged_userns_clone", "1") }, "userns-unprivileged", finding.Low},
		{"no userns", func(t *testing.T, r string) { write(t, r, "proc/sys/user/max_user_namespaces", "0") }, "userns-disabled", finding.Medium},
		{"no userns support", func(t *testing.T, r string) { os.Remove(filepath.Join(r, "proc/sys/user/max_user_namespaces")) }, "userns-unsupported", finding.High},
		{"no MAC LSM", func(t *testing.T, r string) {
			write(t, r, "sys/kernel/security/lsm", "lockdown,capability,landlock,yama")
		}, "lsm-no-mac", finding.Medium},
		{"no Landlock", func(t *testing.T, r string) { write(t, r, "sys/kernel/security/lsm", "capability,apparmor") }, "lsm-no-landlock", finding.Medium},
		{"no securityfs", func(t *testing.T, r string) { os.RemoveAll(filepath.Join(r, "sys/kernel/security")) }, "lsm-unknown", finding.Info},
		{"no seccomp", func(t *testing.T, r string) { os.RemoveAll(filepath.Join(r, "proc/sys/kernel/seccomp")) }, "seccomp-unsupported", finding.Critical},
		{"cgroup v1", func(t *testing.T, r string) {
			os.Remove(filepath.Join(r, "sys/fs/cgroup/cgroup.controllers"))
			write(t, r, "sys/fs/cgroup/memory/tasks", "")
		}, "cgroup-v1", finding.Low},
		{"state dir world-writable", func(t *testing.T, r string) { os.Chmod(filepath.Join(r, "run/bulwark"), 0o777) }, "state-dir-writable", finding.High},
		{"state dir readable", func(t *testing.T, r string) { os.Chmod(filepath.Join(r, "run/bulwark"), 0o755) }, "state-dir-readable", finding.Low},
		{"state dir not root's", func(t *testing.T, r string) {
			if os.Getuid() != 0 {
				t.Skip("chown needs root")
			}
			os.Chown(filepath.Join(r, "run/bulwark"), 1000, 1000)
		}, "state-dir-owner", finding.High},
		{"policy writable", func(t *testing.T, r string) { os.Chmod(filepath.Join(r, "etc/bulwark/policy.json"), 0o666) }, "policy-file-writable", finding.High},
		{"policy invalid", func(t *testing.T, r string) { write(t, r, "etc/bulwark/policy.json", `{"hardne": true}`) }, "policy-invalid", finding.High},
		{"floor off", func(t *testing.T, r string) { write(t, r, "etc/bulwark/policy.json", `{"harden": false}`) }, "floor-off", finding.Low},
		{"no policy", func(t *testing.T, r string) { os.Remove(filepath.Join(r, "etc/bulwark/policy.json")) }, "floor-off", finding.Low},
		{"docker without bulwark", func(t *testing.T, r string) {
			write(t, r, "etc/docker/daemon.json", `{"userns-remap": "default", "no-new-privileges": true}`)
		}, "docker-no-bulwark", finding.Low},
		{"docker bulwark not default", func(t *testing.T, r string) {
			write(t, r, "etc/docker/daemon.json", `{"runtimes": {"bulwark": {"path": "/usr/local/bin/bulwark"}}, "userns-remap": "default", "no-new-privileges": true}`)
		}, "docker-not-default", finding.Low},
		{"docker without userns-remap", func(t *testing.T, r string) {
			write(t, r, "etc/docker/daemon.json", `{"runtimes": {"bulwark": {"path": "/usr/local/bin/bulwark"}}, "default-runtime": "bulwark", "no-new-privileges": true}`)
		}, "docker-no-userns-remap", finding.Medium},
		{"docker without no-new-privileges", func(t *testing.T, r string) {
			write(t, r, "etc/docker/daemon.json", `{"runtimes": {"bulwark": {"path": "/usr/local/bin/bulwark"}}, "default-runtime": "bulwark", "userns-remap": "default"}`)
		}, "docker-no-new-privileges", finding.Low},
		{"docker floor off", func(t *testing.T, r string) {
			os.Remove(filepath.Join(r, "etc/bulwark/policy.json"))
			write(t, r, "etc/docker/daemon.json", `{"runtimes": {"bulwark": {"path": "/usr/local/bin/bulwark"}}, "default-runtime": "bulwark", "userns-remap": "default", "no-new-privileges": true}`)
		}, "docker-floor-off", finding.Medium},
		{"docker config invalid", func(t *testing.T, r string) { write(t, r, "etc/docker/daemon.json", `{"runtimes": `) }, "docker-config-invalid", finding.Medium},
		{"containerd without bulwark", func(t *testing.T, r string) { write(t, r, "etc/containerd/config.toml", "version = 2\n") }, "containerd-no-bulwark", finding.Low},
		{"containerd bulwark not default", func(t *testing.T, r string) {
			write(t, r, "etc/containerd/config.toml", "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.bulwark]\n  runtime_type = \"io.containerd.runc.v2\"\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.bulwark.options]\n  BinaryName = \"/usr/local/bin/bulwark\"\n")
		}, "containerd-not-default", finding.Low},
		{"podman bulwark not default", func(t *testing.T, r string) {
			write(t, r, "etc/containers/containers.conf", "[engine.runtimes]\nbulwark = [\"/usr/local/bin/bulwark\"]\n")
		}, "podman-not-default", finding.Low},
		{"podman floor off", func(t *testing.T, r string) {
			os.Remove(filepath.Join(r, "etc/bulwark/policy.json"))
			write(t, r, "etc/containers/containers.conf", "[engine]\nruntime = \"bulwark\"\n[engine.runtimes]\nbulwark = [\"/usr/local/bin/bulwark\"]\n")
		}, "podman-floor-off", finding.Medium},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := goodRoot(t)
			tc.change(t, root)
			r := run(t, root)
			var got *finding.Finding
			for i, f := range r.Findings {
				if f.ID == tc.id {
					got = &r.Findings[i]
				}
			}
			if got == nil {
				t.Fatalf("no %s; got %s", tc.id, idsOf(r.Findings))
			}
			if got.Severity != tc.sev {
				t.Errorf("%s: %s, want %s", tc.id, got.Severity, tc.sev)
			}
			if got.Reason == "" || got.Where == "" {
				t.Errorf("%s: reason and where are required: %+v", tc.id, got)
			}
		})
	}
}

func TestEnginesRegisteredAndDefaultAreQuiet(t *testing.T) {
	root := goodRoot(t)
	write(t, root, "etc/docker/daemon.json", `{"runtimes": {"bulwark": {"path": "/usr/local/bin/bulwark", "runtimeArgs": ["--harden"]}}, "default-runtime": "bulwark", "userns-remap": "default", "no-new-privileges": true}`)
	write(t, root, "etc/containerd/config.toml", "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  default_runtime_name = \"bulwark\"\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.bulwark]\n  runtime_type = \"io.containerd.runc.v2\"\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.bulwark.options]\n  BinaryName = \"/usr/local/bin/bulwark-harden\"\n")
	write(t, root, "etc/containers/containers.conf", "[engine]\nruntime = \"bulwark\"\n[engine.runtimes]\nbulwark = [\"/usr/local/bin/bulwark-harden\"]\n")
	write(t, root, "dev/kvm", "")
	r := run(t, root)
	if n := finding.AtOrAbove(r.Findings, finding.Low); n != 0 {
		t.Errorf("%d findings: %s", n, idsOf(r.Findings))
	}
	if !strings.Contains(r.Facts["/dev/kvm"], "present") || !strings.Contains(r.Facts["/dev/kvm"], "pending") {
		t.Errorf("/dev/kvm fact %q", r.Facts["/dev/kvm"])
	}
	if !strings.Contains(r.Facts["containerd"], "registered as bulwark") {
		t.Errorf("containerd fact %q", r.Facts["containerd"])
	}
}

func TestDebianKernelUsesUpstreamVersion(t *testing.T) {
	root := goodRoot(t)
	write(t, root, "proc/sys/kernel/osrelease", "6.1.0-18-amd64")
	write(t, root, "proc/version", "Linux version 6.1.0-18-amd64 (debian-kernel@lists.debian.org) (gcc-12) #1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)")
	r := run(t, root)
	for _, f := range r.Findings {
		if strings.HasPrefix(f.ID, "kernel-cve-") {
			t.Errorf("6.1.76 reported %s", f.ID)
		}
	}
	if !strings.HasPrefix(r.Facts["kernel upstream version"], "6.1.76") {
		t.Errorf("facts: %v", r.Facts)
	}
	write(t, root, "proc/version", "Linux version 6.1.0-17-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.69-1 (2023-12-30)")
	r = run(t, root)
	if !strings.Contains(idsOf(r.Findings), "kernel-cve-2024-1086") {
		t.Errorf("6.1.69 not reported for CVE-2024-1086: %s", idsOf(r.Findings))
	}
}

func TestThisHost(t *testing.T) {
	rel, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	r, err := Check(Options{Root: "/"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Facts["kernel"] != strings.TrimSpace(string(rel)) {
		t.Errorf("kernel fact %q, want %q", r.Facts["kernel"], rel)
	}
	if r.Facts["cgroup"] == "" || r.Facts["seccomp actions"] == "" {
		t.Errorf("facts: %v", r.Facts)
	}
}

func TestBadRoot(t *testing.T) {
	if _, err := Check(Options{Root: "/nonexistent-root"}); err == nil || !strings.Contains(err.Error(), "/nonexistent-root") {
		t.Errorf("err = %v", err)
	}
}
