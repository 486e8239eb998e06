package audit

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/bulwark-sec/bulwark/pkg/oci"
	"github.com/bulwark-sec/bulwark/pkg/policy"
	"github.com/bulwark-sec/bulwark/pkg/seccomp/profiles"
)

// dockerContainer is the part of `docker inspect` / `podman inspect`
// output that decides a container's confinement.
type dockerContainer struct {
	ID     string `json:"Id"`
	Name   string `json:"Name"`
	Config *struct {
		User  string `json:"User"`
		Image string `json:"Image"`
	} `json:"Config"`
	HostConfig *dockerHostConfig `json:"HostConfig"`
	Mounts     []struct {
		Type        string `json:"Type"`
		Source      string `json:"Source"`
		Destination string `json:"Destination"`
		RW          bool   `json:"RW"`
	} `json:"Mounts"`
	// GraphDriver.Data.MergedDir is the running container's root
	// filesystem on the engine's host (overlay2).
	GraphDriver struct {
		Data map[string]string `json:"Data"`
	} `json:"GraphDriver"`
	// Podman reports the sets it computed; Docker does not.
	EffectiveCaps []string `json:"EffectiveCaps"`
	BoundingCaps  []string `json:"BoundingCaps"`
}

type dockerHostConfig struct {
	Privileged     bool     `json:"Privileged"`
	CapAdd         []string `json:"CapAdd"`
	CapDrop        []string `json:"CapDrop"`
	SecurityOpt    []string `json:"SecurityOpt"`
	PidMode        string   `json:"PidMode"`
	IpcMode        string   `json:"IpcMode"`
	NetworkMode    string   `json:"NetworkMode"`
	UTSMode        string   `json:"UTSMode"`
	UsernsMode     string   `json:"UsernsMode"`
	CgroupnsMode   string   `json:"CgroupnsMode"`
	Binds          []string `json:"Binds"`
	ReadonlyRootfs bool     `json:"ReadonlyRootfs"`
	Memory         int64    `json:"Memory"`
	PidsLimit      *int64   `json:"PidsLimit"`
	Devices        []struct {
		PathOnHost        string `json:"PathOnHost"`
		PathInContainer   string `json:"PathInContainer"`
		CgroupPermissions string `json:"CgroupPermissions"`
	} `json:"Devices"`
	DeviceCgroupRules []string `json:"DeviceCgroupRules"`
	// Absent means the engine's defaults; null or [] means none (what
	// --privileged and --security-opt systempaths=unconfined give).
	MaskedPaths   json.RawMessage `json:"MaskedPaths"`
	ReadonlyPaths json.RawMessage `json:"ReadonlyPaths"`
}

// ParseDocker reads `docker inspect` or `podman inspect` output: a JSON
// array of containers (or one container object), each read into the spec
// the engine runs it with.
func ParseDocker(name string, data []byte) ([]Subject, error) {
	var cs []dockerContainer
	t := strings.TrimSpace(string(data))
	if strings.HasPrefix(t, "{") {
		var c dockerContainer
		if err := decodeJSON(name, data, &c); err != nil {
			return nil, err
		}
		cs = []dockerContainer{c}
	} else if err := decodeJSON(name, data, &cs); err != nil {
		return nil, err
	}
	if len(cs) == 0 {
		return nil, &InputError{File: name, Msg: "an empty array: no container to audit"}
	}
	var out []Subject
	for i, c := range cs {
		if c.HostConfig == nil {
			return nil, &InputError{File: name, Field: fmt.Sprintf("[%d].HostConfig", i),
				Msg: "missing: this is not a container's inspect output (an image's has no HostConfig; audit the image's rootfs directory instead)"}
		}
		sub, err := dockerSubject(name, i, &c)
		if err != nil {
			return nil, err
		}
		out = append(out, sub)
	}
	return out, nil
}

