package imagewrite

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zstd"
	"github.com/lima-vm/go-qcow2reader/image/qcow2"
)

// Bounds on qcow2 headers, qemu's own where it has one.
const (
	qcowMinClusterBits = 9
	qcowMaxClusterBits = 21      // 2 MiB clusters
	qcowMaxL1Bytes     = 8 << 20 // qemu allows 32 MiB; 8 MiB maps 512 TiB with 64 KiB clusters
	// qcowMaxExtent bounds the guest range asked about at once.
	qcowMaxExtent = 1 << 30
)

// qcow2 incompatible feature bits.
const (
	qcowDirty             = 1 << 0
	qcowCorrupt           = 1 << 1
	qcowExternalData      = 1 << 2
	qcowCompressionType   = 1 << 3
	qcowExtendedL2        = 1 << 4
	qcowKnownIncompatible = qcowDirty | qcowCorrupt | qcowExternalData | qcowCompressionType | qcowExtendedL2
)

type qcow2Header struct {
	version     uint32
	clusterBits uint32
	size        int64 // virtual
}

// checkQcow2Header refuses, from the header alone, what this package will
// not convert, before anything is downloaded further: backing and external
// data files, encryption, out-of-bounds tables, and images larger than the
// disk.
func checkQcow2Header(head []byte, fileSize, diskSize int64) (*qcow2Header, error) {
	refuse := func(format string, args ...any) error {
		return fmt.Errorf("%w: qcow2 image "+format, append([]any{ErrUnsupportedImage}, args...)...)
	}
	if len(head) < 104 {
		return nil, refuse("header is truncated")
	}
	be := binary.BigEndian
	h := &qcow2Header{version: be.Uint32(head[4:]), clusterBits: be.Uint32(head[20:])}
	backingOffset := be.Uint64(head[8:])
	virtualSize := be.Uint64(head[24:])
	cryptMethod := be.Uint32(head[32:])
	l1Size := be.Uint32(head[36:])
	l1Offset := be.Uint64(head[40:])

	if backingOffset != 0 {
		return nil, refuse("has a backing file, which this agent never opens: flatten it (qemu-img convert -O qcow2)")
	}
	if cryptMethod != 0 {
		return nil, refuse("is encrypted (method %d); encrypted images are not supported", cryptMethod)
	}
	if h.clusterBits < qcowMinClusterBits || h.clusterBits > qcowMaxClusterBits {
		return nil, refuse("has cluster_bits %d, outside %d-%d", h.clusterBits, qcowMinClusterBits, qcowMaxClusterBits)
	}
	clusterSize := uint64(1) << h.clusterBits
	if h.version == 3 {
		incompatible := be.Uint64(head[72:])
		headerLength := be.Uint32(head[100:])
		switch {
		case incompatible&qcowExternalData != 0:
			return nil, refuse("has an external data file, which this agent never opens")
		case incompatible&qcowCorrupt != 0:
			return nil, refuse("is marked corrupt")
		case incompatible&qcowExtendedL2 != 0:
			return nil, refuse("uses extended L2 entries, which are not supported: convert it with qemu-img convert -O qcow2")
		case incompatible&^qcowKnownIncompatible != 0:
			return nil, refuse("has unknown incompatible features %#x", incompatible&^qcowKnownIncompatible)
		case headerLength < 104 || uint64(headerLength) > clusterSize || int(headerLength) > len(head):
			return nil, refuse("has a header length of %d", headerLength)
		}
		compression := byte(0)
		if headerLength > 104 {
			compression = head[104]
		}
		if compression > 1 || compression != 0 && incompatible&qcowCompressionType == 0 {
			return nil, refuse("has unknown compression type %d", compression)
		}
	}
	if virtualSize == 0 {
		return nil, refuse("is empty")
	}
	if virtualSize > uint64(diskSize) {
		return nil, fmt.Errorf("%w: the qcow2 image's virtual size is %d bytes, the disk %d", ErrImageTooLarge, virtualSize, diskSize)
	}
	h.size = int64(virtualSize)
	perL1 := clusterSize * (clusterSize / 8)
	needed := (virtualSize + perL1 - 1) / perL1
	switch {
	case uint64(l1Size) < needed:
		return nil, refuse("has an L1 table of %d entries, too small for its size", l1Size)
	case uint64(l1Size)*8 > qcowMaxL1Bytes:
		return nil, refuse("has an L1 table of %d entries, more than %d", l1Size, qcowMaxL1Bytes/8)
	case l1Offset%clusterSize != 0 || fileSize >= 0 && l1Offset+uint64(l1Size)*8 > uint64(fileSize):
		return nil, refuse("has its L1 table at %d, outside the file", l1Offset)
	}
	return h, nil
}

