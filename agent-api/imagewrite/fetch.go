package imagewrite

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ferric-metal/ferric/shared/redact"
)

// parseHTTPURL accepts absolute http and https URLs only.
func parseHTTPURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse quotes the whole input, credentials included.
		return nil, errors.New("not a valid URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("scheme %q is not http or https", u.Scheme)
	}
	if u.Host == "" {
		return nil, errors.New("URL has no host")
	}
	return u, nil
}

// secretsOf lists the parts of a URL that must never appear in a message:
// the userinfo's name and password, the query and each query value.
func secretsOf(raw string) []string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return nil
	}
	var out []string
	add := func(s string) {
		if len(s) >= 3 {
			out = append(out, s)
		}
	}
	if u.User != nil {
		add(u.User.Username())
		if p, ok := u.User.Password(); ok {
			add(p)
		}
		add(u.User.String())
	}
	if u.RawQuery != "" {
		add(u.RawQuery)
		for _, vs := range u.Query() {
			for _, v := range vs {
				add(v)
				add(url.QueryEscape(v))
			}
		}
	}
	return out
}

// fetcher sends this package's requests: a deadline on the answer's
// headers, then a stall watchdog on its body, and retries with back-off.
type fetcher struct {
	client        *http.Client
	log           *slog.Logger
	headerTimeout time.Duration
	stallTimeout  time.Duration
	retries       int
	retryDelay    time.Duration
}

func newFetcher(opts Options) *fetcher {
	var c http.Client
	if opts.Client != nil {
		c = *opts.Client
	}
	// A whole-request timeout would cut a long download; the watchdogs
	// bound every wait instead.
	c.Timeout = 0
	return &fetcher{
		client:        &c,
		log:           opts.Log,
		headerTimeout: opts.HeaderTimeout,
		stallTimeout:  opts.StallTimeout,
		retries:       opts.Retries,
		retryDelay:    opts.RetryDelay,
	}
}

