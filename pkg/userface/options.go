package userface

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/bulwark-sec/bulwark/pkg/container"
	"github.com/bulwark-sec/bulwark/pkg/network"
	"github.com/bulwark-sec/bulwark/pkg/oci"
	"github.com/bulwark-sec/bulwark/pkg/policy"
	"github.com/bulwark-sec/bulwark/pkg/userns"
)

// Options is a person's request, one field per flag of `bulwark run`;
// errors name the flag.
type Options struct {
	Rootfs  string
	Args    []string
	Profile string // empty: "default"
	Name    string // container id; empty: generated
	Env     []string
	Volumes []string // SRC:DST[:OPT[,OPT]], OPT ro, rw, noidmap, idmap=C-H-N
	User    string   // UID[:GID]
	Workdir string
	// ReadOnly and Writable are nil unless given: the profile decides.
	ReadOnly  *bool
	Writable  *bool
	Tmpfs     []string // DST[:size=N,exec]
	Memory    string   // a size (pkg/units)
	PidsLimit *int64   // nil: the profile's
	CapAdd    []string
	CapDrop   []string
	Devices   []string // host device nodes
	// Net is none (empty), host, bridge, a named network, macvlan:IFACE,
	// ipvlan:IFACE, dedicated:IFACE, container:NAME or cni:NAME
	// (pkg/network); Publish the -p [IP:]HOST:CONTAINER[/tcp|udp] ports.
	Net     string
	Publish []string
	// NetworkDir and CNIDir, when set, hold the named networks and the
	// CNI config lists instead of network.DefaultDir and DefaultCNIDir.
	NetworkDir, CNIDir string
	Seccomp            string // a linux.seccomp JSON file instead of the profile's
	TTY                bool
	Hostname           string
	// UsernsRange, HOSTID[:SIZE], maps to that host range instead of one
	// allocated from the pool; Run refuses one that overlaps the pool or
	// another container.
	UsernsRange string

	// Isolation is "" (namespaces only), "vm" or "vm-strict": the payload
	// runs in a virtual machine of its own inside the walls (pkg/vm);
	// vm-strict refuses to run where KVM is not real.
	Isolation string

	// LogDenied prints a line per call the seccomp filter refuses, naming
	// the call and the rule (denied.go).
	LogDenied bool

	// Image, instead of Rootfs, runs an image of the store under DataRoot
	// (pkg/image) on an overlay snapshot of its own.
	Image, DataRoot string
	// Entrypoint, when set, replaces the image's Entrypoint and drops its
	// Cmd ("" runs Args alone).
	Entrypoint *string
	// StopSignal is what bulwark stop sends first (empty: the image's,
	// else SIGTERM).
	StopSignal string
	// Expose is PORT[/PROTO] recorded as exposed beside the image's.
	Expose []string
	// ImageVolumes is what becomes of the image's VOLUMEs: bind (empty),
	// tmpfs or ignore (imageVolumes).
	ImageVolumes string
	// StorageDriver serves a rootless image run's snapshot: auto (empty:
	// the kernel's overlayfs, fuse-overlayfs where the kernel refuses it),
	// overlay or fuse-overlayfs (pkg/rootfs drivers).
	StorageDriver string
	// Detach runs the container in the background (detach.go); Remove
	// deletes a detached one when it exits, Keep keeps a foreground one.
	Detach, Remove, Keep bool

	// What the image adds, filled by host.image: its VOLUMEs as mounts,
	// and the annotations bulwark ls and stop read.
	imageBinds  []volumeFlag
	imageTmpfs  []tmpfsFlag
	annotations map[string]string
	// lookupRoot, when set, holds the image's /etc/passwd and /etc/group
	// for --user names, where the rootfs is not mounted on the host (a
	// rootless image run: the init mounts it).
	lookupRoot string

	// learn is set by Learn: the init loads a recording filter (pkg/learn).
	learn bool
}

// Spec turns the request into a spec; it changes nothing on the host, so
// every bad input is reported before anything exists. Without UsernsRange
// the spec maps the pool's first range: Run replaces it with an allocated
// one.
func Spec(o *Options) (*specs.Spec, error) {
	r, err := read(o)
	if err != nil {
		return nil, err
	}
	return r.spec()
}

