// Package install registers Bulwark as a runtime with the container engines
// in their own configuration files: Docker's daemon.json "runtimes",
// Podman's containers.conf [engine.runtimes], containerd's config.toml (a
// CRI runtime handler running the runc shim with bulwark as its
// BinaryName) and a CRI-O drop-in ([crio.runtime.runtimes]). The CRI
// handlers are what a Kubernetes RuntimeClass names.
//
// The threat it defends against is a half-written or hijacked engine
// config: root writes files the engine trusts, so a write never follows a
// symlink, never lands in a directory others can write, and never leaves a
// file the engine cannot parse.
//
// Every change is idempotent (a second install writes the same bytes), keeps
// the file as it was before the first install in FILE.bulwark-backup (or
// records that there was no file), and can be undone. Nothing else in the
// file is touched: daemon.json is re-encoded with its other keys kept;
// the TOML files get a block between marker comments, so no TOML library
// rewrites (and reformats or drops comments of) the user's file.
package install

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/bulwark-sec/bulwark/pkg/safefile"
)

// Engine names what install can configure.
type Engine string

const (
	Docker     Engine = "docker"
	Podman     Engine = "podman"
	Containerd Engine = "containerd"
	CRIO       Engine = "crio"
)

// DefaultConfig is where each engine reads its configuration.
var DefaultConfig = map[Engine]string{
	Docker:     "/etc/docker/daemon.json",
	Podman:     "/etc/containers/containers.conf",
	Containerd: "/etc/containerd/config.toml",
	// A drop-in of its own: CRI-O merges every file of crio.conf.d over
	// crio.conf, so the user's files are never edited.
	CRIO: "/etc/crio/crio.conf.d/10-bulwark.conf",
}

// engineNames is the list an unknown engine's error gives.
const engineNames = "docker, podman, containerd or crio"

// HardenedSuffix names the second CRI handler --harden adds next to the
// plain one: Kubernetes picks a handler per pod (RuntimeClass), so a
// cluster can move workloads onto the floor one RuntimeClass at a time.
const HardenedSuffix = "-hardened"

// VMSuffix names the runtime --vm adds next to the plain one: the same
// binary with VM isolation (docs/vm.md), so `docker run --runtime
// bulwark-vm` or a RuntimeClass with handler bulwark-vm picks a VM per
// container with no other change.
const VMSuffix = "-vm"

// Cgroup drivers for the runc shim's SystemdCgroup option.
const (
	CgroupDriverAuto     = ""
	CgroupDriverSystemd  = "systemd"
	CgroupDriverCgroupfs = "cgroupfs"
)

// Options say what to register.
type Options struct {
	Engine Engine
	Config string // the engine's config file (DefaultConfig when empty)
	Binary string // absolute path of bulwark
	Name   string // runtime name the engine will know ("bulwark")
	// Harden registers `bulwark --harden`: runtimeArgs for Docker; Podman,
	// containerd and CRI-O cannot pass arguments to a runtime, so a wrapper
	// script at Wrapper (default: "bulwark-harden" next to Binary) is
	// registered. For Docker and Podman it replaces Name's runtime; for the
	// CRI engines (containerd, CRI-O) it is a second handler,
	// Name+HardenedSuffix, next to the plain one.
	Harden  bool
	Wrapper string
	// VM adds the runtime Name+VMSuffix running `bulwark --isolation vm`:
	// runtimeArgs for Docker; for the others a wrapper script at
	// VMWrapper (default: "bulwark-vm" next to Binary). With Harden it
	// also raises to the floor.
	VM        bool
	VMWrapper string
	// CgroupDriver sets containerd's SystemdCgroup: it must match the
	// kubelet's cgroupDriver. CgroupDriverAuto picks systemd where systemd
	// is the init (as the kubelet's own default advice does), cgroupfs
	// elsewhere.
	CgroupDriver string
}

