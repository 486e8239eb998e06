package audit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/moby/sys/capability"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/pkg/finding"
)

// shells are the programs that, setuid root, give anyone a root shell.
var shells = []string{"sh", "bash", "dash", "ash", "zsh", "ksh", "mksh", "csh", "tcsh", "fish", "busybox", "toybox"}

// maxImageFindings bounds the report on a tree full of SUID files or
// world-writable directories: past it one finding says how many more.
const maxImageFindings = 200

// ImageFindings scans a root filesystem for what raises privileges inside
// the container: SUID/SGID files, setuid shells, file capabilities, and
// world-writable directories without the sticky bit. Symlinks are not
// followed, and proc and sys at the top are skipped (a live root).
func ImageFindings(subject, root string) ([]finding.Finding, error) {
	var out []finding.Finding
	more := 0
	add := func(f finding.Finding) {
		if len(out) >= maxImageFindings {
			more++
			return
		}
		f.Subject = subject
		out = append(out, f)
	}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == root {
				return err
			}
			return nil // unreadable entries are not findings
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() && (rel == "proc" || rel == "sys") {
			return filepath.SkipDir
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		mode := info.Mode()
		where := "/" + filepath.ToSlash(rel)
		if rel == "." {
			where = "/"
		}
		if mode.IsDir() {
			if mode.Perm()&0o002 != 0 && mode&fs.ModeSticky == 0 {
				add(finding.Finding{ID: "image-world-writable-dir", Severity: finding.Medium, Where: where,
					Message: fmt.Sprintf("directory is world-writable without the sticky bit (%s)", mode),
					Reason:  "any user replaces or deletes other users' files in it: a program or script run from there by root is an attacker's",
					Fix:     fmt.Sprintf("chmod o-w %s, or chmod +t %s if it is a shared scratch directory", where, where)})
			}
			return nil
		}
		if !mode.IsRegular() {
			return nil
		}
		uid := ownerOf(info)
		if mode&fs.ModeSetuid != 0 {
			if slices.Contains(shells, filepath.Base(p)) && uid == 0 {
				add(finding.Finding{ID: "image-suid-shell", Severity: finding.High, Where: where,
					Message: "setuid-root shell",
					Reason:  "any process in the container that can run it is root: the non-root user the talk recommends is undone",
					Fix:     "chmod u-s " + where + ", and set no_new_privs (process.noNewPrivileges) so no setuid file can raise privileges"})
			} else {
				sev := finding.Low
				if uid == 0 {
					sev = finding.Medium
				}
				add(finding.Finding{ID: "image-suid", Severity: sev, Where: where,
					Message: fmt.Sprintf("setuid file (owner uid %d)", uid),
					Reason:  `"get rid of SUID binaries (or mount with nosuid)" (the talk): each is a way back to root for a non-root process, through its own bugs`,
					Fix:     "chmod u-s " + where + " if the workload does not need it; run with no_new_privs or mount the rootfs nosuid"})
			}
		}
		if mode&fs.ModeSetgid != 0 {
			add(finding.Finding{ID: "image-sgid", Severity: finding.Low, Where: where,
				Message: fmt.Sprintf("setgid file (group gid %d)", groupOf(info)),
				Reason:  "runs with a group the caller does not have (shadow, tty, ...): a way to read or write what that group owns",
				Fix:     "chmod g-s " + where + " if the workload does not need it; run with no_new_privs"})
		}
		if caps, err := fileCaps(p); err == nil && len(caps) > 0 {
			sev := finding.Low
			for _, c := range caps {
				if r, ok := capRisks[c]; ok && r.sev > finding.Low {
					sev = max(sev, min(r.sev, finding.High))
				} else if !ok {
					sev = max(sev, finding.Low)
				}
			}
			add(finding.Finding{ID: "image-file-caps", Severity: sev, Where: where,
				Message: "file capabilities: " + strings.Join(caps, ","),
				Reason:  "executing it grants these capabilities to any user, as a setuid binary grants root",
				Fix:     "setcap -r " + where + " unless needed; with no_new_privs file capabilities are not granted"})
		}
		return nil
	})
	if err != nil {
		return nil, &InputError{File: root, Msg: "cannot scan the root filesystem", Err: err}
	}
	if more > 0 {
		out = append(out, finding.Finding{ID: "image-more", Severity: finding.Info, Subject: subject, Where: root,
			Message: fmt.Sprintf("%d more image findings not listed", more), Reason: "the report lists the first " + fmt.Sprint(maxImageFindings)})
	}
	return out, nil
}

func ownerOf(fi fs.FileInfo) uint32 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Uid
	}
	return 0
}

func groupOf(fi fs.FileInfo) uint32 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Gid
	}
	return 0
}

// fileCaps reads security.capability (struct vfs_cap_data, v2 or v3) and
// returns the permitted set's names.
func fileCaps(p string) ([]string, error) {
	buf := make([]byte, 64)
	n, err := unix.Lgetxattr(p, "security.capability", buf)
	if err != nil {
		if errors.Is(err, unix.ENODATA) || errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		return nil, err
	}
	return DecodeFileCaps(buf[:n])
}

// DecodeFileCaps decodes a security.capability value into capability
// names (permitted set, which with the effective bit is what exec grants).
func DecodeFileCaps(b []byte) ([]string, error) {
	if len(b) < 12 {
		return nil, fmt.Errorf("security.capability: %d bytes, too short", len(b))
	}
	magic := binary.LittleEndian.Uint32(b[0:4])
	var words int
	switch magic & 0xff000000 {
	case 0x01000000:
		words = 1
	case 0x02000000, 0x03000000:
		words = 2
		if len(b) < 20 {
			return nil, fmt.Errorf("security.capability: %d bytes, too short for revision %d", len(b), magic>>24)
		}
	default:
		return nil, fmt.Errorf("security.capability: unknown revision %#x", magic>>24)
	}
	var perm uint64
	for i := range words {
		perm |= uint64(binary.LittleEndian.Uint32(b[4+8*i:8+8*i])) << (32 * i)
	}
	var out []string
	for bit := range 64 {
		if perm&(1<<bit) == 0 {
			continue
		}
		name := capability.Cap(bit).String()
		if strings.HasPrefix(name, "unknown") || name == "" {
			name = fmt.Sprintf("%d", bit)
		}
		out = append(out, "CAP_"+strings.ToUpper(name))
	}
	return out, nil
}
