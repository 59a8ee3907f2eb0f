package imagewrite

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestResumeAfterConnectionCut(t *testing.T) {
	image := testImage(12<<20, 20)
	for _, tc := range []struct {
		name string
		file []byte
	}{{"raw", image}, {"zstd", zstdOf(t, image)}} {
		t.Run(tc.name, func(t *testing.T) {
			s := newImageServer(t, false)
			url := s.add("image", tc.file)
			s.setFault(&fault{kind: "cut", after: int64(len(tc.file)) / 3, times: 2})
			disk := newDisk(t, 16<<20, 0)
			res, err := Write(context.Background(), Source{URL: url, Checksum: sha256Hex(tc.file)}, disk, testOptions(s))
			if err != nil {
				t.Fatal(err)
			}
			wantDisk(t, disk, image, 0)
			if res.Resumes != 2 || res.BytesDownloaded != int64(len(tc.file)) {
				t.Errorf("resumes = %d, bytes downloaded = %d; want 2 and %d", res.Resumes, res.BytesDownloaded, len(tc.file))
			}
			reqs := s.requestsFor("image")
			if len(reqs) != 3 {
				t.Fatalf("%d requests, want 3", len(reqs))
			}
			for _, r := range reqs[1:] {
				if !strings.HasPrefix(r.Header.Get("Range"), "bytes=") || r.Header.Get("If-Range") != s.etag("image") {
					t.Errorf("resumed with Range %q and If-Range %q", r.Header.Get("Range"), r.Header.Get("If-Range"))
				}
			}
			checkNoLeak(t)
		})
	}
}

func TestBrokenDownloadFails(t *testing.T) {
	image := testImage(6<<20, 21)
	check := func(t *testing.T, err error, disk string) {
		t.Helper()
		var de *DownloadError
		if !errors.Is(err, ErrDownload) || !errors.As(err, &de) {
			t.Fatalf("err = %v, want a DownloadError", err)
		}
		wantZeros(t, disk, disarmSize) // the partial image cannot boot
		checkNoLeak(t)
	}
	t.Run("no range support", func(t *testing.T) {
		s := newImageServer(t, false)
		url := s.add("image", image)
		s.change("image", func(f *testFile) { f.noRanges = true })
		s.setFault(&fault{kind: "cut", after: 5 << 20, times: 1})
		disk := newDisk(t, 8<<20, 0x5a)
		_, err := Write(context.Background(), Source{URL: url, Checksum: sha256Hex(image)}, disk, testOptions(s))
		check(t, err, disk)
		if n := len(s.requestsFor("image")); n != 1 {
			t.Errorf("%d requests; a server without ranges cannot be resumed", n)
		}
	})
	t.Run("server dies", func(t *testing.T) {
		s := newImageServer(t, false)
		url := s.add("image", image)
		s.setFault(&fault{kind: "die", after: 5 << 20})
		disk := newDisk(t, 8<<20, 0x5a)
		_, err := Write(context.Background(), Source{URL: url, Checksum: sha256Hex(image)}, disk, testOptions(s))
		check(t, err, disk)
		if !strings.Contains(err.Error(), "at byte") {
			t.Errorf("the error does not say where the download broke: %v", err)
		}
	})
	t.Run("image replaced during the download", func(t *testing.T) {
		s := newImageServer(t, false)
		url := s.add("image", image)
		s.change("image", func(f *testFile) { f.swapTo, f.swapETag = testImage(len(image), 99), `"new"` })
		s.setFault(&fault{kind: "cut", after: 5 << 20, times: 1})
		disk := newDisk(t, 8<<20, 0x5a)
		_, err := Write(context.Background(), Source{URL: url, Checksum: sha256Hex(image)}, disk, testOptions(s))
		check(t, err, disk)
		if !strings.Contains(err.Error(), "changed") {
			t.Errorf("err = %v, want one saying the image changed", err)
		}
	})
}