// Change is what install would write.
type Change struct {
	Path    string
	Old     []byte // nil when the file does not exist
	New     []byte
	Wrapper string // wrapper script to create ("" when none)
	WrapSrc []byte
	// VMWrapper is the --vm wrapper script to create ("" when none).
	VMWrapper string
	VMWrapSrc []byte
}

const backupSuffix = ".bulwark-backup"
const absentSuffix = ".bulwark-backup-absent"

// wrappersSuffix names the record, next to the config, of the wrapper
// scripts installs for it wrote, one path a line: Undo removes those, and
// only those, whatever flags it is given.
const wrappersSuffix = ".bulwark-wrappers"

// wrapperMark is in every wrapper script install writes: a file at a
// wrapper's path without it is someone else's, never overwritten or removed.
const wrapperMark = "\n# Written by `bulwark install --"

func (o *Options) defaults() error {
	if _, ok := DefaultConfig[o.Engine]; !ok {
		return fmt.Errorf("install: unknown engine %q (%s)", o.Engine, engineNames)
	}
	if o.Config == "" {
		o.Config = DefaultConfig[o.Engine]
	}
	if o.Name == "" {
		o.Name = "bulwark"
	}
	if !filepath.IsAbs(o.Binary) {
		return fmt.Errorf("install: the bulwark binary path %q must be absolute (engines exec it from their own cwd)", o.Binary)
	}
	if o.Harden && o.Engine != Docker && o.Wrapper == "" {
		o.Wrapper = filepath.Join(filepath.Dir(o.Binary), "bulwark-harden")
	}
	if o.VM && o.Engine != Docker && o.VMWrapper == "" {
		o.VMWrapper = filepath.Join(filepath.Dir(o.Binary), "bulwark"+VMSuffix)
	}
	for flag, p := range map[string]*string{"--wrapper": &o.Wrapper, "--vm-wrapper": &o.VMWrapper} {
		if *p == "" {
			continue
		}
		if !filepath.IsAbs(*p) {
			return fmt.Errorf("install: %s %q must be an absolute path (the engine execs it from its own cwd)", flag, *p)
		}
		*p = filepath.Clean(*p)
	}
	switch o.CgroupDriver {
	case CgroupDriverAuto:
		o.CgroupDriver = CgroupDriverCgroupfs
		if systemdBooted() {
			o.CgroupDriver = CgroupDriverSystemd
		}
	case CgroupDriverSystemd, CgroupDriverCgroupfs:
	default:
		return fmt.Errorf("install: unknown cgroup driver %q (systemd or cgroupfs, as the kubelet's cgroupDriver)", o.CgroupDriver)
	}
	return nil
}

// systemdRunDir exists when systemd is the init (sd_booted(3)'s test).
var systemdRunDir = "/run/systemd/system"

func systemdBooted() bool {
	fi, err := os.Lstat(systemdRunDir)
	return err == nil && fi.IsDir()
}

