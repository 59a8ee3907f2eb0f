package imagewrite

import (
	"bufio"
	"compress/bzip2"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// zstdMaxWindow is the largest zstd window accepted: zstd's own default
// limit for decompression (--long=27), so that a frame cannot claim more
// memory than a ramdisk has.
const zstdMaxWindow = 128 << 20

// maxTrailing bounds the data accepted after the end of a compressed
// stream (it is hashed, not written).
const maxTrailing = 1 << 20

// writeStream writes a raw or compressed raw image in one pass.
func (w *writer) writeStream(ctx context.Context, src *source, head []byte, format Format, dev *device,
	want *expectedDigest, res *Result) error {
	var data io.Reader = src.raw
	if format == FormatRaw {
		if src.dl.size > dev.size {
			return fmt.Errorf("%w: the image is %d bytes, the disk %d", ErrImageTooLarge, src.dl.size, dev.size)
		}
	} else {
		if size, ok := zstdContentSize(format, head); ok && size > uint64(dev.size) {
			return fmt.Errorf("%w: the image is %d bytes uncompressed, the disk %d", ErrImageTooLarge, size, dev.size)
		}
		dec, err := newDecompressor(format, src.raw)
		if err != nil {
			return streamError(src, format, err)
		}
		defer dec.Close()
		inner := bufio.NewReaderSize(dec, peekSize)
		innerHead, err := inner.Peek(peekSize)
		if err != nil && err != io.EOF {
			return streamError(src, format, err)
		}
		if err := detectInner(format, innerHead, w.src.DiskFormat); err != nil {
			return err
		}
		w.log.Info("decompressing while writing", "url", w.shownURL, "format", format)
		data = inner
	}

	dw := newDiskWriter(ctx, dev, w.opts.Progress)
	consume := func(c chunk) error {
		err := dw.consume(c)
		if err != nil {
			src.stop() // or the reader may wait for a stalled server
		}
		return err
	}
	err := runPipeline(ctx, func(p *pipe) error { return copyInto(p, data) }, consume)
	if err != nil && format != FormatRaw {
		err = streamError(src, format, err)
	}
	if err == nil && format != FormatRaw {
		err = drainTrailing(src.raw, format)
	}
	src.finish(res)
	if err == nil {
		res.Digest, err = verifyDigest(src.hashed, want, w.shownURL)
	}
	if err != nil {
		return dw.cleanUp(ctx, err)
	}
	res.BytesWritten = dw.written
	return nil
}

// streamError tells a decompressor's complaint from a failure of the
// download or the disk that it passes on.
func streamError(src *source, format Format, err error) error {
	switch {
	case errors.Is(err, ErrImageTooLarge), errors.Is(err, ErrDevice):
		return err
	case src.ra.failure() != nil:
		return src.ra.failure()
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	return fmt.Errorf("%w: corrupt %s stream (near byte %d of the file): %v", ErrUnsupportedImage, format, src.hashed.n, err)
}

func newDecompressor(format Format, r io.Reader) (io.ReadCloser, error) {
	switch format {
	case FormatGzip:
		return gzip.NewReader(r)
	case FormatZstd:
		d, err := zstd.NewReader(r,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(zstdMaxWindow))
		if err != nil {
			return nil, err
		}
		return d.IOReadCloser(), nil
	case FormatBzip2:
		return io.NopCloser(bzip2.NewReader(r)), nil
	}
	return nil, fmt.Errorf("no decompressor for %s", format)
}

// zstdContentSize is the size a zstd stream's first frame declares, if it
// does: an image whose first frame alone is larger than the disk is
// refused before anything is written.
func zstdContentSize(format Format, head []byte) (uint64, bool) {
	if format != FormatZstd {
		return 0, false
	}
	var h zstd.Header
	if err := h.Decode(head); err != nil || h.Skippable || !h.HasFCS {
		return 0, false
	}
	return h.FrameContentSize, true
}

// drainTrailing hashes what follows the end of a compressed stream.
func drainTrailing(raw io.Reader, format Format) error {
	n, err := io.Copy(io.Discard, io.LimitReader(raw, maxTrailing+1))
	if err != nil {
		return err
	}
	if n > maxTrailing {
		return fmt.Errorf("%w: more than %d bytes follow the end of the %s stream", ErrUnsupportedImage, maxTrailing, format)
	}
	return nil
}
