package vm

import (
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bulwark-sec/bulwark/internal/cpio"
	"github.com/bulwark-sec/bulwark/internal/vmproto"
)

// ErrNoKernel: no guest kernel to boot.
var ErrNoKernel = errors.New("no guest kernel (install Debian's linux-image-amd64: scripts/install-vm.sh, or set BULWARK_VM_KERNEL)")

// EnvKernel names the guest kernel (a bzImage or an ELF vmlinux) instead
// of the newest /boot/vmlinuz-*.
const EnvKernel = "BULWARK_VM_KERNEL"

// guestModules are what the agent needs that Debian builds as modules:
// the virtio transports (mmio for microvm, pci for pc), the console
// driver behind virtio-serial, and both ways of sharing the rootfs.
var guestModules = []string{
	"virtio_mmio", "virtio_pci", "virtio_console",
	"virtiofs", "9pnet_virtio", "9p",
}

// netModules drive the guest's NIC (pkg/vmnet); the agent loads them only
// for a container that has a network interface to carry.
var netModules = []string{"virtio_net"}

// MinimalKernel is where scripts/build-vm-kernel.sh leaves its kernel:
// built from Debian's linux-source with everything the agent needs built
// in and virtio-mmio devices taken from the command line, it boots on
// QEMU's microvm machine without firmware tables, modules or PCI, in a
// fraction of the stock kernel's time (docs/vm.md). Used when present.
var MinimalKernel = filepath.Join(DefaultCacheDir, "kernel", "vmlinux")

// Kernel is the guest kernel found on the host.
type Kernel struct {
	Path    string // what was found (bzImage or vmlinux)
	Version string // its release, naming /lib/modules/VERSION; "" if unknown
	// Microvm: its config (next to it) builds in virtio-mmio with
	// command-line devices and the console and filesystem drivers, so it
	// boots on -M microvm with no ACPI and no modules.
	Microvm bool
	// NIC: it has a virtio-net driver, built in or as a module the
	// initramfs carries, so the guest can get the container's network.
	NIC bool
}

// FindKernel returns $BULWARK_VM_KERNEL, else the minimal kernel when
// scripts/build-vm-kernel.sh made one, else the newest /boot/vmlinuz-*.
func FindKernel() (*Kernel, error) {
	if k := os.Getenv(EnvKernel); k != "" {
		if _, err := os.Stat(k); err != nil {
			return nil, fmt.Errorf("%s: %w", EnvKernel, err)
		}
		return newKernel(k), nil
	}
	if fi, err := os.Stat(MinimalKernel); err == nil && fi.Mode().IsRegular() {
		return newKernel(MinimalKernel), nil
	}
	ks, _ := filepath.Glob("/boot/vmlinuz-*")
	if len(ks) == 0 {
		return nil, ErrNoKernel
	}
	sort.Strings(ks)
	return newKernel(ks[len(ks)-1]), nil
}

// found remembers the kernels this process has looked at, by path and
// file identity: creating a VM container looks the kernel up three times
// (preflight, assets, its config), and for Debian's kernel each look
// reads its config and parses its modules.dep (half a megabyte).
var found struct {
	sync.Mutex
	key string
	k   Kernel
}

func newKernel(path string) *Kernel {
	// The kernel and the config beside it (kernelConfig's names).
	key := ""
	for _, p := range []string{path, filepath.Join(filepath.Dir(path), "config"), filepath.Join(filepath.Dir(path), "config-"+versionOf(path))} {
		if fi, err := os.Stat(p); err == nil {
			st := fi.Sys().(*syscall.Stat_t)
			key += fmt.Sprintf("%s %d %d %d %d\n", p, fi.Size(), fi.ModTime().UnixNano(), st.Ino, st.Dev)
		} else if p == path {
			key = ""
			break
		}
	}
	found.Lock()
	defer found.Unlock()
	if key != "" && key == found.key {
		k := found.k
		return &k
	}
	k := &Kernel{Path: path, Version: versionOf(path)}
	cfg := kernelConfig(k)
	k.Microvm = microvmConfig(cfg)
	k.NIC = bytes.Contains(cfg, []byte("\nCONFIG_VIRTIO_NET=y\n"))
	if !k.NIC && k.Version != "" {
		_, err := modulePaths(filepath.Join("/lib/modules", k.Version), netModules, nil)
		k.NIC = err == nil
	}
	found.key, found.k = key, *k
	return k
}

