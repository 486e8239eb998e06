package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Format names an input format.
type Format string

const (
	FormatOCI        Format = "oci"
	FormatDocker     Format = "docker"
	FormatKubernetes Format = "kubernetes"
	FormatRootfs     Format = "rootfs"
	FormatImage      Format = "image"
)

// ErrInput is wrapped by every error about the input (unreadable, malformed,
// unknown format): the CLI exits 2 on it.
var ErrInput = errors.New("bad audit input")

// InputError names the file and the field that could not be read.
type InputError struct {
	File  string
	Field string // empty when the whole file is at fault
	Msg   string
	Err   error
}

func (e *InputError) Error() string {
	s := e.File
	if e.Field != "" {
		s += ": " + e.Field
	}
	s += ": " + e.Msg
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *InputError) Unwrap() []error { return []error{ErrInput, e.Err} }

// Subject is one container to judge.
type Subject struct {
	// Name is the container's name (pod container, docker container) or
	// empty for a lone OCI config.
	Name   string
	Format Format
	// Spec is the configuration the container would run with, engine
	// defaults filled in; nil for a bare rootfs.
	Spec *specs.Spec
	// Privileged is set when the input said so in one word
	// (HostConfig.Privileged, securityContext.privileged).
	Privileged bool
	// UserUnknown: the input leaves the user to the image (a Kubernetes
	// container without runAsUser or runAsNonRoot, a docker user name).
	UserUnknown bool
	// PidsUnknown: the format has no pids limit field (Kubernetes sets it
	// per node), so its absence is not the spec's fault.
	PidsUnknown bool
	// HostUsernsUnknown: the engine may add a user namespace the input
	// does not show (dockerd --userns-remap).
	HostUsernsUnknown bool
	// Rootfs is a directory to scan for SUID files and the like; empty
	// when there is none on this machine.
	Rootfs string
	// Layers are an image's unpacked layer directories, lowest first, in
	// overlayfs's format (whiteouts are 0/0 character devices); scanned
	// as one tree.
	Layers []string
	// ImageUser is the image config's User, for an image alone.
	ImageUser *string
}

// ImageSubject is an image from a store: its layer directories, lowest
// first, and the user its config runs as.
func ImageSubject(ref string, layers []string, user string) Subject {
	return Subject{Name: ref, Format: FormatImage, Layers: layers, ImageUser: &user}
}

// maxInput bounds what is read from a file or stdin: no configuration is
// near this, and a mistaken target (a disk image) fails fast.
const maxInput = 64 << 20

// Load reads target into the subjects to judge. target is a bundle
// directory, a rootfs directory, a config.json, docker/podman inspect
// JSON, Kubernetes YAML or JSON, or "-" for any of the files on stdin.
func Load(target string, stdin io.Reader) ([]Subject, Format, error) {
	name := target
	var data []byte
	if target == "-" {
		name = "<stdin>"
		b, err := io.ReadAll(io.LimitReader(stdin, maxInput+1))
		if err != nil {
			return nil, "", &InputError{File: name, Msg: "read", Err: err}
		}
		data = b
	} else {
		fi, err := os.Stat(target)
		if err != nil {
			return nil, "", &InputError{File: target, Msg: "cannot read the target", Err: err}
		}
		if fi.IsDir() {
			cfg := filepath.Join(target, "config.json")
			if _, err := os.Stat(cfg); err == nil {
				subs, err := loadOCIFile(cfg, target)
				return subs, FormatOCI, err
			}
			return []Subject{{Format: FormatRootfs, Rootfs: target}}, FormatRootfs, nil
		}
		if !fi.Mode().IsRegular() {
			return nil, "", &InputError{File: target, Msg: "not a regular file or directory"}
		}
		b, err := readLimited(target)
		if err != nil {
			return nil, "", err
		}
		data = b
	}
	if len(data) > maxInput {
		return nil, "", &InputError{File: name, Msg: fmt.Sprintf("larger than %d MiB: not a container configuration", maxInput>>20)}
	}
	f, err := Detect(name, data)
	if err != nil {
		return nil, "", err
	}
	var subs []Subject
	switch f {
	case FormatOCI:
		bundle := ""
		if target != "-" {
			bundle = filepath.Dir(target)
		}
		subs, err = ParseOCI(name, data, bundle)
	case FormatDocker:
		subs, err = ParseDocker(name, data)
	case FormatKubernetes:
		subs, err = ParseKubernetes(name, data)
	}
	return subs, f, err
}

func readLimited(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, &InputError{File: path, Msg: "cannot read the target", Err: err}
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, maxInput+1))
	if err != nil {
		return nil, &InputError{File: path, Msg: "read", Err: err}
	}
	return b, nil
}

// Detect tells the format of a file's content: JSON arrays are inspect
// output, JSON objects are told apart by their keys, anything else must be
// Kubernetes YAML.
func Detect(name string, data []byte) (Format, error) {
	t := bytes.TrimSpace(data)
	if len(t) == 0 {
		return "", &InputError{File: name, Msg: "empty input"}
	}
	switch t[0] {
	case '[':
		return FormatDocker, nil
	case '{':
		var top map[string]json.RawMessage
		if err := decodeJSON(name, data, &top); err != nil {
			return "", err
		}
		keys := map[string]bool{}
		for k := range top {
			keys[k] = true
		}
		switch {
		case keys["ociVersion"] || keys["process"] || keys["root"] && keys["linux"]:
			return FormatOCI, nil
		case keys["HostConfig"]:
			return FormatDocker, nil
		case keys["kind"] || keys["apiVersion"]:
			return FormatKubernetes, nil
		}
		return "", &InputError{File: name, Msg: "unknown format: a JSON object that is neither an OCI config (ociVersion, process), nor docker inspect (HostConfig), nor a Kubernetes object (apiVersion, kind)"}
	}
	return FormatKubernetes, nil
}
