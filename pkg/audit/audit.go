package audit

import (
	"github.com/bulwark-sec/bulwark/pkg/finding"
)

// Audit judges every subject: its configuration and, when it has one on
// this machine, its root filesystem.
func Audit(subs []Subject) ([]finding.Finding, error) {
	var out []finding.Finding
	for i := range subs {
		out = append(out, configFindings(&subs[i])...)
		if subs[i].Rootfs != "" {
			fs, err := ImageFindings(subs[i].Name, subs[i].Rootfs)
			if err != nil {
				return nil, err
			}
			out = append(out, fs...)
		}
	}
	return out, nil
}