func dockerSubject(file string, i int, c *dockerContainer) (Subject, error) {
	hc := c.HostConfig
	name := strings.TrimPrefix(c.Name, "/")
	if name == "" {
		name = fmt.Sprintf("container %d", i)
		if len(c.ID) >= 12 {
			name = c.ID[:12]
		}
	}
	s := policy.Base()
	s.Root.Readonly = hc.ReadonlyRootfs
	s.Mounts = slices.DeleteFunc(s.Mounts, func(m specs.Mount) bool { return m.Type == "bind" })
	sub := Subject{Name: name, Format: FormatDocker, Spec: s, Privileged: hc.Privileged, HostUsernsUnknown: hc.UsernsMode == ""}
	// Scanned only when it exists here: inspect output may come from
	// another machine.
	if m := c.GraphDriver.Data["MergedDir"]; filepath.IsAbs(m) {
		if fi, err := os.Stat(m); err == nil && fi.IsDir() {
			sub.Rootfs = m
		}
	}

	// Capabilities: the engine's default set, +CapAdd, -CapDrop; "ALL" in
	// either means every capability.
	set := map[string]bool{}
	switch {
	case len(c.BoundingCaps) > 0 || len(c.EffectiveCaps) > 0:
		for _, n := range append(slices.Clone(c.BoundingCaps), c.EffectiveCaps...) {
			set[oci.CapabilityName(n)] = true
		}
	default:
		for _, n := range policy.DockerDefaultCaps {
			set[n] = true
		}
		for _, n := range hc.CapDrop {
			if strings.EqualFold(n, "ALL") {
				clear(set)
			}
			delete(set, oci.CapabilityName(n))
		}
		for _, n := range hc.CapAdd {
			if strings.EqualFold(n, "ALL") {
				for _, k := range oci.KnownCapabilities() {
					set[k] = true
				}
			}
			if cn := oci.CapabilityName(n); oci.IsKnownCapability(cn) {
				set[cn] = true
			}
		}
	}
	if hc.Privileged {
		for _, k := range oci.KnownCapabilities() {
			set[k] = true
		}
	}
	capList := sortedSet(set)
	s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: capList, Effective: capList, Permitted: capList}

	// Seccomp, no_new_privs, system paths.
	s.Linux.Seccomp = profiles.Default()
	s.Process.NoNewPrivileges = false
	systemPaths := true
	for _, o := range hc.SecurityOpt {
		k, v, _ := strings.Cut(o, "=")
		if !strings.Contains(o, "=") {
			k, v, _ = strings.Cut(o, ":")
		}
		switch strings.ToLower(k) {
		case "seccomp":
			if v == "unconfined" {
				s.Linux.Seccomp = nil
			}
		case "no-new-privileges":
			s.Process.NoNewPrivileges = v == "" || v == "true"
		case "systempaths":
			if v == "unconfined" {
				systemPaths = false
			}
		}
	}
	if hc.Privileged {
		s.Linux.Seccomp = nil
		systemPaths = false
	}
	s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
	if systemPaths {
		var err error
		if s.Linux.MaskedPaths, err = dockerPaths(file, i, "MaskedPaths", hc.MaskedPaths, policy.Base().Linux.MaskedPaths); err != nil {
			return sub, err
		}
		if s.Linux.ReadonlyPaths, err = dockerPaths(file, i, "ReadonlyPaths", hc.ReadonlyPaths, policy.Base().Linux.ReadonlyPaths); err != nil {
			return sub, err
		}
	}
	if !systemPaths || hc.Privileged {
		for j := range s.Mounts {
			if s.Mounts[j].Type == "sysfs" || s.Mounts[j].Type == "cgroup" {
				s.Mounts[j].Options = slices.DeleteFunc(s.Mounts[j].Options, func(o string) bool { return o == "ro" })
			}
		}
	}

	// Namespaces: "host" shares the host's.
	s.Linux.Namespaces = []specs.LinuxNamespace{{Type: specs.MountNamespace}}
	for _, ns := range []struct {
		mode string
		t    specs.LinuxNamespaceType
	}{{hc.PidMode, specs.PIDNamespace}, {hc.IpcMode, specs.IPCNamespace}, {hc.NetworkMode, specs.NetworkNamespace}, {hc.UTSMode, specs.UTSNamespace}, {hc.CgroupnsMode, specs.CgroupNamespace}} {
		if ns.mode != "host" {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: ns.t})
		}
	}
	if hc.UsernsMode != "" && hc.UsernsMode != "host" {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	}

	// Mounts: Mounts lists what the engine made of Binds and --mount;
	// Binds alone is read when Mounts is missing (a created container).
	for _, m := range c.Mounts {
		if m.Type != "bind" {
			continue
		}
		opts := []string{"rbind"}
		if !m.RW {
			opts = append(opts, "ro")
		}
		s.Mounts = append(s.Mounts, specs.Mount{Destination: m.Destination, Type: "bind", Source: m.Source, Options: opts})
	}
	if len(c.Mounts) == 0 {
		for _, b := range hc.Binds {
			parts := strings.Split(b, ":")
			if len(parts) < 2 || !strings.HasPrefix(parts[0], "/") {
				continue // a named volume
			}
			opts := []string{"rbind"}
			if len(parts) > 2 && slices.Contains(strings.Split(parts[2], ","), "ro") {
				opts = append(opts, "ro")
			}
			s.Mounts = append(s.Mounts, specs.Mount{Destination: parts[1], Type: "bind", Source: parts[0], Options: opts})
		}
	}

	// Devices and the devices cgroup.
	for _, d := range hc.Devices {
		s.Linux.Devices = append(s.Linux.Devices, specs.LinuxDevice{Path: d.PathOnHost})
	}
	res := &specs.LinuxResources{}
	if hc.Privileged {
		res.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
	}
	for _, r := range hc.DeviceCgroupRules {
		if f := strings.Fields(r); len(f) >= 2 && f[0] == "a" && f[1] == "*:*" {
			res.Devices = append(res.Devices, specs.LinuxDeviceCgroup{Allow: true, Access: "rwm"})
		}
	}
	if hc.Memory > 0 {
		res.Memory = &specs.LinuxMemory{Limit: &hc.Memory}
	}
	if hc.PidsLimit != nil && *hc.PidsLimit > 0 {
		res.Pids = &specs.LinuxPids{Limit: hc.PidsLimit}
	}
	s.Linux.Resources = res

	// User: "" is the image's, which for most images is root.
	user := ""
	if c.Config != nil {
		user = c.Config.User
	}
	u, _, _ := strings.Cut(user, ":")
	switch u {
	case "", "0", "root":
		s.Process.User = specs.User{UID: 0}
		if u == "" {
			sub.UserUnknown = true
		}
	default:
		s.Process.User = specs.User{UID: 65534}
	}
	return sub, nil
}

func dockerPaths(file string, i int, field string, raw json.RawMessage, def []string) ([]string, error) {
	if raw == nil {
		return def, nil
	}
	var ps []string
	if err := json.Unmarshal(raw, &ps); err != nil {
		return nil, &InputError{File: file, Field: fmt.Sprintf("[%d].HostConfig.%s", i, field), Msg: "want an array of paths", Err: err}
	}
	return ps, nil
}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