// Plan computes the new content of the engine's config without writing.
func Plan(o Options) (*Change, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	old, err := os.ReadFile(o.Config)
	if errors.Is(err, os.ErrNotExist) {
		old = nil
	} else if err != nil {
		return nil, fmt.Errorf("install: %w", err)
	}
	c := &Change{Path: o.Config, Old: old}
	runtimePath := o.Binary
	if o.Wrapper != "" {
		if o.Engine != Containerd && o.Engine != CRIO {
			runtimePath = o.Wrapper
		}
		c.Wrapper = o.Wrapper
		c.WrapSrc = []byte("#!/bin/sh\n# Written by `bulwark install --harden`: this engine cannot pass arguments\n# to a runtime, so this wrapper adds the hardening floor.\nexec " + shQuote(o.Binary) + " --harden \"$@\"\n")
	}
	if o.VMWrapper != "" {
		c.VMWrapper = o.VMWrapper
		c.VMWrapSrc = []byte("#!/bin/sh\n# Written by `bulwark install --vm`: this engine cannot pass arguments\n# to a runtime, so this wrapper asks for VM isolation.\nexec " + shQuote(o.Binary) + " " + strings.Join(o.vmArgs(), " ") + " \"$@\"\n")
	}
	switch o.Engine {
	case Docker:
		c.New, err = dockerConfig(old, o, runtimePath)
	case Podman:
		lines := fmt.Sprintf("%s = [%s]", o.Name, strconv.Quote(runtimePath))
		if o.VM {
			lines += fmt.Sprintf("\n%s = [%s]", o.Name+VMSuffix, strconv.Quote(o.VMWrapper))
		}
		c.New, err = tomlBlock(old, o.Config, "engine.runtimes", lines)
	case Containerd:
		c.New, err = containerdConfig(old, o)
	case CRIO:
		c.New, err = crioConfig(old, o)
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// vmArgs are the global flags of the VM runtime.
func (o *Options) vmArgs() []string {
	a := []string{"--isolation", "vm"}
	if o.Harden {
		a = append([]string{"--harden"}, a...)
	}
	return a
}

func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// dockerConfig sets runtimes.<name> in daemon.json, keeping every other key.
func dockerConfig(old []byte, o Options, path string) ([]byte, error) {
	cfg := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(old)) > 0 {
		if err := json.Unmarshal(old, &cfg); err != nil {
			return nil, fmt.Errorf("install: %s is not valid JSON (fix or move it first): %w", o.Config, err)
		}
	}
	runtimes := map[string]json.RawMessage{}
	if raw, ok := cfg["runtimes"]; ok {
		if err := json.Unmarshal(raw, &runtimes); err != nil {
			return nil, fmt.Errorf("install: %s: \"runtimes\" is not an object: %w", o.Config, err)
		}
	}
	entry := map[string]any{"path": path}
	if o.Harden {
		entry["runtimeArgs"] = []string{"--harden"}
	}
	b, err := json.Marshal(entry)
	if err != nil {
		return nil, err
	}
	runtimes[o.Name] = b
	if o.VM {
		if runtimes[o.Name+VMSuffix], err = json.Marshal(map[string]any{"path": o.Binary, "runtimeArgs": o.vmArgs()}); err != nil {
			return nil, err
		}
	}
	if cfg["runtimes"], err = json.Marshal(runtimes); err != nil {
		return nil, err
	}
	out, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

const (
	beginMark = "# BEGIN bulwark (managed by `bulwark install`; `bulwark install --undo` removes it)"
	endMark   = "# END bulwark"
)

// stripBlock removes a previous install's block.
func stripBlock(s string) string {
	i := strings.Index(s, beginMark)
	if i < 0 {
		return s
	}
	j := strings.Index(s[i:], endMark)
	if j < 0 {
		return s
	}
	rest := s[i+j+len(endMark):]
	rest = strings.TrimPrefix(rest, "\n")
	return s[:i] + rest
}

// tomlBlock adds key lines to table: right after the table's header when
// the file already has that table (TOML forbids defining it twice),
// otherwise as a new table at the end.
func tomlBlock(old []byte, path, table, lines string) ([]byte, error) {
	s := stripBlock(string(old))
	header := "[" + table + "]"
	name := strings.SplitN(lines, " ", 2)[0]
	var at = -1
	ls := strings.SplitAfter(s, "\n")
	inTable := false
	for i, l := range ls {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "[") {
			inTable = t == header
			if inTable {
				at = i
			}
			continue
		}
		if inTable && (strings.HasPrefix(t, name+" ") || strings.HasPrefix(t, name+"=")) {
			return nil, fmt.Errorf("install: %s already defines %s.%s outside bulwark's block; remove that line or install under another --name", path, table, name)
		}
	}
	block := beginMark + "\n" + lines + "\n" + endMark + "\n"
	if at >= 0 {
		return []byte(strings.Join(ls[:at+1], "") + block + strings.Join(ls[at+1:], "")), nil
	}
	if s != "" && !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	return []byte(s + beginMark + "\n" + header + "\n" + lines + "\n" + endMark + "\n"), nil
}

// handlers are the CRI runtime handlers to register: Name running bulwark
// and, with Harden, Name+HardenedSuffix running the wrapper.
func (o *Options) handlers() [][2]string {
	hs := [][2]string{{o.Name, o.Binary}}
	if o.Harden {
		hs = append(hs, [2]string{o.Name + HardenedSuffix, o.Wrapper})
	}
	if o.VM {
		hs = append(hs, [2]string{o.Name + VMSuffix, o.VMWrapper})
	}
	return hs
}

// Compiled on first use: every container start links this package.
var tomlVersion = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(?m)^[ \t]*version[ \t]*=[ \t]*([0-9]+)`)
})

// CRI plugin of each containerd config schema: version 2 (containerd 1.x,
// which 2.x still reads) and version 3 (containerd 2.x).
var criPlugin = map[string]string{
	"2": `plugins."io.containerd.grpc.v1.cri".containerd.runtimes`,
	"3": `plugins."io.containerd.cri.v1.runtime".containerd.runtimes`,
}

// containerdConfig adds runtime handlers for the CRI plugin (what a
// Kubernetes RuntimeClass and crictl select by name) running the runc shim
// with bulwark as its binary. Pod annotations are not passed to the
// runtime (no pod_annotations): run.bulwark.allow would let any pod's
// author lift the floor. ctr selects bulwark without config: `ctr run
// --runtime io.containerd.runc.v2 --runc-binary PATH`.
func containerdConfig(old []byte, o Options) ([]byte, error) {
	s := stripBlock(string(old))
	version := "2"
	if m := tomlVersion().FindStringSubmatch(s); m != nil {
		version = m[1]
	} else if strings.TrimSpace(s) != "" {
		return nil, fmt.Errorf("install: %s is not a version 2 containerd config (no \"version = 2\"); migrate it with `containerd config migrate` first", o.Config)
	}
	prefix, ok := criPlugin[version]
	if !ok {
		return nil, fmt.Errorf("install: %s: containerd config version %s is not one install writes (2 or 3)", o.Config, version)
	}
	if strings.TrimSpace(s) == "" {
		// containerd 1.x reads a file without "version" as the old v1
		// schema, where these plugin names differ.
		s = "version = 2\n"
	}
	systemd := strconv.FormatBool(o.CgroupDriver == CgroupDriverSystemd)
	var b strings.Builder
	for _, h := range o.handlers() {
		table := prefix + "." + h[0]
		fmt.Fprintf(&b, "[%s]\n  runtime_type = \"io.containerd.runc.v2\"\n[%s.options]\n  BinaryName = %s\n  SystemdCgroup = %s\n",
			table, table, strconv.Quote(h[1]), systemd)
	}
	return appendTables(s, o, prefix, b.String())
}

// crioConfig writes CRI-O's runtime handlers ([crio.runtime.runtimes.NAME],
// an "oci" runtime run under conmon). CRI-O's cgroup manager is global
// (crio.runtime.cgroup_manager), not per handler, so it is left as the
// host has it. runtime_root is bulwark's default --root.
func crioConfig(old []byte, o Options) ([]byte, error) {
	s := stripBlock(string(old))
	const prefix = "crio.runtime.runtimes"
	var b strings.Builder
	for _, h := range o.handlers() {
		fmt.Fprintf(&b, "[%s.%s]\n  runtime_path = %s\n  runtime_type = \"oci\"\n  runtime_root = \"/run/bulwark\"\n",
			prefix, h[0], strconv.Quote(h[1]))
	}
	return appendTables(s, o, prefix, b.String())
}

// appendTables adds the handlers' tables at the end of s between the
// marker comments, refusing a handler the user's own lines already define
// (TOML forbids a table twice; the engine would not start).
func appendTables(s string, o Options, prefix, tables string) ([]byte, error) {
	for _, h := range o.handlers() {
		table := prefix + "." + h[0]
		for _, l := range strings.Split(s, "\n") {
			if t := strings.TrimSpace(l); t == "["+table+"]" || strings.HasPrefix(t, "["+table+".") {
				return nil, fmt.Errorf("install: %s already has [%s] outside bulwark's block; remove it or install under another --name", o.Config, table)
			}
		}
	}
	if s != "" && !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	return []byte(s + beginMark + "\n" + tables + endMark + "\n"), nil
}

// Apply writes the change: the backup first (only on the first install, so
// it keeps the user's original), then the config atomically.
func Apply(c *Change) error {
	wrappers := map[string][]byte{}
	if c.Wrapper != "" {
		wrappers[c.Wrapper] = c.WrapSrc
	}
	if c.VMWrapper != "" {
		wrappers[c.VMWrapper] = c.VMWrapSrc
	}
	for path := range wrappers {
		if b, err := os.ReadFile(path); err == nil && !bytes.Contains(b, []byte(wrapperMark)) {
			return fmt.Errorf("install: wrapper %s: a file bulwark install did not write is there; move it or choose another path (--wrapper, --vm-wrapper)", path)
		}
	}
	if _, err := os.Stat(c.Path + backupSuffix); errors.Is(err, os.ErrNotExist) {
		if _, err := os.Stat(c.Path + absentSuffix); errors.Is(err, os.ErrNotExist) {
			if c.Old == nil {
				if err := os.MkdirAll(filepath.Dir(c.Path), 0o755); err != nil {
					return fmt.Errorf("install: %w", err)
				}
				if err := writeAtomic(c.Path+absentSuffix, nil, 0o600); err != nil {
					return fmt.Errorf("install: record that %s did not exist: %w", c.Path, err)
				}
			} else if err := writeAtomic(c.Path+backupSuffix, c.Old, modeOf(c.Path)); err != nil {
				return fmt.Errorf("install: backup %s: %w", c.Path, err)
			}
		}
	}
	if len(wrappers) > 0 {
		// Recorded before they are written, so that an install cut short
		// leaves nothing Undo does not know of.
		rec := readRecord(c.Path)
		for path := range wrappers {
			if !slices.Contains(rec, path) {
				rec = append(rec, path)
			}
		}
		if err := writeAtomic(c.Path+wrappersSuffix, []byte(strings.Join(rec, "\n")+"\n"), 0o600); err != nil {
			return fmt.Errorf("install: record the wrapper scripts: %w", err)
		}
	}
	for path, src := range wrappers {
		if err := writeAtomic(path, src, 0o755); err != nil {
			return fmt.Errorf("install: wrapper %s: %w", path, err)
		}
	}
	if bytes.Equal(c.Old, c.New) {
		return nil
	}
	if err := writeAtomic(c.Path, c.New, modeOf(c.Path)); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	return nil
}

func modeOf(path string) os.FileMode {
	if fi, err := os.Stat(path); err == nil {
		return fi.Mode().Perm()
	}
	return 0o644
}

// writeAtomic goes through safefile: the engine's config directory must be
// root's alone, and a symlink planted at the temporary name is never
// followed (root would write the engine's config wherever it points).
func writeAtomic(path string, b []byte, mode os.FileMode) error {
	return safefile.WriteAtomic(path, b, mode)
}

// Undo puts back the file as it was before the first install, removes the
// backup, and removes the wrapper scripts installs for this file wrote
// (unless another engine's install uses them too, or someone changed
// them). It fails when there is nothing to undo.
func Undo(o Options) (string, error) {
	if _, ok := DefaultConfig[o.Engine]; !ok {
		return "", fmt.Errorf("install: unknown engine %q (%s)", o.Engine, engineNames)
	}
	if o.Config == "" {
		o.Config = DefaultConfig[o.Engine]
	}
	msg, err := undoConfig(o.Config)
	if err != nil {
		return "", err
	}
	more, err := undoWrappers(o.Config)
	return msg + more, err
}

func undoConfig(cfg string) (string, error) {
	if _, err := os.Stat(cfg + absentSuffix); err == nil {
		if err := os.Remove(cfg); err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("install --undo: %w", err)
		}
		return cfg + " removed (it did not exist before install)", os.Remove(cfg + absentSuffix)
	}
	b, err := os.ReadFile(cfg + backupSuffix)
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("install --undo: no backup %s: bulwark install has not changed %s", cfg+backupSuffix, cfg)
	}
	if err != nil {
		return "", fmt.Errorf("install --undo: %w", err)
	}
	if err := writeAtomic(cfg, b, modeOf(cfg+backupSuffix)); err != nil {
		return "", fmt.Errorf("install --undo: %w", err)
	}
	return cfg + " restored from " + cfg + backupSuffix, os.Remove(cfg + backupSuffix)
}

