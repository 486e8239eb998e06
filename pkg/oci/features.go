package oci

import (
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"

	"github.com/bulwark-sec/bulwark/pkg/sched"
)

// SeccompSupport is what the linked seccomp implementation reports about
// this host; pkg/seccomp (which links libseccomp, so this package does not)
// provides it. The zero value means unknown, and Features then reports the
// supported flags and library version as unknown rather than guessing, as
// the features spec asks.
type SeccompSupport struct {
	// SupportedFlags are the seccomp filter flags this kernel and
	// libseccomp accept.
	SupportedFlags []string
	// LibraryVersion is the linked libseccomp version ("2.5.4").
	LibraryVersion string
}

// knownHooks are the hook kinds Validate accepts and pkg/hooks runs.
var knownHooks = []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"}

// knownNamespaces maps every namespace type we can create or join.
var knownNamespaces = map[specs.LinuxNamespaceType]bool{
	specs.PIDNamespace:     true,
	specs.NetworkNamespace: true,
	specs.MountNamespace:   true,
	specs.IPCNamespace:     true,
	specs.UTSNamespace:     true,
	specs.UserNamespace:    true,
	specs.CgroupNamespace:  true,
	specs.TimeNamespace:    true,
}

var seccompActions = []string{
	"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
	"SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP",
}

var seccompOperators = []string{
	"SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE",
}

// seccompArchs are the architectures libseccomp can build filters for and
// the spec names (the same set runc accepts).
var seccompArchs = []string{
	"SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_LOONGARCH64", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64",
	"SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32",
	"SCMP_ARCH_PPC", "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_RISCV64", "SCMP_ARCH_S390",
	"SCMP_ARCH_S390X", "SCMP_ARCH_X32", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64",
}

var seccompFlags = []string{
	"SECCOMP_FILTER_FLAG_TSYNC",
	string(specs.LinuxSeccompFlagSpecAllow),
	string(specs.LinuxSeccompFlagLog),
	string(specs.LinuxSeccompFlagWaitKillableRecv),
}

// Features returns what `bulwark features` prints. Every list is derived
// from the tables Validate and the appliers use, so the advertised feature
// set cannot drift from what the runtime accepts. seccomp is what the
// linked seccomp implementation reports (see SeccompSupport).
func Features(seccomp SeccompSupport) *features.Features {
	t, f := true, false
	var nss []string
	for ns := range knownNamespaces {
		nss = append(nss, string(ns))
	}
	slices.Sort(nss)

	sc := &features.Seccomp{
		Enabled:    &t,
		Actions:    slices.Clone(seccompActions),
		Operators:  slices.Clone(seccompOperators),
		Archs:      slices.Clone(seccompArchs),
		KnownFlags: slices.Clone(seccompFlags),
	}
	if seccomp.SupportedFlags != nil {
		sc.SupportedFlags = slices.Clone(seccomp.SupportedFlags)
	}
	annotations := map[string]string{
		// Checkpoint/restore (CRIU) is not implemented; engines read this
		// key to decide whether to offer checkpointing.
		"org.opencontainers.runc.checkpoint.enabled": "false",
	}
	if seccomp.LibraryVersion != "" {
		annotations["io.github.seccomp.libseccomp.version"] = seccomp.LibraryVersion
	}
	return &features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		Hooks:         slices.Clone(knownHooks),
		MountOptions:  KnownMountOptions(),
		Linux: &features.Linux{
			Namespaces:   nss,
			Capabilities: KnownCapabilities(),
			Cgroup: &features.Cgroup{
				V1:          &t,
				V2:          &t,
				Systemd:     &t,
				SystemdUser: &f,
				Rdma:        &f,
			},
			Seccomp:         sc,
			Apparmor:        &features.Apparmor{Enabled: &f},
			Selinux:         &features.Selinux{Enabled: &f},
			IntelRdt:        &features.IntelRdt{Enabled: &f},
			MemoryPolicy:    &features.MemoryPolicy{Modes: sched.MemoryPolicyModes(), Flags: sched.MemoryPolicyFlags()},
			MountExtensions: &features.MountExtensions{IDMap: &features.IDMap{Enabled: &t}},
			NetDevices:      &features.NetDevices{Enabled: &f},
		},
		Annotations: annotations,
	}
}
