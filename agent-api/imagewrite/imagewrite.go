package imagewrite

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ferric-metal/ferric/shared/redact"
)

// Source is the image to write, as Ironic describes it in instance_info.
type Source struct {
	URL         string // image_url (or image_source when it is http(s))
	Checksum    string // image_checksum: hex, "algo:hex" or a checksums file URL
	OSHashAlgo  string // image_os_hash_algo: md5, sha256, sha512, ...
	OSHashValue string // image_os_hash_value: hex or a checksums file URL
	DiskFormat  string // image_disk_format: a hint; the content decides
}

// Options tune Write. The zero value works.
type Options struct {
	// Client sends every request. Its TLS configuration (verification, CA
	// bundle) is the caller's; its Timeout is ignored, since it would bound
	// the whole download. Nil means a client with default TLS settings.
	Client *http.Client
	// Log receives progress and anomalies; nil discards them.
	Log *slog.Logger
	// Progress, when set, is called with the bytes written so far after
	// each write, from the goroutine that called Write. (A qcow2 image's
	// verification pass writes nothing.)
	Progress func(bytesWritten int64)
	// StallTimeout fails a transfer when no byte arrives for that long
	// (default 60s).
	StallTimeout time.Duration
	// HeaderTimeout bounds connecting, the TLS handshake and waiting for the
	// answer's headers (default 60s).
	HeaderTimeout time.Duration
	// Retries is how many times a failed request is retried and a broken
	// download resumed, in all, with back-off (default 5; negative: none).
	Retries int
	// RetryDelay is the first back-off; it doubles up to 30s (default 2s).
	RetryDelay time.Duration
}

// Format is an image's format as detected from its content.
type Format string

// Formats Write writes.
const (
	FormatRaw   Format = "raw"
	FormatGzip  Format = "gzip"  // gzip-compressed raw
	FormatZstd  Format = "zstd"  // zstd-compressed raw
	FormatBzip2 Format = "bzip2" // bzip2-compressed raw
	FormatQcow2 Format = "qcow2"
)

// Result describes a successful write.
type Result struct {
	Format          Format
	BytesDownloaded int64 // over the network, every request included
	BytesWritten    int64 // of the disk the image now covers (qcow2: its virtual size)
	DigestAlgo      string
	Digest          string // lower-case hex of the image file as downloaded
	Resumes         int    // broken downloads resumed
	Duration        time.Duration
}

// Errors callers test with errors.Is. Every error Write returns wraps one of
// them or a context error.
var (
	// ErrChecksumMismatch: the image's digest is not the expected one. What
	// had been written was zeroed.
	ErrChecksumMismatch = errors.New("checksum mismatch")
	// ErrInvalidChecksum: no checksum, a malformed one, an unsupported
	// algorithm, or a checksums file without the image's line. Refused
	// before anything was written.
	ErrInvalidChecksum = errors.New("invalid checksum")
	// ErrUnsupportedImage: a source, format or image feature Write refuses.
	ErrUnsupportedImage = errors.New("unsupported image")
	// ErrImageTooLarge: the image does not fit on the disk.
	ErrImageTooLarge = errors.New("image is larger than the disk")
	// ErrRangesUnsupported: a qcow2 image on a server without range
	// requests. Refused before anything was written.
	ErrRangesUnsupported = errors.New("server does not support range requests")
	// ErrDownload: a request failed; errors.As finds a *DownloadError.
	ErrDownload = errors.New("download failed")
	// ErrStalled: no data arrived within the stall or header timeout; it
	// comes wrapped in a *DownloadError.
	ErrStalled = errors.New("stalled")
	// ErrDevice: the disk could not be opened, sized or written.
	ErrDevice = errors.New("disk error")
)

// DownloadError is a failed request. URL has neither credentials nor query.
type DownloadError struct {
	URL        string
	StatusCode int // 0 when no answer came
	Err        error
}

func (e *DownloadError) Error() string {
	return fmt.Sprintf("download of %s failed: %v", e.URL, e.Err)
}

func (e *DownloadError) Unwrap() error { return e.Err }

// Is makes every DownloadError match ErrDownload.
func (e *DownloadError) Is(target error) bool { return target == ErrDownload }

const (
	defaultStallTimeout  = 60 * time.Second
	defaultHeaderTimeout = 60 * time.Second
	defaultRetries       = 5
	defaultRetryDelay    = 2 * time.Second
	maxRetryDelay        = 30 * time.Second
	// peekSize covers every magic this package looks for; ISO 9660's is
	// the deepest, at 32769.
	peekSize = 64 << 10
)

// Write downloads src and writes it onto the disk at devicePath (a block
// device, or a regular file whose size is the disk's), then syncs it and,
// for a block device, has the kernel re-read its partition table. It
// returns only once every goroutine it started has stopped.
func Write(ctx context.Context, src Source, devicePath string, opts Options) (*Result, error) {
	w, err := newWriter(src, devicePath, opts)
	if err != nil {
		return nil, err
	}
	res, err := w.run(ctx)
	if err != nil {
		return nil, w.scrub(err)
	}
	return res, nil
}

type writer struct {
	src      Source
	imageURL *url.URL
	shownURL string
	device   string
	opts     Options
	log      *slog.Logger
	fetch    *fetcher
	secrets  []string
}