// kernelConfig reads the kernel's build config: config-VERSION next to a
// Debian kernel, or config next to a built one.
func kernelConfig(k *Kernel) []byte {
	names := []string{"config"}
	if k.Version != "" {
		names = []string{"config-" + k.Version}
	}
	for _, n := range names {
		if b, err := os.ReadFile(filepath.Join(filepath.Dir(k.Path), n)); err == nil {
			return b
		}
	}
	return nil
}

// microvmOptions are what the agent needs on QEMU's microvm machine,
// built in: the transport with its devices on the command line (QEMU
// adds virtio_mmio.device=... there), the port and both filesystems.
var microvmOptions = []string{
	"VIRTIO_MMIO", "VIRTIO_MMIO_CMDLINE_DEVICES", "VIRTIO_CONSOLE",
	"VIRTIO_FS", "NET_9P_VIRTIO", "9P_FS", "PVH",
}

func microvmConfig(cfg []byte) bool {
	if len(cfg) == 0 {
		return false
	}
	for _, o := range microvmOptions {
		if !bytes.Contains(cfg, []byte("\nCONFIG_"+o+"=y\n")) {
			return false
		}
	}
	return true
}

func versionOf(path string) string {
	base := filepath.Base(path)
	for _, p := range []string{"vmlinuz-", "vmlinux-"} {
		if v, ok := strings.CutPrefix(base, p); ok {
			return v
		}
	}
	return ""
}

// cacheKey names a cached artefact after what it was made from: paths,
// sizes, mtimes and inodes, so a new kernel or binary makes a new one.
func cacheKey(paths ...string) (string, error) {
	h := sha256.New()
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return "", err
		}
		st := fi.Sys().(*syscall.Stat_t)
		fmt.Fprintf(h, "%s %d %d %d %d\n", p, fi.Size(), fi.ModTime().UnixNano(), st.Ino, st.Dev)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// writeAtomic writes a file by temp and rename, so that a concurrent boot
// sees the old file or the whole new one.
func writeAtomic(path string, write func(io.Writer) error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

var xzMagic = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}

// bootKernel returns the kernel QEMU should boot: the ELF vmlinux inside
// a PVH-capable xz bzImage (cached), which QEMU enters at its 64-bit entry
// with no real-mode setup and no decompression: under TCG these cost the
// guest seconds. Anything else is booted as found.
func bootKernel(k *Kernel, cacheDir string) (string, error) {
	head := make([]byte, 4)
	if f, err := os.Open(k.Path); err != nil {
		return "", fmt.Errorf("guest kernel: %w", err)
	} else {
		_, _ = io.ReadFull(f, head)
		f.Close()
	}
	if string(head) == "\x7fELF" {
		return k.Path, nil
	}
	if cfg := kernelConfig(k); !bytes.Contains(cfg, []byte("\nCONFIG_PVH=y\n")) {
		return k.Path, nil
	}
	xz, err := exec.LookPath("xz")
	if err != nil {
		return k.Path, nil
	}
	key, err := cacheKey(k.Path)
	if err != nil {
		return "", err
	}
	out := filepath.Join(cacheDir, "vmlinux-"+k.Version+"-"+key)
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	img, err := os.ReadFile(k.Path)
	if err != nil {
		return "", err
	}
	i := bytes.Index(img, xzMagic)
	if i < 0 {
		return k.Path, nil
	}
	err = writeAtomic(out, func(w io.Writer) error {
		cmd := exec.Command(xz, "-dc", "--single-stream")
		var stderr bytes.Buffer
		cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(img[i:]), w, &stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("xz -d of %s: %v: %s", k.Path, err, strings.TrimSpace(stderr.String()))
		}
		return nil
	})
	if err != nil {
		// Not an xz kernel after all (Debian's cloud kernel is LZ4, and
		// its bytes can hold xz's magic by chance): boot it as found,
		// slower but booting.
		return k.Path, nil
	}
	return out, nil
}