// backoff waits before retry number attempt (1-based).
func (f *fetcher) backoff(ctx context.Context, attempt int) error {
	d := f.retryDelay
	for i := 1; i < attempt && d < maxRetryDelay; i++ {
		d *= 2
	}
	d = min(d, maxRetryDelay)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// get sends one GET with the given headers. The answer's body is guarded by
// the stall timeout and must be closed.
func (f *fetcher) get(ctx context.Context, u *url.URL, header http.Header) (*http.Response, error) {
	reqCtx, cancel := context.WithCancelCause(ctx)
	req, err := http.NewRequestWithContext(reqCtx, http.MethodGet, u.String(), nil)
	if err != nil {
		cancel(nil)
		return nil, err
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	// Keep the transport from decompressing: the checksum is of the file.
	req.Header.Set("Accept-Encoding", "identity")
	headerTimer := time.AfterFunc(f.headerTimeout, func() {
		cancel(fmt.Errorf("%w: no answer within %v", ErrStalled, f.headerTimeout))
	})
	resp, err := f.client.Do(req)
	headerTimer.Stop()
	if err != nil {
		cancel(nil)
		return nil, requestError(reqCtx, ctx, err)
	}
	g := &guardedBody{body: resp.Body, ctx: reqCtx, parent: ctx, cancel: cancel, stall: f.stallTimeout}
	g.timer = time.AfterFunc(f.stallTimeout, func() {
		cancel(fmt.Errorf("%w: no data for %v", ErrStalled, f.stallTimeout))
	})
	resp.Body = g
	return resp, nil
}

// requestError is the cause of a failed request without the *url.Error
// around it, which would quote the URL's query.
func requestError(reqCtx, parent context.Context, err error) error {
	if parent.Err() != nil {
		return parent.Err()
	}
	if cause := context.Cause(reqCtx); cause != nil && errors.Is(cause, ErrStalled) {
		return cause
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// guardedBody cancels its request when a read waits for the stall timeout
// without a byte. Time between reads does not count: a consumer held up by
// a slow disk is no stalled server.
type guardedBody struct {
	body   io.ReadCloser
	ctx    context.Context // the request's
	parent context.Context
	cancel context.CancelCauseFunc
	timer  *time.Timer
	stall  time.Duration
}

func (g *guardedBody) Read(p []byte) (int, error) {
	g.timer.Reset(g.stall)
	n, err := g.body.Read(p)
	g.timer.Stop()
	if err != nil && err != io.EOF {
		err = requestError(g.ctx, g.parent, err)
	}
	return n, err
}

func (g *guardedBody) Close() error {
	g.timer.Stop()
	err := g.body.Close()
	g.cancel(nil)
	return err
}

// open starts downloading u, retrying failed connections and 5xx answers
// as IPA does; other answers than 200 are final.
func (f *fetcher) open(ctx context.Context, u *url.URL) (*download, error) {
	d := &download{f: f, ctx: ctx, url: u, shown: redact.URL(u.String()), size: -1}
	var last error
	for attempt := 0; attempt <= f.retries; attempt++ {
		if attempt > 0 {
			f.log.Warn("retrying image download", "url", d.shown, "attempt", attempt, "error", last)
			if err := f.backoff(ctx, attempt); err != nil {
				return nil, err
			}
			d.retriesUsed++
		}
		resp, err := f.get(ctx, u, nil)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			last = &DownloadError{URL: d.shown, Err: err}
			var badCert *tls.CertificateVerificationError
			if errors.As(err, &badCert) {
				return nil, last // another try meets the same certificate
			}
			continue
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			last = &DownloadError{URL: d.shown, StatusCode: resp.StatusCode, Err: statusError(resp)}
			if resp.StatusCode < 500 {
				return nil, last
			}
			continue
		}
		d.start(resp)
		return d, nil
	}
	return nil, last
}

func statusError(resp *http.Response) error {
	return fmt.Errorf("HTTP %s", resp.Status)
}

// download reads an image's bytes in order, resuming a broken transfer
// with a Range request from the offset reached.
type download struct {
	f     *fetcher
	ctx   context.Context
	url   *url.URL
	shown string
	body  io.ReadCloser

	offset       int64 // bytes delivered
	size         int64 // the file's, -1 when unknown
	etag         string
	lastModified string
	acceptRanges bool
	resumes      int
	retriesUsed  int
	failed       error // final
}

func (d *download) start(resp *http.Response) {
	d.body = resp.Body
	d.size = resp.ContentLength
	d.etag = resp.Header.Get("ETag")
	d.lastModified = resp.Header.Get("Last-Modified")
	d.acceptRanges = strings.EqualFold(strings.TrimSpace(resp.Header.Get("Accept-Ranges")), "bytes")
}

// validator is the If-Range / If-Match value that proves the file did not
// change: a strong ETag, else the Last-Modified date.
func (d *download) validator() string {
	if d.etag != "" && !strings.HasPrefix(d.etag, "W/") {
		return d.etag
	}
	return d.lastModified
}

func (d *download) Read(p []byte) (int, error) {
	for {
		if d.failed != nil {
			return 0, d.failed
		}
		if d.body == nil {
			if err := d.resume(); err != nil {
				d.failed = err
				return 0, err
			}
		}
		n, err := d.body.Read(p)
		d.offset += int64(n)
		if err == nil {
			return n, nil
		}
		if err == io.EOF {
			if d.size < 0 || d.offset == d.size {
				return n, io.EOF
			}
			err = io.ErrUnexpectedEOF
		}
		d.body.Close()
		d.body = nil
		if d.ctx.Err() != nil {
			d.failed = d.ctx.Err()
			return n, d.failed
		}
		if !d.acceptRanges || d.retriesUsed >= d.f.retries {
			d.failed = &DownloadError{URL: d.shown, Err: d.brokenAt(err)}
			return n, d.failed
		}
		d.f.log.Warn("image download broken, resuming", "url", d.shown, "offset", d.offset, "error", err)
		if n > 0 {
			return n, nil
		}
	}
}

func (d *download) brokenAt(err error) error {
	if d.resumes > 0 {
		return fmt.Errorf("%w (at byte %d, resumed %d times)", err, d.offset, d.resumes)
	}
	return fmt.Errorf("%w (at byte %d)", err, d.offset)
}

// resume asks for the rest of the file, retrying with back-off.
func (d *download) resume() error {
	header := http.Header{"Range": {fmt.Sprintf("bytes=%d-", d.offset)}}
	if v := d.validator(); v != "" {
		header.Set("If-Range", v)
	}
	var last error
	for d.retriesUsed < d.f.retries {
		d.retriesUsed++
		if err := d.f.backoff(d.ctx, d.retriesUsed); err != nil {
			return err
		}
		resp, err := d.f.get(d.ctx, d.url, header)
		if err != nil {
			if d.ctx.Err() != nil {
				return d.ctx.Err()
			}
			last = err
			continue
		}
		switch {
		case resp.StatusCode == http.StatusPartialContent:
			if err := d.checkResumed(resp); err != nil {
				resp.Body.Close()
				return &DownloadError{URL: d.shown, StatusCode: resp.StatusCode, Err: err}
			}
			d.body = resp.Body
			d.resumes++
			return nil
		case resp.StatusCode == http.StatusOK:
			resp.Body.Close()
			why := errors.New("the server ignored the range request, cannot resume")
			if d.validator() != "" {
				why = errors.New("the image changed on the server during the download, cannot resume")
			}
			return &DownloadError{URL: d.shown, StatusCode: resp.StatusCode, Err: why}
		case resp.StatusCode >= 500:
			resp.Body.Close()
			last = statusError(resp)
		default:
			resp.Body.Close()
			return &DownloadError{URL: d.shown, StatusCode: resp.StatusCode,
				Err: fmt.Errorf("resuming at byte %d: %w", d.offset, statusError(resp))}
		}
	}
	if last == nil {
		last = errors.New("connection broken")
	}
	return &DownloadError{URL: d.shown, Err: d.brokenAt(last)}
}

// checkResumed accepts a 206 only for the range asked of the same file.
func (d *download) checkResumed(resp *http.Response) error {
	start, total, err := parseContentRange(resp.Header.Get("Content-Range"))
	if err != nil {
		return err
	}
	if start != d.offset {
		return fmt.Errorf("asked to resume at byte %d, the server sent from %d", d.offset, start)
	}
	if d.size >= 0 && total >= 0 && total != d.size {
		return fmt.Errorf("the image's size changed from %d to %d during the download", d.size, total)
	}
	if etag := resp.Header.Get("ETag"); d.etag != "" && etag != "" && etag != d.etag {
		return errors.New("the image changed on the server during the download (ETag)")
	}
	return nil
}

// parseContentRange reads "bytes first-last/total"; total is -1 for "*".
func parseContentRange(s string) (first, total int64, err error) {
	bad := fmt.Errorf("malformed Content-Range %q", s)
	rest, ok := strings.CutPrefix(s, "bytes ")
	if !ok {
		return 0, 0, bad
	}
	rng, tot, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, 0, bad
	}
	a, b, ok := strings.Cut(rng, "-")
	if !ok {
		return 0, 0, bad
	}
	first, err1 := strconv.ParseInt(a, 10, 64)
	last, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || first < 0 || last < first {
		return 0, 0, bad
	}
	total = -1
	if tot != "*" {
		if total, err = strconv.ParseInt(tot, 10, 64); err != nil || total <= last {
			return 0, 0, bad
		}
	}
	return first, total, nil
}

func (d *download) Close() error {
	if d.body == nil {
		return nil
	}
	err := d.body.Close()
	d.body = nil
	return err
}
