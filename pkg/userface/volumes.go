package userface

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/pkg/container"
	"github.com/bulwark-sec/bulwark/pkg/rootfs"
	"github.com/bulwark-sec/bulwark/pkg/userns"
)

// idmapVolumes shows each -v directory's owner as the container's root:
// the volume is bound from an idmapped mount of it made here, in the host's
// user namespace (the init no longer has the privilege to make one), under
// dir. Through it the directory's owner U appears as container root and
// what container root creates lands on the host as U; the container's
// other users keep their own host ids (the range's), so a volume never
// hands a host account to anyone but container root. A directory owned by
// host root (uid or gid 0) is not mapped that way: container root must
// never create files as host root, which a setuid file would turn into
// host root for whoever runs it on the host. idmap=C-H-N maps the given
// ids instead (explicitMap).
func (h *host) idmapVolumes(s *specs.Spec, dir string, vols []volumeFlag) error {
	if s.Linux == nil || len(s.Linux.UIDMappings) != 1 || len(s.Linux.GIDMappings) != 1 ||
		s.Linux.UIDMappings[0].ContainerID != 0 || s.Linux.GIDMappings[0].ContainerID != 0 {
		return nil // no user namespace of ours, nothing to shift
	}
	type job struct {
		v        volumeFlag
		src      string
		uid, gid []specs.LinuxIDMapping
		target   string
	}
	var jobs []job
	for _, v := range vols {
		if v.noIdmap {
			continue
		}
		src, err := filepath.Abs(v.src)
		if err != nil {
			return fmt.Errorf("%s: %w", v.flag, err)
		}
		var st unix.Stat_t
		if err := unix.Stat(src, &st); err != nil {
			return fmt.Errorf("%s: %w", v.flag, err)
		}
		var uid, gid []specs.LinuxIDMapping
		if v.idmap != nil {
			if uid, err = explicitMap(*v.idmap, s.Linux.UIDMappings[0]); err == nil {
				gid, err = explicitMap(*v.idmap, s.Linux.GIDMappings[0])
			}
			if err != nil {
				return fmt.Errorf("%s: %w", v.flag, err)
			}
		} else {
			var umapped, gmapped bool
			uid, umapped = volumeMap(st.Uid, s.Linux.UIDMappings[0])
			gid, gmapped = volumeMap(st.Gid, s.Linux.GIDMappings[0])
			if !umapped && !gmapped {
				continue // the plain bind shows the same
			}
		}
		jobs = append(jobs, job{v: v, src: src, uid: uid, gid: gid, target: filepath.Join(dir, strconv.Itoa(len(jobs)))})
	}
	if len(jobs) == 0 {
		return nil
	}
	for _, j := range jobs {
		if !j.v.ro {
			if err := noSetIDFiles(s, j.v.flag); err != nil {
				return err
			}
		}
	}
	// Recorded before they exist, unmounted before their directories
	// go, and the directories only ever rmdir'ed: a removal that
	// recursed into a volume still mounted would delete the person's data.
	var owns []container.Owned
	for _, j := range jobs {
		owns = append(owns, container.Owned{Kind: container.OwnedMount, Path: j.target},
			container.Owned{Kind: container.OwnedSharedDir, Path: j.target})
	}
	h.own(append(owns, container.Owned{Kind: container.OwnedSharedDir, Path: dir},
		container.Owned{Kind: container.OwnedSharedDir, Path: filepath.Dir(dir)})...)
	// Only the container's root (and host root) may pass dir: nobody else
	// on the host reaches the shifted view.
	if err := os.MkdirAll(filepath.Dir(dir), 0o711); err != nil {
		return fmt.Errorf("volumes: %w", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("volumes: %w", err)
	}
	if err := os.Chown(dir, int(s.Linux.UIDMappings[0].HostID), int(s.Linux.GIDMappings[0].HostID)); err != nil {
		return fmt.Errorf("volumes: %w", err)
	}
	for _, j := range jobs {
		if err := os.Mkdir(j.target, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s: %w", j.v.flag, err)
		}
		if err := rootfs.IdmapOnto(j.src, j.target, j.uid, j.gid); err != nil {
			if errors.Is(err, rootfs.ErrNoIdmap) {
				return fmt.Errorf("%s: %w; add :noidmap to bind it unshifted (its files then appear owned by nobody unless chowned to the container's range, see --userns-range)", j.v.flag, err)
			}
			return fmt.Errorf("%s: %w", j.v.flag, err)
		}
		if !rebind(s, j.src, j.v.dst, j.target) {
			return fmt.Errorf("%s: internal error: no bind mount of %s at %s in the spec", j.v.flag, j.src, j.v.dst)
		}
	}
	return nil
}

// volumeMap is the mount idmap for a volume whose directory's owner is
// id, in a container whose id map is m: on-disk id shows as the
// container's root, the rest of the range stays itself. mapped is false
// when that is the identity (id is host root, or already the range's).
func volumeMap(id uint32, m specs.LinuxIDMapping) (out []specs.LinuxIDMapping, mapped bool) {
	whole := []specs.LinuxIDMapping{{ContainerID: m.HostID, HostID: m.HostID, Size: m.Size}}
	if id == 0 || id >= m.HostID && uint64(id) < uint64(m.HostID)+uint64(m.Size) {
		return whole, false
	}
	out = []specs.LinuxIDMapping{{ContainerID: id, HostID: m.HostID, Size: 1}}
	if m.Size > 1 {
		out = append(out, specs.LinuxIDMapping{ContainerID: m.HostID + 1, HostID: m.HostID + 1, Size: m.Size - 1})
	}
	return out, true
}

// explicitMap is the mount idmap for idmap=CONTAINERID-HOSTID-SIZE in a
// container whose id map is m: on-disk host ids im.HostID... show as the
// container's ids im.ContainerID..., the rest of its range stays itself.
// The host ids must lie outside the pool, whose ids belong to containers
// (this one's included: mapping them twice is no map).
func explicitMap(im, m specs.LinuxIDMapping) ([]specs.LinuxIDMapping, error) {
	if uint64(im.ContainerID)+uint64(im.Size) > uint64(m.Size) {
		return nil, fmt.Errorf("idmap=%d-%d-%d: container ids beyond the container's %d", im.ContainerID, im.HostID, im.Size, m.Size)
	}
	pool := userns.Default()
	lo, hi := uint64(im.HostID), uint64(im.HostID)+uint64(im.Size)
	plo, phi := uint64(pool.Base), uint64(pool.Base)+uint64(pool.MaxRanges)*uint64(pool.Size)
	rlo, rhi := uint64(m.HostID), uint64(m.HostID)+uint64(m.Size)
	if lo < phi && plo < hi || lo < rhi && rlo < hi {
		return nil, fmt.Errorf("idmap=%d-%d-%d: host ids %d-%d overlap the user namespace pool's %d-%d or this container's range, whose ids belong to containers",
			im.ContainerID, im.HostID, im.Size, lo, hi-1, plo, phi-1)
	}
	at := m.HostID + im.ContainerID
	out := []specs.LinuxIDMapping{{ContainerID: im.HostID, HostID: at, Size: im.Size}}
	if im.ContainerID > 0 {
		out = append(out, specs.LinuxIDMapping{ContainerID: m.HostID, HostID: m.HostID, Size: im.ContainerID})
	}
	if rest := m.Size - im.ContainerID - im.Size; rest > 0 {
		out = append(out, specs.LinuxIDMapping{ContainerID: at + im.Size, HostID: at + im.Size, Size: rest})
	}
	return out, nil
}

// rebind points the bind mount policy.WithMount made for src at dst to
// source instead.
func rebind(s *specs.Spec, src, dst, source string) bool {
	d := filepath.Clean(dst)
	for i := range s.Mounts {
		if m := &s.Mounts[i]; m.Type == "bind" && m.Source == src && filepath.Clean(m.Destination) == d {
			m.Source = source
			return true
		}
	}
	return false
}

// checkRange refuses an explicit --userns-range that shares host ids with
// the pool (whose ranges go to other containers, now or later) or with a
// container of this root not yet deleted (stopped, it still owns its
// files): sharing ids with a container is owning its
// files and signalling its processes.
func checkRange(rt *container.Runtime, flag string) error {
	rg, err := userns.ParseRange(flag)
	if err != nil {
		return fmt.Errorf("--userns-range %q: %w", flag, err)
	}
	lo, hi := uint64(rg.HostID), uint64(rg.HostID)+uint64(rg.Size)
	pool := userns.Default()
	plo, phi := uint64(pool.Base), uint64(pool.Base)+uint64(pool.MaxRanges)*uint64(pool.Size)
	if lo < phi && plo < hi {
		return fmt.Errorf("--userns-range %q: host ids %d-%d overlap the user namespace pool's ids %d-%d, which it hands to other containers: pick a range outside it (from %d up)",
			flag, lo, hi-1, plo, phi-1, phi)
	}
	sts, err := rt.List()
	if err != nil {
		return fmt.Errorf("--userns-range %q: listing live containers: %w", flag, err)
	}
	for _, st := range sts {
		if st.Config == nil || st.Config.Linux == nil {
			continue
		}
		for _, ms := range [][]specs.LinuxIDMapping{st.Config.Linux.UIDMappings, st.Config.Linux.GIDMappings} {
			for _, m := range ms {
				if lo < uint64(m.HostID)+uint64(m.Size) && uint64(m.HostID) < hi {
					return fmt.Errorf("--userns-range %q: host ids %d-%d overlap the range %d-%d of the live container %s, whose files and processes they would own",
						flag, lo, hi-1, m.HostID, uint64(m.HostID)+uint64(m.Size)-1, st.ID)
				}
			}
		}
	}
	return nil
}