// ErrDynamic: the binary that would be the guest's /init needs a dynamic
// loader the initramfs does not have.
var ErrDynamic = errors.New("is dynamically linked; the guest agent must be static (build with scripts/build.sh)")

// checkStatic refuses a dynamically linked agent binary before a boot that
// would end in a kernel panic ("No working init found").
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("guest agent %s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("guest agent %s %w", path, ErrDynamic)
		}
	}
	return nil
}

// modulePaths resolves modules and their dependencies from modules.dep
// into load order (dependencies first), leaving out those in skip (loaded
// already). Modules built into the kernel need nothing.
func modulePaths(modDir string, modules, skip []string) ([]string, error) {
	dep, err := os.ReadFile(filepath.Join(modDir, "modules.dep"))
	if err != nil {
		return nil, fmt.Errorf("guest kernel modules: %w (install the kernel's package, linux-image-amd64)", err)
	}
	builtin, _ := os.ReadFile(filepath.Join(modDir, "modules.builtin"))
	deps := map[string][]string{} // name -> dependency paths
	paths := map[string]string{}  // name -> path
	for _, line := range strings.Split(string(dep), "\n") {
		mod, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		name := modName(mod)
		paths[name] = mod
		deps[name] = strings.Fields(rest)
	}
	var order []string
	seen := map[string]bool{}
	for _, p := range skip {
		seen[modName(p)] = true
	}
	var add func(name string) error
	add = func(name string) error {
		if seen[name] {
			return nil
		}
		seen[name] = true
		p, ok := paths[name]
		if !ok {
			if bytes.Contains(builtin, []byte("/"+name+".ko\n")) {
				return nil
			}
			return fmt.Errorf("guest kernel in %s has no module %s (built-in or loadable)", modDir, name)
		}
		for _, d := range deps[name] {
			if err := add(modName(d)); err != nil {
				return err
			}
		}
		order = append(order, p)
		return nil
	}
	for _, m := range modules {
		if err := add(m); err != nil {
			return nil, err
		}
	}
	return order, nil
}

func modName(path string) string {
	b := filepath.Base(path)
	b, _, _ = strings.Cut(b, ".ko")
	return strings.ReplaceAll(b, "-", "_")
}

// initramfs returns the cached initramfs: the agent binary as /init and
// the guest modules, uncompressed (under TCG the guest copies far faster
// than it decompresses).
//
// The cache is keyed by what the file holds, not by where its inputs sit:
// every test run and every build makes a new binary file (a new inode and
// mtime) with the same bytes, and keyed by those each made another 15 MB
// file. The name is a hash of the agent's bytes and the kernel's identity;
// a link named after the inputs' stat (id-*) finds it again without
// hashing the binary on every boot. Cache files are then pruned by age
// and total size (pruneInitramfs), links by number (pruneLinks).
func initramfs(agent string, k *Kernel, cacheDir string) (string, error) {
	if err := checkStatic(agent); err != nil {
		return "", err
	}
	statKey, err := cacheKey(agent, k.Path)
	if err != nil {
		return "", err
	}
	id := filepath.Join(cacheDir, "id-"+statKey)
	if target, err := os.Readlink(id); err == nil && !strings.Contains(target, "/") {
		out := filepath.Join(cacheDir, target)
		if _, err := os.Stat(out); err == nil {
			touch(out)
			return out, nil
		}
	}
	bin, err := os.ReadFile(agent)
	if err != nil {
		return "", err
	}
	kernelKey, err := cacheKey(k.Path)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(append([]byte(initramfsLayout+"\n"+kernelKey+"\n"+k.Version+"\n"), bin...))
	name := "initramfs-" + k.Version + "-" + hex.EncodeToString(sum[:])[:16] + ".cpio"
	out := filepath.Join(cacheDir, name)
	if _, err := os.Stat(out); err == nil {
		touch(out)
	} else if err := writeInitramfs(out, bin, k); err != nil {
		return "", err
	}
	link(id, name)
	pruneInitramfs(cacheDir, out, CacheMaxAge, CacheMaxBytes)
	pruneLinks(cacheDir, id, CacheMaxLinks)
	return out, nil
}

