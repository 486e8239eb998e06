package audit

import (
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/pkg/finding"
	"github.com/bulwark-sec/bulwark/pkg/oci"
)

// Audit judges every subject: its configuration and, when it has one on
// this machine, its root filesystem.
func Audit(subs []Subject) ([]finding.Finding, error) {
	var out []finding.Finding
	for i := range subs {
		out = append(out, configFindings(&subs[i])...)
		if subs[i].ImageUser != nil {
			out = append(out, imageUserFindings(subs[i].Name, *subs[i].ImageUser)...)
		}
		if len(subs[i].Layers) > 0 {
			fs, err := LayerFindings(subs[i].Name, subs[i].Layers)
			if err != nil {
				return nil, err
			}
			out = append(out, fs...)
		}
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

// LayerFindings scans an image's layers as the tree a container sees: a
// path found in several layers counts once, as the uppermost layer has it,
// and a path an upper layer whites out (a 0/0 character device) is gone.
// An opaque directory's lower contents are still scanned: a finding too
// many rather than one missed.
func LayerFindings(subject string, layers []string) ([]finding.Finding, error) {
	type key struct{ id, where string }
	seen := map[key]int{}
	var out []finding.Finding
	for i, dir := range layers {
		fs, err := ImageFindings(subject, dir)
		if err != nil {
			return nil, err
		}
		for _, f := range fs {
			if whitedOut(layers[i+1:], f.Where) {
				continue
			}
			k := key{f.ID, f.Where}
			if j, ok := seen[k]; ok {
				out[j] = f
				continue
			}
			seen[k] = len(out)
			out = append(out, f)
		}
	}
	return out, nil
}

func whitedOut(upper []string, where string) bool {
	for _, dir := range upper {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(dir, where), &st); err == nil && st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0 {
			return true
		}
	}
	return false
}

func imageUserFindings(subject, user string) []finding.Finding {
	u, _, _ := strings.Cut(user, ":")
	if u != "" && u != "0" && u != "root" {
		return nil
	}
	return []finding.Finding{{ID: "image-user-root", Severity: finding.Medium, Subject: subject, Where: "config.User",
		Message: "the image runs as root unless the runtime sets a user",
		Reason:  `"that stuff shouldn't require root access: run processes as non-privileged user" (the talk)`,
		Fix:     "set USER to a non-root uid in the Dockerfile, or run it with --user"}}
}