func TestStallTimeout(t *testing.T) {
	image := testImage(6<<20, 22)
	t.Run("body", func(t *testing.T) {
		s := newImageServer(t, false)
		url := s.add("image", image)
		s.setFault(&fault{kind: "stall", after: 1 << 20}) // the resume stalls too
		disk := newDisk(t, 8<<20, 0)
		opts := testOptions(s)
		opts.StallTimeout = 200 * time.Millisecond
		opts.Retries = 1
		_, err := Write(context.Background(), Source{URL: url, Checksum: sha256Hex(image)}, disk, opts)
		if !errors.Is(err, ErrStalled) || !errors.Is(err, ErrDownload) {
			t.Fatalf("err = %v, want ErrStalled in a DownloadError", err)
		}
		if n := len(s.requestsFor("image")); n != 2 {
			t.Errorf("%d requests, want 2 (one resume)", n)
		}
		checkNoLeak(t)
	})
	t.Run("headers", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		accepted := make(chan net.Conn, 8)
		go func() { // accepts and never answers
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				accepted <- c
			}
		}()
		t.Cleanup(func() {
			ln.Close()
			close(accepted)
			for c := range accepted {
				c.Close()
			}
		})
		disk := newDisk(t, 1<<20, 0)
		opts := Options{HeaderTimeout: 200 * time.Millisecond, Retries: -1}
		_, err = Write(context.Background(), Source{URL: "http://" + ln.Addr().String() + "/image", Checksum: md5Hex(nil)}, disk, opts)
		if !errors.Is(err, ErrStalled) || !errors.Is(err, ErrDownload) {
			t.Fatalf("err = %v, want ErrStalled in a DownloadError", err)
		}
		checkNoLeak(t)
	})
}

// The stall timeout bounds silence, not the download: a slow transfer
// that takes many times the timeout succeeds.
func TestSlowDownloadIsNotAStall(t *testing.T) {
	image := testImage(2<<20, 27)
	s := newImageServer(t, false)
	url := s.add("image", image)
	s.setFault(&fault{kind: "trickle"}) // about 3s in all
	disk := newDisk(t, 4<<20, 0)
	opts := testOptions(s)
	opts.StallTimeout = 750 * time.Millisecond
	opts.Retries = -1
	if _, err := Write(context.Background(), Source{URL: url, Checksum: sha256Hex(image)}, disk, opts); err != nil {
		t.Fatal(err)
	}
	wantDisk(t, disk, image, 0)
}

func TestContextCancelStops(t *testing.T) {
	image := testImage(12<<20, 23)
	s := newImageServer(t, false)
	url := s.add("image", image)
	s.setFault(&fault{kind: "stall", after: 9 << 20})
	disk := newDisk(t, 16<<20, 0x5a)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opts := testOptions(s)
	opts.StallTimeout = 1 << 62 // only the cancellation can end it
	opts.Progress = func(n int64) {
		if n >= 8<<20 {
			cancel()
		}
	}
	_, err := Write(ctx, Source{URL: url, Checksum: sha256Hex(image)}, disk, opts)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	wantZeros(t, disk, disarmSize)
	checkNoLeak(t)
}

func TestHTTPStatuses(t *testing.T) {
	image := testImage(1<<20, 24)
	t.Run("404 is final", func(t *testing.T) {
		s := newImageServer(t, false)
		url := s.add("image", image)
		s.answerFirst("image", http.StatusNotFound)
		_, err := Write(context.Background(), Source{URL: url, Checksum: sha256Hex(image)}, newDisk(t, 2<<20, 0), testOptions(s))
		var de *DownloadError
		if !errors.As(err, &de) || de.StatusCode != http.StatusNotFound {
			t.Fatalf("err = %v, want a DownloadError with status 404", err)
		}
		if n := len(s.requestsFor("image")); n != 1 {
			t.Errorf("%d requests, want 1: a 4xx is not retried", n)
		}
	})
	t.Run("503 is retried", func(t *testing.T) {
		s := newImageServer(t, false)
		url := s.add("image", image)
		s.answerFirst("image", http.StatusServiceUnavailable, http.StatusBadGateway)
		disk := newDisk(t, 2<<20, 0)
		if _, err := Write(context.Background(), Source{URL: url, Checksum: sha256Hex(image)}, disk, testOptions(s)); err != nil {
			t.Fatal(err)
		}
		wantDisk(t, disk, image, 0)
		if n := len(s.requestsFor("image")); n != 3 {
			t.Errorf("%d requests, want 3", n)
		}
	})
}

