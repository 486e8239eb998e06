// Package install registers Bulwark as a runtime with the container engines
// in their own configuration files: Docker's daemon.json "runtimes",
// Podman's containers.conf [engine.runtimes] and containerd's config.toml
// (a runc-shim runtime whose BinaryName is bulwark).
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
	"strconv"
	"strings"

	"github.com/bulwark-sec/bulwark/pkg/safefile"
)

// Engine names what install can configure.
type Engine string

const (
	Docker     Engine = "docker"
	Podman     Engine = "podman"
	Containerd Engine = "containerd"
)

// DefaultConfig is where each engine reads its configuration.
var DefaultConfig = map[Engine]string{
	Docker:     "/etc/docker/daemon.json",
	Podman:     "/etc/containers/containers.conf",
	Containerd: "/etc/containerd/config.toml",
}

// Options say what to register.
type Options struct {
	Engine Engine
	Config string // the engine's config file (DefaultConfig when empty)
	Binary string // absolute path of bulwark
	Name   string // runtime name the engine will know ("bulwark")
	// Harden registers `bulwark --harden`: runtimeArgs for Docker; Podman
	// and containerd cannot pass arguments to a runtime, so a wrapper script
	// at Wrapper (default: "bulwark-harden" next to Binary) is registered.
	Harden  bool
	Wrapper string
}

// Change is what install would write.
type Change struct {
	Path    string
	Old     []byte // nil when the file does not exist
	New     []byte
	Wrapper string // wrapper script to create ("" when none)
	WrapSrc []byte
}

const backupSuffix = ".bulwark-backup"
const absentSuffix = ".bulwark-backup-absent"

func (o *Options) defaults() error {
	if _, ok := DefaultConfig[o.Engine]; !ok {
		return fmt.Errorf("install: unknown engine %q (docker, podman or containerd)", o.Engine)
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
	return nil
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
		runtimePath = o.Wrapper
		c.Wrapper = o.Wrapper
		c.WrapSrc = []byte("#!/bin/sh\n# Written by `bulwark install --harden`: this engine cannot pass arguments\n# to a runtime, so this wrapper adds the hardening floor.\nexec " + shQuote(o.Binary) + " --harden \"$@\"\n")
	}
	switch o.Engine {
	case Docker:
		c.New, err = dockerConfig(old, o, runtimePath)
	case Podman:
		c.New, err = tomlBlock(old, o.Config, "engine.runtimes", fmt.Sprintf("%s = [%s]", o.Name, strconv.Quote(runtimePath)))
	case Containerd:
		c.New, err = containerdConfig(old, o, runtimePath)
	}
	if err != nil {
		return nil, err
	}
	return c, nil
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

// containerdConfig adds a runtime for the CRI plugin (what Kubernetes
// RuntimeClass and crictl select by name) running the runc shim with
// bulwark as its binary. ctr selects it without config: `ctr run
// --runtime io.containerd.runc.v2 --runc-binary PATH`.
func containerdConfig(old []byte, o Options, path string) ([]byte, error) {
	s := stripBlock(string(old))
	table := `plugins."io.containerd.grpc.v1.cri".containerd.runtimes.` + o.Name
	if strings.Contains(s, "["+table+"]") {
		return nil, fmt.Errorf("install: %s already has [%s] outside bulwark's block; remove it or install under another --name", o.Config, table)
	}
	if strings.TrimSpace(s) == "" {
		// containerd 1.x reads a file without "version" as the old v1
		// schema, where these plugin names differ.
		s = "version = 2\n"
	} else if !strings.Contains(s, "version = 2") && !strings.Contains(s, "version=2") {
		return nil, fmt.Errorf("install: %s is not a version 2 containerd config (no \"version = 2\"); migrate it with `containerd config migrate` first", o.Config)
	}
	if !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	block := fmt.Sprintf("%s\n[%s]\n  runtime_type = \"io.containerd.runc.v2\"\n[%s.options]\n  BinaryName = %s\n%s\n",
		beginMark, table, table, strconv.Quote(path), endMark)
	return []byte(s + block), nil
}

// Apply writes the change: the backup first (only on the first install, so
// it keeps the user's original), then the config atomically.
func Apply(c *Change) error {
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
	if c.Wrapper != "" {
		if err := writeAtomic(c.Wrapper, c.WrapSrc, 0o755); err != nil {
			return fmt.Errorf("install: wrapper %s: %w", c.Wrapper, err)
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

// Undo puts back the file as it was before the first install and removes
// the backup. It fails when there is nothing to undo.
func Undo(o Options) (string, error) {
	if _, ok := DefaultConfig[o.Engine]; !ok {
		return "", fmt.Errorf("install: unknown engine %q (docker, podman or containerd)", o.Engine)
	}
	if o.Config == "" {
		o.Config = DefaultConfig[o.Engine]
	}
	if _, err := os.Stat(o.Config + absentSuffix); err == nil {
		if err := os.Remove(o.Config); err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("install --undo: %w", err)
		}
		return o.Config + " removed (it did not exist before install)", os.Remove(o.Config + absentSuffix)
	}
	b, err := os.ReadFile(o.Config + backupSuffix)
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("install --undo: no backup %s: bulwark install has not changed %s", o.Config+backupSuffix, o.Config)
	}
	if err != nil {
		return "", fmt.Errorf("install --undo: %w", err)
	}
	if err := writeAtomic(o.Config, b, modeOf(o.Config+backupSuffix)); err != nil {
		return "", fmt.Errorf("install --undo: %w", err)
	}
	return o.Config + " restored from " + o.Config + backupSuffix, os.Remove(o.Config + backupSuffix)
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
	return s, nil
}
