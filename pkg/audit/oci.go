package audit

import (
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func loadOCIFile(path, bundle string) ([]Subject, error) {
	b, err := readLimited(path)
	if err != nil {
		return nil, err
	}
	return ParseOCI(path, b, bundle)
}

// ParseOCI reads an OCI runtime config.json. The spec is judged as written:
// an OCI runtime adds nothing the file does not ask for. bundle, when not
// empty, is where root.path is resolved for the image scan.
func ParseOCI(name string, data []byte, bundle string) ([]Subject, error) {
	var s specs.Spec
	if err := decodeJSON(name, data, &s); err != nil {
		return nil, err
	}
	if s.Process == nil {
		return nil, &InputError{File: name, Field: "process", Msg: "missing: not a container configuration"}
	}
	sub := Subject{Format: FormatOCI, Spec: &s}
	if bundle != "" && s.Root != nil && s.Root.Path != "" {
		root := s.Root.Path
		if !filepath.IsAbs(root) {
			root = filepath.Join(bundle, root)
		}
		if fi, err := os.Stat(root); err == nil && fi.IsDir() {
			sub.Rootfs = root
		}
	}
	return []Subject{sub}, nil
}
