package audit

import (
	"strings"

	"github.com/bulwark-sec/bulwark/pkg/finding"
	"github.com/bulwark-sec/bulwark/pkg/oci"
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
			if why := privilegeGainBlocked(&subs[i]); why != "" {
				for j := range fs {
					if raisesPrivilege[fs[j].ID] {
						fs[j].Severity = min(fs[j].Severity, finding.Low)
						fs[j].Message += " (harmless under this config: " + why + ")"
					}
				}
			}
			out = append(out, fs...)
		}
	}
	return out, nil
}

// raisesPrivilege are the image findings that matter only through execve
// gaining privileges.
var raisesPrivilege = map[string]bool{"image-suid-shell": true, "image-suid": true, "image-sgid": true, "image-file-caps": true}

// privilegeGainBlocked says why the config keeps setuid files and file
// capabilities from granting anything at exec: no_new_privs, or a rootfs
// attached nosuid.
func privilegeGainBlocked(sub *Subject) string {
	s := sub.Spec
	if s == nil || s.Process == nil {
		return ""
	}
	if s.Process.NoNewPrivileges {
		return "no_new_privs is on"
	}
	for _, o := range strings.Split(s.Annotations[oci.AnnotationRootfsOptions], ",") {
		if strings.TrimSpace(o) == "nosuid" {
			return "the rootfs is mounted nosuid"
		}
	}
	return ""
}