// request is Options read: every value parsed and every conflict between
// flags found, nothing applied yet.
type request struct {
	*Options
	profile, net string
	user         *User
	tmpfs        []tmpfsFlag
	volumes      []volumeFlag
	memory       int64 // 0: the profile's
	ann          map[string]string
	seccomp      *specs.LinuxSeccomp
	usernsRange  *userns.Range
	netMode      *network.Mode
	ports        []network.Port
}

type tmpfsFlag struct {
	flag, dst string
	size      int64
	exec      bool
}

type volumeFlag struct {
	flag string
	volume
}

func read(o *Options) (*request, error) {
	r := &request{Options: o, profile: o.Profile, net: o.Net}
	if r.profile == "" {
		r.profile = "default"
	}
	if r.net == "" {
		r.net = "none"
	}
	if err := r.readNetwork(); err != nil {
		return nil, err
	}
	if r.net == "host" && r.profile == "netadmin" {
		return nil, fmt.Errorf("--net host conflicts with --profile netadmin: %w: NET_ADMIN and NET_RAW are only granted inside the container's own network namespace", policy.ErrConflict)
	}
	switch o.Isolation {
	case "", "namespace", oci.IsolationVM, oci.IsolationVMStrict:
	default:
		return nil, fmt.Errorf("--isolation %q: want namespace, vm or vm-strict", o.Isolation)
	}
	if o.LogDenied && (o.Detach || o.Isolation == oci.IsolationVM || o.Isolation == oci.IsolationVMStrict) {
		return nil, fmt.Errorf("--log-denied prints while the container runs in the foreground, under namespace isolation: %w (with --detach or --isolation vm, bulwark explain --profile %s SYSCALL names the rule instead)", policy.ErrConflict, r.profile)
	}
	if o.ReadOnly != nil && o.Writable != nil {
		return nil, fmt.Errorf("--read-only conflicts with --writable: %w", policy.ErrConflict)
	}
	if o.User != "" {
		u, err := ParseUser(o.User)
		if root := o.etcRoot(); err == nil && root != "" {
			u, err = u.Resolve(root)
		}
		if err != nil {
			return nil, fmt.Errorf("--user %q: %w", o.User, err)
		}
		r.user = &u
	}
	for _, t := range o.Tmpfs {
		dst, size, exec, err := parseTmpfs(t)
		if err != nil {
			return nil, fmt.Errorf("--tmpfs %q: %w", t, err)
		}
		r.tmpfs = append(r.tmpfs, tmpfsFlag{flag: "--tmpfs " + t, dst: dst, size: size, exec: exec})
	}
	for _, v := range o.Volumes {
		vol, err := parseVolume(v)
		if err != nil {
			return nil, fmt.Errorf("--volume %q: %w", v, err)
		}
		r.volumes = append(r.volumes, volumeFlag{flag: "--volume " + v, volume: vol})
	}
	if o.Memory != "" {
		n, err := parseLimit(o.Memory)
		if err != nil {
			return nil, fmt.Errorf("--memory %q: %w", o.Memory, err)
		}
		r.memory = n
	}
	if o.Seccomp != "" {
		sc, err := readSeccomp(o.Seccomp)
		if err != nil {
			return nil, fmt.Errorf("--seccomp %s: %w", o.Seccomp, err)
		}
		r.seccomp = sc
	}
	if o.StopSignal != "" {
		if _, err := container.ParseSignal(o.StopSignal); err != nil {
			return nil, fmt.Errorf("--stop-signal: %w", err)
		}
	}
	r.ann = maps.Clone(o.annotations)
	if r.ann == nil {
		r.ann = map[string]string{}
	}
	if o.StopSignal != "" {
		r.ann[oci.AnnotationStopSignal] = o.StopSignal
	}
	var ports []string
	for _, p := range o.Expose {
		n, err := parsePort(p)
		if err != nil {
			return nil, fmt.Errorf("--expose %q: %w", p, err)
		}
		if !slices.Contains(ports, n) {
			ports = append(ports, n)
		}
	}
	if len(ports) > 0 {
		r.ann[oci.AnnotationExposedPorts] = strings.Join(ports, ",")
	}
	switch o.ImageVolumes {
	case "", "bind", "tmpfs", "ignore":
	default:
		return nil, fmt.Errorf("--image-volume %q: want bind, tmpfs or ignore", o.ImageVolumes)
	}
	r.tmpfs = append(r.tmpfs, o.imageTmpfs...)
	if o.UsernsRange != "" {
		rg, err := userns.ParseRange(o.UsernsRange)
		if err != nil {
			return nil, fmt.Errorf("--userns-range %q: %w", o.UsernsRange, err)
		}
		r.usernsRange = &rg
	}
	return r, nil
}