// undoWrappers removes the wrapper scripts cfg's record names, then the
// record. One that another engine's config (at its default path) still
// records is kept, as is one that no longer reads as install's.
func undoWrappers(cfg string) (string, error) {
	var msg strings.Builder
	for _, path := range readRecord(cfg) {
		if other := recordedElsewhere(cfg, path); other != "" {
			fmt.Fprintf(&msg, "\nkept wrapper %s: the install in %s uses it too", path, other)
			continue
		}
		b, err := os.ReadFile(path)
		switch {
		case errors.Is(err, os.ErrNotExist):
			continue
		case err != nil:
			return msg.String(), fmt.Errorf("install --undo: wrapper %s: %w", path, err)
		case !bytes.Contains(b, []byte(wrapperMark)):
			fmt.Fprintf(&msg, "\nkept wrapper %s: it is no longer the script install wrote", path)
			continue
		}
		if err := os.Remove(path); err != nil {
			return msg.String(), fmt.Errorf("install --undo: wrapper %s: %w", path, err)
		}
		fmt.Fprintf(&msg, "\nremoved wrapper %s", path)
	}
	if err := os.Remove(cfg + wrappersSuffix); err != nil && !errors.Is(err, os.ErrNotExist) {
		return msg.String(), fmt.Errorf("install --undo: %w", err)
	}
	return msg.String(), nil
}

