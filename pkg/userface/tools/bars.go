package tools

import (
	"fmt"
	"io"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// bars draws one progress bar per layer on w, a terminal (the person's
// stderr: bulwark asks for bars only when it is one, and without
// --quiet). They live here, in bulwark-tools, so that the bar library
// stays out of the bulwark binary.
type bars struct{ p *mpb.Progress }

func newBars(w io.Writer) *bars {
	return &bars{p: mpb.New(mpb.WithOutput(w), mpb.WithWidth(40))}
}

// meter is an ingest.Options.Meter drawing a bar per layer.
func (b *bars) meter(i, n int, id string, size int64) (func(int), func(error)) {
	name := fmt.Sprintf("layer %d/%d %s", i+1, n, id)
	// An archive's layer has no size up front: count what was read.
	count := decor.CurrentKibiByte("% .1f")
	if size > 0 {
		count = decor.CountersKibiByte("% .1f / % .1f")
	}
	bar := b.p.AddBar(size,
		mpb.PrependDecorators(decor.Name(name, decor.WCSyncSpaceR)),
		mpb.AppendDecorators(decor.OnAbort(decor.OnComplete(count, "done"), "failed")),
	)
	return bar.IncrBy, func(err error) {
		if err != nil {
			bar.Abort(false)
			return
		}
		bar.SetTotal(-1, true) // complete, whatever the source promised
	}
}

// wait lets the last frame be drawn.
func (b *bars) wait() { b.p.Wait() }
