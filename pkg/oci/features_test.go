package oci

import (
	"encoding/json"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestFeatures(t *testing.T) {
	f := Features(SeccompSupport{})
	if f.OCIVersionMin != "1.0.0" || f.OCIVersionMax != specs.Version {
		t.Errorf("versions = %s..%s", f.OCIVersionMin, f.OCIVersionMax)
	}
	if !slices.Equal(f.Hooks, []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"}) {
		t.Errorf("hooks = %v", f.Hooks)
	}
	// Features must advertise exactly the table ParseMountOptions uses.
	if len(f.MountOptions) != len(MountOptions) {
		t.Errorf("mountOptions has %d entries, table has %d", len(f.MountOptions), len(MountOptions))
	}
	for _, o := range f.MountOptions {
		if _, ok := MountOptions[o]; !ok {
			t.Errorf("advertised mount option %q is not in MountOptions", o)
		}
	}
	for _, o := range []string{"ro", "rbind", "rprivate", "rro", "rnoatime", "idmap", "ridmap", "tmpcopyup", "nosymfollow"} {
		if !slices.Contains(f.MountOptions, o) {
			t.Errorf("mountOptions lacks %q", o)
		}
	}
	l := f.Linux
	if !slices.Equal(l.Namespaces, []string{"cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"}) {
		t.Errorf("namespaces = %v", l.Namespaces)
	}
	for _, c := range []string{"CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"} {
		if !slices.Contains(l.Capabilities, c) {
			t.Errorf("capabilities lacks %s", c)
		}
	}
	if !*l.Cgroup.V1 || !*l.Cgroup.V2 || !*l.Cgroup.Systemd || *l.Cgroup.SystemdUser || *l.Cgroup.Rdma {
		t.Errorf("cgroup = %+v", l.Cgroup)
	}
	if !*l.Seccomp.Enabled || !slices.Contains(l.Seccomp.Actions, "SCMP_ACT_NOTIFY") ||
		!slices.Contains(l.Seccomp.Operators, "SCMP_CMP_MASKED_EQ") || !slices.Contains(l.Seccomp.Archs, "SCMP_ARCH_X86_64") ||
		!slices.Contains(l.Seccomp.KnownFlags, "SECCOMP_FILTER_FLAG_LOG") {
		t.Errorf("seccomp = %+v", l.Seccomp)
	}
	if *l.Apparmor.Enabled || *l.Selinux.Enabled || *l.IntelRdt.Enabled || *l.NetDevices.Enabled || !*l.MountExtensions.IDMap.Enabled {
		t.Error("apparmor/selinux/intelRdt/netDevices must be false and idmap true")
	}
	if f.Annotations["org.opencontainers.runc.checkpoint.enabled"] != "false" {
		t.Errorf("annotations = %v", f.Annotations)
	}
	if _, err := json.Marshal(f); err != nil {
		t.Fatal(err)
	}
}

func TestFeaturesSeccompSupport(t *testing.T) {
	if f := Features(SeccompSupport{}); f.Linux.Seccomp.SupportedFlags != nil || f.Annotations["io.github.seccomp.libseccomp.version"] != "" {
		t.Error("without pkg/seccomp, supported flags and version must be reported as unknown")
	}
	f := Features(SeccompSupport{SupportedFlags: []string{"SECCOMP_FILTER_FLAG_LOG"}, LibraryVersion: "2.5.4"})
	if !slices.Equal(f.Linux.Seccomp.SupportedFlags, []string{"SECCOMP_FILTER_FLAG_LOG"}) || f.Annotations["io.github.seccomp.libseccomp.version"] != "2.5.4" {
		t.Errorf("hooks not used: %+v %v", f.Linux.Seccomp, f.Annotations)
	}
}

// TestValidateAcceptsAdvertised keeps Validate and Features in agreement:
// every advertised capability and namespace is accepted.
func TestValidateAcceptsAdvertised(t *testing.T) {
	f := Features(SeccompSupport{})
	bundle, s := testBundle(t)
	s.Process.Capabilities.Bounding = f.Linux.Capabilities
	s.Linux.Namespaces = nil
	for _, n := range f.Linux.Namespaces {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.LinuxNamespaceType(n)})
	}
	s.Linux.UIDMappings = []specs.LinuxIDMapping{{Size: 1}}
	s.Linux.GIDMappings = []specs.LinuxIDMapping{{Size: 1}}
	if err := Validate(s, bundle, acceptSeccomp); err != nil {
		t.Fatal(err)
	}
}