// writeQcow2 verifies the whole file in a sequential pass, then converts
// it onto the disk through range requests checked against that pass.
func (w *writer) writeQcow2(ctx context.Context, src *source, head []byte, dev *device,
	want *expectedDigest, res *Result) error {
	dl := src.dl // its size and validators are set before the read-ahead starts
	if dl.size < 0 {
		return fmt.Errorf("%w: %s sent no Content-Length, which reading a qcow2 image by ranges needs", ErrRangesUnsupported, w.shownURL)
	}
	hdr, err := checkQcow2Header(head, dl.size, dev.size)
	if err != nil {
		return err
	}
	if !dl.acceptRanges {
		if err := w.probeRanges(ctx); err != nil {
			return err
		}
	}
	w.log.Info("verifying qcow2 image before converting it", "url", w.shownURL, "file_size", dl.size, "virtual_size", hdr.size)

	blocks := newBlockHasher()
	if _, err := src.raw.WriteTo(blocks); err != nil {
		return src.failure(err)
	}
	src.finish(res)
	if res.Digest, err = verifyDigest(src.hashed, want, w.shownURL); err != nil {
		return err
	}

	validator := http.Header{}
	if etag := dl.etag; etag != "" && etag[0] == '"' {
		validator.Set("If-Match", etag)
	} else if dl.lastModified != "" {
		validator.Set("If-Unmodified-Since", dl.lastModified)
	}
	rr := newRangeReader(ctx, w.fetch, w.imageURL, dl.size, validator, blocks.finish())
	defer rr.Close()
	dw := newDiskWriter(ctx, dev, w.opts.Progress)
	err = w.convertQcow2(ctx, rr, hdr, dw)
	res.BytesDownloaded += rr.fetched.Load()
	if err != nil {
		if ferr := rr.failure(); ferr != nil && !errors.Is(err, ferr) {
			err = ferr // the qcow2 reader quotes some read errors without wrapping them
		}
		return dw.cleanUp(ctx, err)
	}
	res.BytesWritten = dw.written
	return nil
}