// spec applies the request over its profile, in the order of the flags'
// table, each option's error naming its flag.
func (r *request) spec() (*specs.Spec, error) {
	for _, d := range r.Devices {
		if err := policy.WithDevice(d)(&specs.Spec{}); err != nil {
			return nil, fmt.Errorf("--device %s: %w", d, err)
		}
	}
	opts, err := profileOptions(r.profile, r.Devices)
	if err != nil {
		return nil, fmt.Errorf("--profile %s: %w", r.profile, err)
	}
	if r.Rootfs != "" {
		opts = append(opts, policy.Named("ROOTFS", policy.WithRootfs(r.Rootfs)))
	}
	if r.Isolation != "" && r.Isolation != "namespace" {
		opts = append(opts, policy.WithAnnotation(oci.AnnotationIsolation, r.Isolation))
	}
	if len(r.Args) > 0 {
		opts = append(opts, policy.WithArgs(r.Args...))
	}
	if r.user != nil {
		opts = append(opts, policy.WithUser(r.user.UID, r.user.GIDOr(r.user.UID)))
	}
	if r.Workdir != "" {
		opts = append(opts, policy.Named("--workdir", policy.WithCwd(r.Workdir)))
	}
	for _, e := range r.Env {
		opts = append(opts, policy.Named("--env", policy.WithEnv(e)))
	}
	if r.Hostname != "" {
		opts = append(opts, policy.Named("--hostname", policy.WithHostname(r.Hostname)))
	}
	if r.ReadOnly != nil {
		opts = append(opts, policy.WithReadonlyRootfs(*r.ReadOnly))
	}
	if r.Writable != nil {
		opts = append(opts, policy.WithReadonlyRootfs(!*r.Writable))
	}
	for _, t := range r.tmpfs {
		add := policy.WithTmpfs
		if t.exec {
			add = policy.WithExecTmpfs
		}
		opts = append(opts, policy.Named(t.flag, add(t.dst, t.size)))
	}
	for _, v := range append(slices.Clone(r.imageBinds), r.volumes...) {
		opts = append(opts, policy.Named(v.flag, policy.WithMount(v.src, v.dst, v.ro)))
	}
	if r.memory != 0 {
		opts = append(opts, policy.Named("--memory", policy.WithMemoryLimit(r.memory)))
	}
	if r.PidsLimit != nil {
		opts = append(opts, policy.Named("--pids-limit", policy.WithPidsLimit(*r.PidsLimit)))
	}
	for _, c := range r.CapAdd {
		opts = append(opts, policy.Named("--cap-add "+c, policy.WithCapabilities(c)))
	}
	for _, c := range r.CapDrop {
		opts = append(opts, policy.Named("--cap-drop "+c, policy.WithoutCapabilities(c)))
	}
	if r.net == "host" {
		opts = append(opts, policy.WithHostNetwork())
	}
	if r.seccomp != nil {
		opts = append(opts, policy.Named("--seccomp "+r.Seccomp, policy.WithSeccomp(r.seccomp)))
	}
	if r.TTY {
		opts = append(opts, policy.WithTerminal(true))
	}
	if r.usernsRange != nil {
		opts = append(opts, policy.WithUserNamespace(r.usernsRange.HostID, r.usernsRange.Size))
	}
	for _, k := range slices.Sorted(maps.Keys(r.ann)) {
		opts = append(opts, policy.WithAnnotation(k, r.ann[k]))
	}
	if r.learn {
		opts = append(opts, policy.WithAnnotation(oci.AnnotationLearn, "record"))
	}
	s := policy.Base()
	if err := policy.Apply(s, opts...); err != nil {
		if errors.Is(err, policy.ErrConflict) && r.net == "host" {
			return nil, fmt.Errorf("--net host: %w", err)
		}
		return nil, err
	}
	return s, nil
}

func readSeccomp(path string) (*specs.LinuxSeccomp, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	sc := new(specs.LinuxSeccomp)
	if err := json.Unmarshal(b, sc); err != nil {
		return nil, err
	}
	return sc, nil
}

// etcRoot is where the run's /etc/passwd and /etc/group are read.
func (o *Options) etcRoot() string {
	if o.lookupRoot != "" {
		return o.lookupRoot
	}
	return o.Rootfs
}