func TestTLS(t *testing.T) {
	image := testImage(1<<20, 25)
	s := newImageServer(t, true)
	url := s.add("image", image)
	t.Run("trusted", func(t *testing.T) {
		disk := newDisk(t, 2<<20, 0)
		if _, err := Write(context.Background(), Source{URL: url, Checksum: sha256Hex(image)}, disk, testOptions(s)); err != nil {
			t.Fatal(err)
		}
		wantDisk(t, disk, image, 0)
	})
	t.Run("unknown authority refused", func(t *testing.T) {
		before := len(s.requestsFor("image"))
		disk := newDisk(t, 2<<20, 0x5a)
		opts := testOptions(s)
		opts.Client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12}}}
		_, err := Write(context.Background(), Source{URL: url, Checksum: sha256Hex(image)}, disk, opts)
		var unknown x509.UnknownAuthorityError
		if !errors.Is(err, ErrDownload) || !errors.As(err, &unknown) {
			t.Fatalf("err = %v, want a DownloadError for an unknown authority", err)
		}
		wantDisk(t, disk, nil, 0x5a)
		if n := len(s.requestsFor("image")) - before; n != 0 {
			t.Errorf("%d requests reached the handler", n)
		}
	})
}

func TestCredentialsNeverInErrors(t *testing.T) {
	image := testImage(1<<20, 26)
	s := newImageServer(t, true)
	s.add("image", image)
	s.answerFirst("image", http.StatusForbidden)
	withSecrets := func(base, path string) string {
		return strings.Replace(base, "https://", "https://deployer:hunter2pass@", 1) + "/" + path + "?temp_url_sig=t0ps3cr3tsig&temp_url_expires=99"
	}
	secrets := []string{"hunter2pass", "t0ps3cr3tsig", "deployer:"}
	untrusted := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12}}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := "https://" + ln.Addr().String()
	ln.Close()
	cases := []struct {
		name   string
		src    Source
		client *http.Client
	}{
		{"403", Source{URL: withSecrets(s.srv.URL, "image"), Checksum: sha256Hex(image)}, nil},
		{"untrusted certificate", Source{URL: withSecrets(s.srv.URL, "image"), Checksum: sha256Hex(image)}, untrusted},
		{"connection refused", Source{URL: withSecrets(closedAddr, "image"), Checksum: sha256Hex(image)}, nil},
		{"checksums file 404", Source{URL: withSecrets(s.srv.URL, "image"), Checksum: withSecrets(s.srv.URL, "sums")}, nil},
		{"malformed URL", Source{URL: "https://deployer:hunter2pass@host:port/x?temp_url_sig=t0ps3cr3tsig", Checksum: sha256Hex(image)}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := testOptions(s)
			opts.Retries = -1
			if tc.client != nil {
				opts.Client = tc.client
			}
			_, err := Write(context.Background(), tc.src, newDisk(t, 2<<20, 0), opts)
			if err == nil {
				t.Fatal("Write succeeded")
			}
			for _, secret := range secrets {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error shows %q: %v", secret, err)
				}
			}
			var de *DownloadError
			if errors.As(err, &de) && (strings.Contains(de.URL, "hunter2pass") || strings.Contains(de.URL, "t0ps3cr3tsig")) {
				t.Errorf("DownloadError.URL = %q", de.URL)
			}
		})
	}
}
