package profiles

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// Resolve returns the profile named by arg: a built-in name (see Names), or
// the path of a JSON file holding an OCI linux.seccomp object, a whole
// config.json (whose linux.seccomp is taken) or a profile `bulwark learn`
// wrote (its seccomp). Built-in names win over
// files of the same name in the working directory, so "default" always
// means Bulwark's default. reasons is Reasons(arg) for built-ins, nil for
// files. A config.json without linux.seccomp resolves to (nil, nil, nil):
// that container runs unconfined.
func Resolve(arg string) (s *specs.LinuxSeccomp, reasons []string, err error) {
	for _, n := range Names() {
		if arg == n {
			s, err := ByName(n)
			return s, Reasons(n), err
		}
	}
	data, err := os.ReadFile(arg)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && !strings.ContainsAny(arg, "/.") {
			return nil, nil, fmt.Errorf("unknown seccomp profile %q (known: %s; or give the path of a JSON file)", arg, strings.Join(Names(), ", "))
		}
		return nil, nil, fmt.Errorf("reading seccomp profile: %w", err)
	}
	// A config.json has ociVersion or linux at the top; a seccomp object has
	// defaultAction or syscalls.
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, nil, fmt.Errorf("%s: not a JSON object: %w", arg, err)
	}
	if _, ok := probe["bulwarkProfile"]; ok {
		// A profile `bulwark learn` wrote (pkg/learn): its seccomp object.
		var lp struct {
			Seccomp *specs.LinuxSeccomp `json:"seccomp"`
		}
		if err := json.Unmarshal(data, &lp); err != nil {
			return nil, nil, fmt.Errorf("%s: seccomp: %w", arg, err)
		}
		if lp.Seccomp == nil {
			return nil, nil, fmt.Errorf("%s: a learned profile without a seccomp object", arg)
		}
		return lp.Seccomp, nil, nil
	}
	if _, ok := probe["linux"]; ok {
		var spec specs.Spec
		if err := json.Unmarshal(data, &spec); err != nil {
			return nil, nil, fmt.Errorf("%s: linux.seccomp: %w", arg, err)
		}
		if spec.Linux == nil {
			return nil, nil, nil
		}
		return spec.Linux.Seccomp, nil, nil
	}
	if _, ok := probe["ociVersion"]; ok {
		return nil, nil, nil // a config without a linux section has no seccomp
	}
	s = new(specs.LinuxSeccomp)
	if err := json.Unmarshal(data, s); err != nil {
		return nil, nil, fmt.Errorf("%s: seccomp profile: %w", arg, err)
	}
	return s, nil, nil
}