// readRecord is the list of wrapper scripts written for cfg (none when
// there is no record).
func readRecord(cfg string) []string {
	b, err := os.ReadFile(cfg + wrappersSuffix)
	if err != nil {
		return nil
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); filepath.IsAbs(l) {
			out = append(out, filepath.Clean(l))
		}
	}
	return out
}

// recordedElsewhere is the default config of another engine whose install
// recorded the wrapper path too, or "".
func recordedElsewhere(cfg, path string) string {
	for _, other := range DefaultConfig {
		if other != cfg && slices.Contains(readRecord(other), path) {
			return other
		}
	}
	return ""
}

// Diff renders the change as a unified diff (diff(1) from diffutils, which
// every Debian system has); without diff it shows the new file whole.
func Diff(c *Change) (string, error) {
	dir, err := os.MkdirTemp("", "bulwark-install-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	a, b := filepath.Join(dir, "old"), filepath.Join(dir, "new")
	if err := os.WriteFile(a, c.Old, 0o600); err != nil {
		return "", err
	}
	if err := os.WriteFile(b, c.New, 0o600); err != nil {
		return "", err
	}
	out, err := exec.Command("diff", "-u", "--label", c.Path+" (now)", "--label", c.Path+" (after install)", a, b).Output()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return "", nil // identical
	case errors.As(err, &ee) && ee.ExitCode() == 1:
	default:
		return fmt.Sprintf("--- %s would become:\n%s", c.Path, c.New), nil
	}
	s := string(out)
	if c.Wrapper != "" {
		s += fmt.Sprintf("+++ %s (wrapper script, mode 0755)\n%s", c.Wrapper, c.WrapSrc)
	}
	if c.VMWrapper != "" {
		s += fmt.Sprintf("+++ %s (wrapper script, mode 0755)\n%s", c.VMWrapper, c.VMWrapSrc)
	}
	return s, nil
}
