package userface

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/bulwark-sec/bulwark/pkg/passwd"
	"github.com/bulwark-sec/bulwark/pkg/policy"
)

// userEntries gives the payload's uid and gid a name when the rootfs's
// /etc/passwd or /etc/group has none. Programs that look their own user up
// abort without one (postgres: "could not look up effective user ID
// 1000"; ssh, Python's getpass, whoami), and webapp and database run as
// uid 1000, which few images list. As Podman does, the container gets a
// private copy of the image's file with one line added, bound over it
// read-only; the image is never changed. Nothing is added when the rootfs
// has no such file (a static payload's rootfs) or the person binds their
// own (-v wins), and the uid or gid is named the way Podman names it, by
// its number, unless the image already uses that name.
func (h *host) userEntries(s *specs.Spec, dir string) error {
	if s.Root == nil || s.Process == nil {
		return nil
	}
	u := s.Process.User
	home := "/"
	if m := mountOf(s, "/tmp"); m != nil && m.Destination == "/tmp" {
		// A HOME the payload can write to: tools keep their
		// configuration and caches there.
		home = "/tmp"
	}
	id := strconv.FormatUint(uint64(u.UID), 10)
	gid := strconv.FormatUint(uint64(u.GID), 10)
	files := []struct {
		name string
		has  func([]byte) (bool, []string, error)
		line func(name string) string
	}{
		{"passwd", func(b []byte) (bool, []string, error) {
			us, err := passwd.ParseUsers(bytes.NewReader(b))
			names := make([]string, len(us))
			for i, e := range us {
				names[i] = e.Name
			}
			return slices.ContainsFunc(us, func(e passwd.User) bool { return e.UID == u.UID }), names, err
		}, func(name string) string {
			return name + ":x:" + id + ":" + gid + ":container user:" + home + ":/bin/sh\n"
		}},
		{"group", func(b []byte) (bool, []string, error) {
			gs, err := passwd.ParseGroups(bytes.NewReader(b))
			names := make([]string, len(gs))
			for i, e := range gs {
				names[i] = e.Name
			}
			return slices.ContainsFunc(gs, func(e passwd.Group) bool { return e.GID == u.GID }), names, err
		}, func(name string) string {
			return name + ":x:" + gid + ":\n"
		}},
	}
	for _, f := range files {
		dest := "/etc/" + f.name
		if m := mountOf(s, dest); m != nil && filepath.Clean(m.Destination) == dest {
			continue
		}
		root := s.Root.Path
		if h.etcRoot != "" {
			root = h.etcRoot
		}
		b, err := readInRoot(root, "etc/"+f.name)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("container %s: %w", dest, err)
		}
		has, names, err := f.has(b)
		if err != nil {
			return fmt.Errorf("container %s: %w", dest, err)
		}
		if has {
			continue
		}
		name := id
		if f.name == "group" {
			name = gid
		}
		if slices.Contains(names, name) {
			// The image uses the number as another id's name: an
			// entry under it would make the name ambiguous.
			name = "bulwark" + name
		}
		if len(b) > 0 && b[len(b)-1] != '\n' {
			b = append(b, '\n')
		}
		b = append(b, f.line(name)...)
		// dir is etcFiles', made and owned already.
		src := filepath.Join(dir, f.name)
		if err := os.WriteFile(src, b, 0o644); err != nil {
			return fmt.Errorf("container %s: %w", dest, err)
		}
		if err := policy.WithMount(src, dest, true)(s); err != nil {
			return fmt.Errorf("container %s: %w", dest, err)
		}
	}
	return nil
}

// readInRoot reads rel inside rootfs as passwd reads an image's files: in
// the root, regular files only, at most passwd.MaxSize.
func readInRoot(rootfs, rel string) ([]byte, error) {
	f, err := passwd.OpenInRoot(rootfs, rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, passwd.MaxSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > passwd.MaxSize {
		return nil, fmt.Errorf("the image's /%s is larger than %d bytes", rel, passwd.MaxSize)
	}
	return b, nil
}
