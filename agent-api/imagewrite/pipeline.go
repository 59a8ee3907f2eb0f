package imagewrite

import (
	"context"
	"errors"
	"fmt"
	"io"
)

const (
	// bufferSize and bufferCount bound the memory between the reader and the
	// writer: 16 MiB, enough for each side to keep working while the other
	// waits.
	bufferSize  = 4 << 20
	bufferCount = 4
	// writebackWindow is the unit the kernel is asked to write back in;
	// at most writebackLag windows are dirty at once.
	writebackWindow = 32 << 20
	writebackLag    = 2
	// disarmSize is what is zeroed of a partial, unverified write: the
	// partition tables and boot code live there.
	disarmSize = 1 << 20
)

// chunk is one unit of work for the disk: data to write at off, or (data
// nil) n bytes to zero.
type chunk struct {
	off  int64
	data []byte
	n    int64
}

// pipe carries chunks from a producer goroutine to the writer.
type pipe struct {
	ctx  context.Context
	free chan []byte
	full chan chunk
}

// buffer waits for a free buffer.
func (p *pipe) buffer() ([]byte, error) {
	select {
	case b := <-p.free:
		return b, nil
	case <-p.ctx.Done():
		return nil, p.ctx.Err()
	}
}

func (p *pipe) send(c chunk) error {
	select {
	case p.full <- c:
		return nil
	case <-p.ctx.Done():
		return p.ctx.Err()
	}
}

// runPipeline runs produce in a goroutine of its own and consume in the
// caller's, until produce returns and every chunk sent is consumed or
// either fails. The producer's blocking points watch the pipeline's
// context, cancelled when consume fails, so it always returns; runPipeline
// waits for it.
func runPipeline(ctx context.Context, produce func(*pipe) error, consume func(chunk) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p := &pipe{ctx: ctx, free: make(chan []byte, bufferCount), full: make(chan chunk, bufferCount)}
	for range bufferCount {
		p.free <- make([]byte, bufferSize)
	}
	produced := make(chan error, 1)
	go func() {
		defer close(p.full)
		produced <- produce(p)
	}()
	var consumeErr error
	for c := range p.full {
		if consumeErr == nil {
			if consumeErr = consume(c); consumeErr != nil {
				cancel()
			}
		}
		if c.data != nil {
			p.free <- c.data[:cap(c.data)]
		}
	}
	produceErr := <-produced
	if consumeErr != nil {
		return consumeErr
	}
	return produceErr
}

// copyInto sends what r yields, in full buffers, from offset 0.
func copyInto(p *pipe, r io.Reader) error {
	var off int64
	for {
		buf, err := p.buffer()
		if err != nil {
			return err
		}
		n, err := fill(r, buf)
		if n > 0 {
			if serr := p.send(chunk{off: off, data: buf[:n], n: int64(n)}); serr != nil {
				return serr
			}
			off += int64(n)
		} else {
			p.free <- buf
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// fill reads until buf is full or r fails; unlike io.ReadFull it passes
// io.ErrUnexpectedEOF from r on as the error it is.
func fill(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// diskWriter writes chunks to the device in order and keeps the page
// cache's dirty share bounded.
type diskWriter struct {
	ctx      context.Context
	dev      *device
	progress func(int64)
	end      int64 // the furthest byte touched
	written  int64
	started  int64 // writeback started below this offset
	awaited  int64 // on the disk below this offset
}

func newDiskWriter(ctx context.Context, dev *device, progress func(int64)) *diskWriter {
	return &diskWriter{ctx: ctx, dev: dev, progress: progress}
}

func (w *diskWriter) consume(c chunk) error {
	end := c.off + c.n
	if end > w.dev.size {
		return fmt.Errorf("%w: the image goes past the disk's end (%d bytes)", ErrImageTooLarge, w.dev.size)
	}
	var err error
	if c.data != nil {
		err = w.dev.writeAt(c.data, c.off)
	} else {
		err = w.dev.zero(w.ctx, c.off, c.n)
	}
	w.end = max(w.end, end)
	if err != nil {
		return err
	}
	w.written += c.n
	if w.progress != nil {
		w.progress(w.written)
	}
	return w.writeback()
}

// writeback starts writing out each full window and waits for the window
// writebackLag behind, the pattern that keeps a streaming write from
// filling memory with dirty pages and a final fsync from taking long.
func (w *diskWriter) writeback() error {
	for w.end-w.started >= writebackWindow {
		w.dev.startWriteback(w.started, writebackWindow)
		w.started += writebackWindow
		if w.started-w.awaited > writebackLag*writebackWindow {
			if err := w.dev.awaitWriteback(w.awaited, writebackWindow); err != nil {
				return err
			}
			w.awaited += writebackWindow
		}
	}
	return nil
}

// cleanUp leaves no unverified image that could boot after err: a checksum
// mismatch zeroes every byte written; other failures zero the first MiB
// (the rest is unverified but inert without its partition table and boot
// code, and zeroing it all would not stop promptly on cancellation). It
// returns err with what was done appended.
func (w *diskWriter) cleanUp(ctx context.Context, err error) error {
	if w.end == 0 {
		return err
	}
	if errors.Is(err, ErrChecksumMismatch) {
		werr := w.dev.zero(ctx, 0, w.end)
		if werr == nil {
			werr = w.dev.sync()
		}
		if werr == nil {
			return fmt.Errorf("%w; the %d bytes written were zeroed", err, w.end)
		}
		err = fmt.Errorf("%w; zeroing the %d bytes written failed: %v", err, w.end, werr)
	}
	// The first MiB must go even when ctx is done: it is quick.
	n := min(w.end, disarmSize)
	werr := w.dev.zero(context.WithoutCancel(ctx), 0, n)
	if werr == nil {
		werr = w.dev.sync()
	}
	if werr != nil {
		return fmt.Errorf("%w; zeroing the start of the partial image failed: %v", err, werr)
	}
	return fmt.Errorf("%w; the partial image's first %d bytes were zeroed", err, n)
}