// initramfsLayout names what writeInitramfs makes, in the content key:
// a change to it must not reuse files made the old way.
const initramfsLayout = "initramfs 3: loadable agent, net modules apart"

// loadable returns the part of a 64-bit little-endian ELF executable that
// execve maps (every segment's bytes, from the file's start), without the
// section headers and what only they point at: DWARF and the symbol
// table, a third of the bulwark binary. The guest's kernel unpacks the
// initramfs byte by byte under TCG, about 60 ms of CPU per MB measured
// here, so /init goes in without them; Go's stack traces use
// .gopclntab, which is in a segment. Anything it cannot parse, or whose
// section headers are not after the segments, is returned whole.
func loadable(bin []byte) []byte {
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil || f.Class != elf.ELFCLASS64 || f.Data != elf.ELFDATA2LSB || len(bin) < 64 {
		return bin
	}
	phoff := binary.LittleEndian.Uint64(bin[0x20:])
	phsize := uint64(binary.LittleEndian.Uint16(bin[0x36:])) * uint64(binary.LittleEndian.Uint16(bin[0x38:]))
	end := phoff + phsize
	for _, p := range f.Progs {
		end = max(end, p.Off+p.Filesz)
	}
	shoff := binary.LittleEndian.Uint64(bin[0x28:])
	if end >= uint64(len(bin)) || shoff < end {
		return bin
	}
	out := append([]byte(nil), bin[:end]...)
	binary.LittleEndian.PutUint64(out[0x28:], 0) // e_shoff
	binary.LittleEndian.PutUint16(out[0x3c:], 0) // e_shnum
	binary.LittleEndian.PutUint16(out[0x3e:], 0) // e_shstrndx
	return out
}

// writeInitramfs writes the agent binary bin and k's guest modules as an
// initramfs at out.
func writeInitramfs(out string, bin []byte, k *Kernel) error {
	modDir := filepath.Join("/lib/modules", k.Version)
	var mods, netMods []string
	if k.Version != "" {
		var err error
		if mods, err = modulePaths(modDir, guestModules, nil); err != nil {
			return err
		}
		// Without them the guest only has no NIC: a container that needs
		// one is refused (k.NIC), one without runs as before.
		netMods, _ = modulePaths(modDir, netModules, mods)
	}
	return writeAtomic(out, func(w io.Writer) error {
		c := cpioWriter{cpio.NewWriter(w)}
		for _, d := range []string{"dev", "proc", "sys", "lib", "lib/modules", "rootfs"} {
			if err := c.dir(d); err != nil {
				return err
			}
		}
		// The kernel opens /dev/console for init's stdio before /init runs.
		if err := c.Entry("dev/console", syscall.S_IFCHR|0o600, 0, 0, 5, 1, nil); err != nil {
			return err
		}
		if err := c.file("init", 0o755, loadable(bin)); err != nil {
			return err
		}
		for _, o := range []struct {
			order string
			mods  []string
		}{{vmproto.ModuleOrder, mods}, {vmproto.NetModuleOrder, netMods}} {
			var list []string
			for _, m := range o.mods {
				b, err := os.ReadFile(filepath.Join(modDir, m))
				if err != nil {
					return err
				}
				name := "lib/modules/" + filepath.Base(m)
				if err := c.file(name, 0o644, b); err != nil {
					return err
				}
				list = append(list, "/"+name)
			}
			if err := c.file(strings.TrimPrefix(o.order, "/"), 0o644, []byte(strings.Join(list, "\n")+"\n")); err != nil {
				return err
			}
		}
		return c.Close()
	})
}

// The initramfs cache's bounds: a file unused for CacheMaxAge goes, and
// the least recently used go first while all of them together exceed
// CacheMaxBytes. Each is one agent binary (15 MB) plus, for Debian's
// kernel, its modules; a VM starting right now has QEMU read its file at
// once, and a VM container holds its own by a bind mount.
var (
	CacheMaxAge         = time.Hour
	CacheMaxBytes int64 = 160 << 20
)

// CacheMaxLinks bounds the id-* links. Each build of the binary makes
// one, and while a file with the same bytes stays in use its links would
// stay with it: a test session made dozens an hour. A link only spares a
// boot the hashing of its binary, and no VM uses one once it has its file,
// so losing one costs at most one hash on that binary's next boot.
var CacheMaxLinks = 16

// touch marks a cache file used now (pruning goes by last use).
func touch(path string) {
	now := time.Now()
	_ = os.Chtimes(path, now, now)
}

// link points the id-* name at a cache file by its relative name,
// replacing what was there.
func link(id, target string) {
	tmp := id + ".tmp-" + strconv.Itoa(os.Getpid())
	_ = os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return
	}
	if err := os.Rename(tmp, id); err != nil {
		_ = os.Remove(tmp)
	}
}

// pruneInitramfs bounds the cache: initramfs-* files other than keep
// unused for longer than age go, then the least recently used until the
// rest fit in maxBytes; id-* links whose file is gone go with them.
func pruneInitramfs(dir, keep string, age time.Duration, maxBytes int64) {
	es, _ := os.ReadDir(dir)
	type file struct {
		path string
		size int64
		used time.Time
	}
	var files []file
	var total int64
	for _, e := range es {
		if !strings.HasPrefix(e.Name(), "initramfs-") || !e.Type().IsRegular() {
			continue
		}
		p := filepath.Join(dir, e.Name())
		fi, err := e.Info()
		if err != nil {
			continue
		}
		if p != keep && time.Since(fi.ModTime()) > age {
			_ = os.Remove(p)
			continue
		}
		files = append(files, file{p, fi.Size(), fi.ModTime()})
		total += fi.Size()
	}
	sort.Slice(files, func(i, j int) bool { return files[i].used.Before(files[j].used) })
	for _, f := range files {
		if total <= maxBytes {
			break
		}
		if f.path == keep {
			continue
		}
		if os.Remove(f.path) == nil {
			total -= f.size
		}
	}
	for _, e := range es {
		if !strings.HasPrefix(e.Name(), "id-") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			_ = os.Remove(p)
		}
	}
}

// pruneLinks keeps the n newest id-* links in dir (by when they were
// made), keep among them whatever its age, and removes the others.
func pruneLinks(dir, keep string, n int) {
	es, _ := os.ReadDir(dir)
	type lnk struct {
		path string
		made time.Time
	}
	var links []lnk
	for _, e := range es {
		p := filepath.Join(dir, e.Name())
		if !strings.HasPrefix(e.Name(), "id-") || e.Type()&os.ModeSymlink == 0 || p == keep {
			continue
		}
		fi, err := os.Lstat(p)
		if err != nil {
			continue
		}
		links = append(links, lnk{p, fi.ModTime()})
	}
	if keep != "" {
		n-- // keep is one of the n
	}
	n = max(n, 0)
	if len(links) <= n {
		return
	}
	sort.Slice(links, func(i, j int) bool {
		if !links[i].made.Equal(links[j].made) {
			return links[i].made.After(links[j].made)
		}
		return links[i].path > links[j].path
	})
	for _, l := range links[n:] {
		_ = os.Remove(l.path)
	}
}
