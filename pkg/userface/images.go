package userface

import (
	"context"
	"io"
	"time"

	"github.com/bulwark-sec/bulwark/internal/toolsproto"
	"github.com/bulwark-sec/bulwark/pkg/image"
	"github.com/bulwark-sec/bulwark/pkg/image/store"
)

// Images is a person's image store: pull, load, list, inspect, remove and
// prune, all in the store this person's runs use. The person face decides
// where it lives, so `bulwark run IMAGE` and `bulwark pull` can never
// disagree about it, and rootless runs will get their own.
type Images struct {
	// DataRoot is where the store lives; "" is the caller's default
	// (/var/lib/bulwark for root, ~/.local/share/bulwark otherwise).
	DataRoot string
	// Progress gets a line per step of a pull or load; nil for quiet.
	Progress func(format string, args ...any)
	// Bars draws a progress bar per layer on stderr instead, which must
	// be a terminal.
	Bars bool
	// Timeout fails a pull whose registry sends nothing for that long,
	// naming the manifest or layer it stalled in (0: DefaultPullTimeout).
	Timeout time.Duration
}

// DefaultPullTimeout is how long a pull waits for a registry's next byte
// when the person does not say (pull --timeout): long enough for a slow
// link or a registry busy for a moment, short enough that a hung one is
// named before the person gives up on it.
const DefaultPullTimeout = 60 * time.Second

// Root is the store's directory.
func (s Images) Root() string {
	if s.DataRoot != "" {
		return s.DataRoot
	}
	return image.DefaultDataRoot()
}

// call runs a flow that brings images in (pkg/image/fetch) in
// bulwark-tools: the registry client, TLS and the decompressors stay out
// of the binary containers start from.
func (s Images) call(ctx context.Context, op, arg string, stdin io.Reader, result any) error {
	var progress func(string)
	if s.Progress != nil {
		progress = func(line string) { s.Progress("%s", line) }
	}
	req := toolsproto.Request{Op: op, DataRoot: s.Root(), Arg: arg, Bars: s.Bars, Timeout: s.Timeout}
	if req.Timeout <= 0 {
		req.Timeout = DefaultPullTimeout
	}
	return toolsproto.Call(ctx, req, stdin, progress, result)
}

// Pull fetches ref for the host's platform.
func (s Images) Pull(ctx context.Context, ref string) (store.Image, error) {
	var im store.Image
	err := s.call(ctx, toolsproto.OpPull, ref, nil, &im)
	return im, err
}

// Load reads a docker-archive, OCI archive or OCI layout from path ("" or
// "-": stdin). The images loaded before an error are returned with it.
func (s Images) Load(ctx context.Context, path string, stdin io.Reader) ([]store.Image, error) {
	var ims []store.Image
	err := s.call(ctx, toolsproto.OpLoad, path, stdin, &ims)
	return ims, err
}

// List returns every image in the store.
func (s Images) List() ([]store.Image, error) { return image.List(s.Root()) }

// Inspect describes one image by name or ID.
func (s Images) Inspect(ref string) (image.Inspection, error) { return image.Inspect(s.Root(), ref) }

// Remove drops the named images, keeping layers a container still uses.
func (s Images) Remove(refs []string) ([]image.Removal, int, error) {
	return image.Remove(s.Root(), refs)
}

// Prune removes the layers and blobs no image or container uses.
func (s Images) Prune() ([]string, int, error) { return image.Prune(s.Root()) }