// probeRanges asks for one byte to learn, before the long verification
// pass, whether the server can serve the conversion's range requests.
func (w *writer) probeRanges(ctx context.Context) error {
	resp, err := w.fetch.get(ctx, w.imageURL, http.Header{"Range": {"bytes=0-0"}})
	if err != nil {
		return &DownloadError{URL: w.shownURL, Err: err}
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent {
		return fmt.Errorf("%w: %s answered a range request with HTTP %s; qcow2 images are read by ranges (serve a raw or zstd-compressed raw image from such a server)",
			ErrRangesUnsupported, w.shownURL, resp.Status)
	}
	return nil
}

func (w *writer) convertQcow2(ctx context.Context, rr *rangeReader, hdr *qcow2Header, dw *diskWriter) error {
	img, err := openQcow2(rr)
	if err != nil {
		return err
	}
	defer img.Close()
	w.log.Info("converting qcow2 image", "url", w.shownURL, "virtual_size", hdr.size, "cluster_size", 1<<hdr.clusterBits)
	consume := func(c chunk) error {
		err := dw.consume(c)
		if err != nil {
			rr.cancel() // or the reader may wait for a stalled server
		}
		return err
	}
	return runPipeline(ctx, func(p *pipe) error { return produceQcow2(p, img, hdr.size) }, consume)
}

// produceQcow2 walks the guest's extents in order: data is read and sent,
// unallocated and zero ranges are sent to be zeroed.
func produceQcow2(p *pipe, img *qcow2.Qcow2, size int64) error {
	for off := int64(0); off < size; {
		ext, err := img.Extent(off, min(size-off, qcowMaxExtent))
		if err != nil {
			return corruptQcow2(err)
		}
		if ext.Start != off || ext.Length <= 0 || ext.Length > size-off {
			return corruptQcow2(fmt.Errorf("extent %d+%d asked for at %d", ext.Start, ext.Length, off))
		}
		end := off + ext.Length
		if ext.Zero || !ext.Allocated {
			if err := p.send(chunk{off: off, n: ext.Length}); err != nil {
				return err
			}
			off = end
			continue
		}
		for off < end {
			buf, err := p.buffer()
			if err != nil {
				return err
			}
			n := int(min(end-off, int64(len(buf))))
			m, err := img.ReadAt(buf[:n], off)
			if m < n || err != nil && err != io.EOF {
				if err == nil || err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return corruptQcow2(fmt.Errorf("reading guest bytes %d-%d: %w", off, off+int64(n)-1, err))
			}
			if err := p.send(chunk{off: off, data: buf[:n], n: int64(n)}); err != nil {
				return err
			}
			off += int64(n)
		}
	}
	return nil
}

func corruptQcow2(err error) error {
	return fmt.Errorf("%w: corrupt qcow2 image: %w", ErrUnsupportedImage, err)
}

var registerDecompressors sync.Once

// openQcow2 opens the image over rr. The reader's decompressors are
// replaced with ones that fill the whole cluster in one Read (its own
// callers read once per cluster) and a bounded zstd.
func openQcow2(rr *rangeReader) (*qcow2.Qcow2, error) {
	registerDecompressors.Do(func() {
		qcow2.SetDecompressor(qcow2.CompressionTypeZlib, func(r io.Reader) (io.ReadCloser, error) {
			return &fullReader{rc: flate.NewReader(r)}, nil
		})
		qcow2.SetDecompressor(qcow2.CompressionTypeZstd, newClusterZstd)
	})
	img, err := qcow2.Open(rr, nil)
	if err != nil {
		return nil, corruptQcow2(err)
	}
	if err := img.Readable(); err != nil {
		img.Close()
		return nil, fmt.Errorf("%w: qcow2 image: %w", ErrUnsupportedImage, err)
	}
	return img, nil
}

// fullReader reads until p is full: the qcow2 reader decompresses a
// cluster with a single Read.
type fullReader struct {
	rc    io.ReadCloser
	after func()
}

func (f *fullReader) Read(p []byte) (int, error) {
	n, err := fill(f.rc, p)
	if n == len(p) {
		return n, nil
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF // a compressed cluster decompresses to a whole cluster
	}
	return n, err
}

func (f *fullReader) Close() error {
	err := f.rc.Close()
	if f.after != nil {
		f.after()
	}
	return err
}

// zstdClusterDecoders are reused: a decoder is costly to create and a
// compressed image has one frame per cluster.
var zstdClusterDecoders sync.Pool

func newClusterZstd(r io.Reader) (io.ReadCloser, error) {
	d, _ := zstdClusterDecoders.Get().(*zstd.Decoder)
	if d == nil {
		var err error
		d, err = zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(4<<20)) // a frame holds one cluster of at most 2 MiB
		if err != nil {
			return nil, err
		}
	}
	if err := d.Reset(r); err != nil {
		return nil, err
	}
	return &fullReader{rc: io.NopCloser(d), after: func() {
		_ = d.Reset(nil) // drops the reference to this image's reader
		zstdClusterDecoders.Put(d)
	}}, nil
}