func newWriter(src Source, devicePath string, opts Options) (*writer, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.StallTimeout <= 0 {
		opts.StallTimeout = defaultStallTimeout
	}
	if opts.HeaderTimeout <= 0 {
		opts.HeaderTimeout = defaultHeaderTimeout
	}
	switch {
	case opts.Retries == 0:
		opts.Retries = defaultRetries
	case opts.Retries < 0:
		opts.Retries = 0
	}
	if opts.RetryDelay <= 0 {
		opts.RetryDelay = defaultRetryDelay
	}
	w := &writer{src: src, device: devicePath, opts: opts, log: opts.Log}
	w.secrets = append(secretsOf(src.URL), secretsOf(src.Checksum)...)
	w.secrets = append(w.secrets, secretsOf(src.OSHashValue)...)
	u, err := parseHTTPURL(src.URL)
	if err != nil {
		return nil, w.scrub(fmt.Errorf("%w: image URL: %w", ErrUnsupportedImage, err))
	}
	w.imageURL = u
	w.shownURL = redact.URL(u.String())
	w.fetch = newFetcher(opts)
	return w, nil
}

func (w *writer) run(ctx context.Context) (*Result, error) {
	start := time.Now()
	spec, err := parseChecksum(w.src, w.log)
	if err != nil {
		return nil, err
	}
	dev, err := openDevice(w.device)
	if err != nil {
		return nil, err
	}
	defer dev.Close()

	want, err := spec.resolve(ctx, w.fetch, w.imageURL)
	if err != nil {
		return nil, err
	}
	w.log.Info("writing image", "url", w.shownURL, "device", w.device, "disk_size", dev.size,
		"digest_algo", want.algo, "disk_format", w.src.DiskFormat)

	// The download stops on its own context so that a failing disk can
	// stop it too.
	dlCtx, stopDownload := context.WithCancel(ctx)
	defer stopDownload()
	dl, err := w.fetch.open(dlCtx, w.imageURL)
	if err != nil {
		return nil, err
	}
	defer dl.Close()
	ra := newReadAhead(dl, stopDownload)
	defer ra.Close()
	src := &source{dl: dl, ra: ra, stop: stopDownload, hashed: newHashingReader(ra, want.newHash())}
	src.raw = bufio.NewReaderSize(src.hashed, peekSize)
	head, err := src.raw.Peek(peekSize)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, src.failure(err)
	}
	format, err := detect(head, w.src.DiskFormat)
	if err != nil {
		return nil, err
	}
	w.noteHint(format)

	res := &Result{Format: format, DigestAlgo: want.algo}
	if format == FormatQcow2 {
		err = w.writeQcow2(ctx, src, head, dev, want, res)
	} else {
		err = w.writeStream(ctx, src, head, format, dev, want, res)
	}
	if err != nil {
		return nil, err
	}
	if err := dev.sync(); err != nil {
		return nil, err
	}
	dev.rereadPartitions(w.log)
	res.Duration = time.Since(start)
	w.log.Info("image written", "url", w.shownURL, "device", w.device, "format", res.Format,
		"bytes_written", res.BytesWritten, "bytes_downloaded", res.BytesDownloaded,
		"resumes", res.Resumes, "duration", res.Duration)
	return res, nil
}

// noteHint logs an image whose disk_format disagrees with its content: the
// content wins.
func (w *writer) noteHint(f Format) {
	hint := strings.ToLower(w.src.DiskFormat)
	switch {
	case hint == "":
	case hint == "qcow2" && f != FormatQcow2, f == FormatQcow2 && hint != "qcow2":
		w.log.Warn("disk_format disagrees with the image's content; following the content",
			"disk_format", w.src.DiskFormat, "detected", f)
	}
}

// source is the image's byte stream: downloaded (dl) in a goroutine of its
// own (ra), hashed, and buffered for peeking (raw).
type source struct {
	dl     *download
	ra     *readAhead
	stop   func() // cancels the download
	hashed *hashingReader
	raw    *bufio.Reader
}

// finish stops the download; its figures may be read afterwards.
func (s *source) finish(res *Result) {
	s.ra.Close()
	res.BytesDownloaded += s.dl.offset
	res.Resumes = s.dl.resumes
}

// failure is err, or the download's failure that caused it.
func (s *source) failure(err error) error {
	if f := s.ra.failure(); f != nil {
		return f
	}
	return err
}

// verifyDigest compares the finished hash with the expected value.
func verifyDigest(h *hashingReader, want *expectedDigest, shownURL string) (string, error) {
	got := h.sum()
	if got != want.hex {
		return got, fmt.Errorf("%w: %s of %s is %s, %s says %s", ErrChecksumMismatch,
			want.algo, shownURL, got, want.from, want.hex)
	}
	return got, nil
}

// scrub removes whatever secret the URLs carried from err's text, in case a
// lower layer quoted one; errors.Is and errors.As still see through it.
func (w *writer) scrub(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := msg
	for _, s := range w.secrets {
		clean = strings.ReplaceAll(clean, s, "REDACTED")
	}
	if clean == msg {
		return err
	}
	return &scrubbedError{msg: clean, err: err}
}

type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }
