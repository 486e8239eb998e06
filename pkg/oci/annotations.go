package oci

import specs "github.com/opencontainers/runtime-spec/specs-go"

// Bulwark's own annotation keys. runtime-spec has no field for these
// requests, so a config makes them through annotations; every key bulwark
// reads is declared here, so that a reader finds all of them in one place
// and no two packages can give one key two meanings. Each names the package
// that interprets its value.
const (
	// AnnotationLandlock carries the Landlock mode: "enforce", "require" or
	// "off" (pkg/landlock).
	AnnotationLandlock = "run.bulwark.landlock"

	// AnnotationAllow lists what a container keeps despite the hardening
	// floor: capability names with or without CAP_, comma-separated,
	// "sysfs-rw" (a writable /sys), "host-users" (no user namespace added)
	// or "privileged" (pkg/policy, Harden).
	AnnotationAllow = "run.bulwark.allow"

	// AnnotationRootfsOptions asks for the rootfs to be attached with mount
	// attributes a plain self-bind cannot give it: a comma list of idmap,
	// nosuid and nodev (pkg/rootfs, RootTreeOptions).
	AnnotationRootfsOptions = "run.bulwark.rootfs-options"

	// AnnotationRootfsOverlay makes the init mount the rootfs as an
	// overlay of the given layers itself, in its own user namespace,
	// instead of binding it: a rootless run's image snapshot, which no
	// process outside that namespace could mount (pkg/rootfs). Its value
	// is overlayfs's lowerdir, upperdir and workdir options. Only a
	// person's run sets it: create refuses it in a bundle.
	AnnotationRootfsOverlay = "run.bulwark.rootfs-overlay"

	// AnnotationStorageDriver says who serves AnnotationRootfsOverlay's
	// overlay (pkg/rootfs): "overlay" the kernel's overlayfs alone,
	// "fuse-overlayfs" Debian's fuse-overlayfs, started by the runtime on
	// a FUSE connection the init mounts; "auto" (or absent) the kernel's,
	// and fuse-overlayfs where the kernel refuses it. Set, as that one,
	// only by a person's run.
	AnnotationStorageDriver = "run.bulwark.storage-driver"

	// AnnotationImage is the image reference a person's run was made from
	// (pkg/userface: bulwark ls).
	AnnotationImage = "run.bulwark.image"

	// AnnotationStopSignal is the signal bulwark stop sends first: the
	// image's StopSignal or --stop-signal (pkg/userface).
	AnnotationStopSignal = "run.bulwark.stop-signal"

	// AnnotationExposedPorts lists the ports the image and --expose declare,
	// comma-separated PORT/PROTO; recorded, not published (pkg/userface).
	AnnotationExposedPorts = "run.bulwark.exposed-ports"

	// AnnotationLearn makes the init load a recording filter instead of
	// the container's seccomp profile (pkg/seccomp Recording): every call
	// the profile lets through is sent to a listener that takes the fd
	// with pidfd_getfd and lets it continue (pkg/learn). "record" is
	// `bulwark learn`'s, which listens itself; in an engine's config the
	// value is the absolute path of the profile to write, and create
	// starts the recorder that listens and writes it (pkg/container
	// learnOutput, pkg/userface RecordForEngine).
	AnnotationLearn = "run.bulwark.learn"

	// AnnotationLandlockWritable narrows Landlock's write rights to the
	// comma-separated absolute paths it lists: writable mounts become
	// read-only to the payload except beneath them (pkg/landlock,
	// Narrow). A learned profile sets it to the directories its workload
	// wrote in (pkg/learn).
	AnnotationLandlockWritable = "run.bulwark.landlock-writable"

	// AnnotationLandlockProc is "rw" for a payload that must write beneath
	// /proc (its own oom_score_adj, /proc/self/mem): under Landlock procfs
	// is otherwise read-only to it (by Landlock, and beneath a writable
	// rootfs by a read-only procfs mount), which keeps one process of the
	// payload from writing another's memory through /proc/PID/mem
	// (pkg/landlock).
	AnnotationLandlockProc = "run.bulwark.landlock-proc"

	// AnnotationIsolation selects the wall around the payload: "vm" runs
	// it in a virtual machine of its own (pkg/vm), "vm-strict" too but
	// refuses to fall back to emulation (TCG) where KVM is not real.
	AnnotationIsolation = "run.bulwark.isolation"
)

// Isolation values of AnnotationIsolation.
const (
	IsolationVM       = "vm"
	IsolationVMStrict = "vm-strict"
)

// The annotations a CRI implementation puts on a pod's sandbox container
// (its pause process): containerd's and CRI-O's.
const (
	annotationCRIContainerType  = "io.kubernetes.cri.container-type"
	annotationCRIOContainerType = "io.kubernetes.cri-o.ContainerType"
	criContainerTypeSandbox     = "sandbox"
)

// IsPodSandbox reports whether spec is a Kubernetes pod's sandbox as
// containerd's CRI or CRI-O creates it: the process that holds the pod's
// namespaces, not one of its workloads.
func IsPodSandbox(spec *specs.Spec) bool {
	return spec.Annotations[annotationCRIContainerType] == criContainerTypeSandbox ||
		spec.Annotations[annotationCRIOContainerType] == criContainerTypeSandbox
}
