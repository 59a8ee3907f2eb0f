package disks

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testISO builds a configdrive image whose meta_data names it, so that
// tests can tell two images apart.
func testISO(t *testing.T, hostname string) []byte {
	t.Helper()
	iso, err := BuildConfigDrive(ConfigDriveContent{
		MetaData: map[string]any{"hostname": hostname},
		UserData: []byte("#cloud-config\n"),
	}, "1be26c0b-03f2-4d2e-ae87-c02d7f33c123", "node-1")
	if err != nil {
		t.Fatal(err)
	}
	return iso
}

// bigISO is a configdrive of over 2 MiB, more than sfdisk leaves free
// after aligning its partitions' ends.
func bigISO(t *testing.T) []byte {
	t.Helper()
	iso, err := BuildConfigDrive(ConfigDriveContent{UserData: bytes.Repeat([]byte("#"), 2<<20)}, "u", "n")
	if err != nil {
		t.Fatal(err)
	}
	return iso
}

func gzipBytes(t *testing.T, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// wrapBase64 breaks base64 into 76-character lines as MIME tools do.
func wrapBase64(s string) string {
	var b strings.Builder
	for len(s) > 76 {
		b.WriteString(s[:76] + "\n")
		s = s[76:]
	}
	b.WriteString(s)
	return b.String()
}

func testHTTPClient() *http.Client { return &http.Client{Timeout: time.Minute} }

func TestDecodeConfigDriveStrings(t *testing.T) {
	iso := testISO(t, "decode")
	b64gz := base64.StdEncoding.EncodeToString(gzipBytes(t, iso))
	tests := []struct {
		name  string
		value string
	}{
		{"base64 of gzip", b64gz},
		{"base64 of gzip with line breaks", wrapBase64(b64gz) + "\n"},
		{"base64 of gzip without padding", strings.TrimRight(b64gz, "=")},
		{"base64 of a plain ISO", base64.StdEncoding.EncodeToString(iso)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeConfigDrive(t.Context(), tt.value, ConfigDriveOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, iso) {
				t.Errorf("decoded %d bytes, not the %d-byte ISO", len(got), len(iso))
			}
		})
	}
}

func TestDecodeConfigDriveFAT(t *testing.T) {
	requireTool(t, "mkfs.vfat")
	path := diskFile(t, 4<<20)
	run(t, "", "mkfs.vfat", "-n", "CONFIG-2", path)
	fat, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeConfigDrive(t.Context(), base64.StdEncoding.EncodeToString(gzipBytes(t, fat)), ConfigDriveOptions{})
	if err != nil || !bytes.Equal(got, fat) {
		t.Fatalf("a FAT configdrive: %v", err)
	}
	if label := string(fatLabel(got)); label != "CONFIG-2" {
		t.Errorf("FAT label %q", label)
	}
}

func TestDecodeConfigDriveRejects(t *testing.T) {
	bomb := gzipBytes(t, make([]byte, MaxConfigDriveSize+1))
	tests := []struct {
		name  string
		value any
		want  string
	}{
		{"not base64", "this is not base64!", "neither a URL nor base64"},
		{"empty", "  ", "empty"},
		{"base64 of text", base64.StdEncoding.EncodeToString([]byte("hello world")), "neither an ISO9660 nor a FAT"},
		{"gzip of text", base64.StdEncoding.EncodeToString(gzipBytes(t, []byte("hello"))), "neither an ISO9660 nor a FAT"},
		{"truncated gzip", base64.StdEncoding.EncodeToString(gzipBytes(t, testISO(t, "x"))[:100]), "decompressing"},
		{"gzip bomb", base64.StdEncoding.EncodeToString(bomb), "larger than the 64 MiB"},
		{"a number", 42, "neither a string nor a JSON object"},
		{"null", nil, "null is neither"},
		{"JSON with unknown key", map[string]any{"meta_data": map[string]any{}, "extra": 1}, `unknown key "extra"`},
		{"JSON meta_data not an object", map[string]any{"meta_data": "x"}, "meta_data must be a JSON object"},
		{"JSON network_data not an object", map[string]any{"network_data": []any{}}, "network_data must be a JSON object"},
		{"JSON user_data a number", map[string]any{"user_data": 5.0}, "user_data must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeConfigDrive(t.Context(), tt.value, ConfigDriveOptions{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestDecodeConfigDriveURL(t *testing.T) {
	iso := testISO(t, "download")
	b64gz := base64.StdEncoding.EncodeToString(gzipBytes(t, iso))
	mux := http.NewServeMux()
	mux.HandleFunc("/b64gz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, b64gz) })
	mux.HandleFunc("/raw.iso", func(w http.ResponseWriter, r *http.Request) { w.Write(iso) })
	mux.HandleFunc("/raw.iso.gz", func(w http.ResponseWriter, r *http.Request) { w.Write(gzipBytes(t, iso)) })
	mux.HandleFunc("/missing", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no such object", http.StatusNotFound)
	})
	mux.HandleFunc("/huge", func(w http.ResponseWriter, r *http.Request) {
		chunk := bytes.Repeat([]byte("A"), 1<<20)
		for i := 0; i <= maxConfigDriveDownload>>20; i++ {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	server := httptest.NewServer(mux)
	defer server.Close()
	client := testHTTPClient()

	for _, path := range []string{"/b64gz", "/raw.iso", "/raw.iso.gz"} {
		t.Run(path, func(t *testing.T) {
			got, err := DecodeConfigDrive(t.Context(), server.URL+path, ConfigDriveOptions{HTTPClient: client})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, iso) {
				t.Errorf("got %d bytes, not the %d-byte ISO", len(got), len(iso))
			}
		})
	}

	t.Run("HTTP error names the status and hides the signature", func(t *testing.T) {
		_, err := DecodeConfigDrive(t.Context(), server.URL+"/missing?temp_url_sig=s3cret&temp_url_expires=1",
			ConfigDriveOptions{HTTPClient: client})
		if err == nil || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "no such object") {
			t.Fatalf("got %v, want the 404 and its body", err)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error %q shows the URL's signature", err)
		}
	})
	t.Run("download is bounded", func(t *testing.T) {
		_, err := DecodeConfigDrive(t.Context(), server.URL+"/huge", ConfigDriveOptions{HTTPClient: client})
		if err == nil || !strings.Contains(err.Error(), "allowed") {
			t.Fatalf("got %v, want a size error", err)
		}
	})
	t.Run("no client", func(t *testing.T) {
		_, err := DecodeConfigDrive(t.Context(), server.URL+"/b64gz", ConfigDriveOptions{})
		if err == nil || !strings.Contains(err.Error(), "no HTTP client") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := DecodeConfigDrive(ctx, server.URL+"/b64gz?temp_url_sig=s3cret", ConfigDriveOptions{HTTPClient: client})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error %q shows the URL's signature", err)
		}
	})
}

// isoFile extracts a file from an ISO image with isoinfo's Rock Ridge view.
func isoFile(t *testing.T, isoPath, name string) string {
	t.Helper()
	return run(t, "", "isoinfo", "-R", "-i", isoPath, "-x", name)
}

func TestDecodeConfigDriveJSON(t *testing.T) {
	requireTool(t, "isoinfo", "blkid")
	value := map[string]any{
		"meta_data":    map[string]any{"hostname": "web-1", "name": "given-name", "public_keys": map[string]any{"k": "ssh-ed25519 AAAA <x>"}},
		"network_data": map[string]any{"links": []any{map[string]any{"id": "eth0"}}},
		"vendor_data":  map[string]any{"vendor": "acme"},
		"user_data":    map[string]any{"runcmd": []any{"true"}},
	}
	image, err := DecodeConfigDrive(t.Context(), value, ConfigDriveOptions{NodeUUID: "4a1b", NodeName: "node-name"})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "cd.iso")
	if err := os.WriteFile(path, image, 0o600); err != nil {
		t.Fatal(err)
	}
	if info := run(t, "", "isoinfo", "-d", "-i", path); !strings.Contains(info, "Volume id: config-2") ||
		!strings.Contains(info, "Rock Ridge") || !strings.Contains(info, "Joliet") {
		t.Errorf("isoinfo -d:\n%s", info)
	}
	if out := run(t, "", "blkid", "-p", path); !strings.Contains(out, `LABEL="config-2"`) || !strings.Contains(out, `TYPE="iso9660"`) {
		t.Errorf("blkid: %s", out)
	}
	for _, version := range []string{"latest", "2012-08-10"} {
		dir := "/openstack/" + version + "/"
		var meta map[string]any
		if err := json.Unmarshal([]byte(isoFile(t, path, dir+"meta_data.json")), &meta); err != nil {
			t.Fatal(err)
		}
		// uuid is filled in; the given name is kept.
		if meta["uuid"] != "4a1b" || meta["name"] != "given-name" || meta["hostname"] != "web-1" {
			t.Errorf("%smeta_data.json = %v", dir, meta)
		}
		if got := isoFile(t, path, dir+"network_data.json"); got != `{"links":[{"id":"eth0"}]}` {
			t.Errorf("%snetwork_data.json = %s", dir, got)
		}
		if got := isoFile(t, path, dir+"vendor_data2.json"); got != `{"vendor":"acme"}` {
			t.Errorf("%svendor_data2.json = %s", dir, got)
		}
		if got := isoFile(t, path, dir+"user_data"); got != `{"runcmd":["true"]}` {
			t.Errorf("%suser_data = %s", dir, got)
		}
	}

	t.Run("minimal", func(t *testing.T) {
		image, err := DecodeConfigDrive(t.Context(), map[string]any{"user_data": "#!/bin/sh\n"}, ConfigDriveOptions{NodeUUID: "u", NodeName: "n"})
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "cd.iso")
		if err := os.WriteFile(path, image, 0o600); err != nil {
			t.Fatal(err)
		}
		listing := run(t, "", "isoinfo", "-R", "-f", "-i", path)
		if strings.Contains(listing, "network_data") || strings.Contains(listing, "vendor_data") {
			t.Errorf("absent sections were written:\n%s", listing)
		}
		if got := isoFile(t, path, "/openstack/latest/meta_data.json"); got != `{"name":"n","uuid":"u"}` {
			t.Errorf("meta_data.json = %s", got)
		}
		if got := isoFile(t, path, "/openstack/latest/user_data"); got != "#!/bin/sh\n" {
			t.Errorf("user_data = %q", got)
		}
	})
}

// disk for the configdrive tests: a file named like a SCSI disk.
func testDisk(path string) Disk { return Disk{Name: "/dev/sdz", Path: path} }

// partitionsUnchanged compares the partitions sfdisk lists before and
// after, apart from the new one.
func partitionsUnchanged(t *testing.T, before, after sfdiskTable) {
	t.Helper()
	if before.PartitionTable.ID != after.PartitionTable.ID {
		t.Errorf("disk ID changed from %s to %s", before.PartitionTable.ID, after.PartitionTable.ID)
	}
	for i, p := range before.PartitionTable.Partitions {
		if i >= len(after.PartitionTable.Partitions) || after.PartitionTable.Partitions[i] != p {
			t.Errorf("partition %d changed:\nbefore %+v\nafter  %+v", i+1, before.PartitionTable.Partitions, after.PartitionTable.Partitions)
		}
	}
}

func checkPartitionHoldsISO(t *testing.T, path string, part ConfigDrivePartition, iso []byte) {
	t.Helper()
	if got := readFileRange(t, path, part.Start, int64(len(iso))); !bytes.Equal(got, iso) {
		t.Errorf("partition %d does not start with the ISO", part.Number)
	}
	out := run(t, "", "blkid", "-p", "-O", fmt.Sprint(part.Start), path)
	if !strings.Contains(out, `LABEL="config-2"`) || !strings.Contains(out, `TYPE="iso9660"`) {
		t.Errorf("blkid at offset %d: %s", part.Start, out)
	}
}

func TestWriteConfigDriveGPT(t *testing.T) {
	requireTool(t, "sfdisk", "sgdisk", "blkid")
	path := diskFile(t, 100<<20)
	run(t, "label: gpt\nsize=20M, name=efi, type=U\nsize=50M, name=root\n", "sfdisk", "-q", path)
	before := sfdiskJSON(t, path)
	growFile(t, path, 300<<20) // the image was smaller than the disk

	iso := testISO(t, "first")
	part, err := WriteConfigDrive(t.Context(), testDisk(path), iso)
	if err != nil {
		t.Fatal(err)
	}
	if out := run(t, "", "sgdisk", "-v", path); !strings.Contains(out, "No problems found") {
		t.Errorf("sgdisk -v:\n%s", out)
	}
	if pmbr := readFileRange(t, path, mbrPartitionsOffset, 16); binary.LittleEndian.Uint32(pmbr[12:]) != 300<<20/512-1 {
		t.Errorf("the protective MBR covers %d sectors, not the grown disk", binary.LittleEndian.Uint32(pmbr[12:]))
	}
	after := sfdiskJSON(t, path)
	partitionsUnchanged(t, before, after)
	if len(after.PartitionTable.Partitions) != 3 {
		t.Fatalf("partitions: %+v", after.PartitionTable.Partitions)
	}
	p := after.PartitionTable.Partitions[2]
	const sectors = 300 << 20 / 512
	if p.Name != "config-2" || p.Type != "0FC63DAF-8483-4772-8E79-3D69D8477DE4" || p.Start%2048 != 0 ||
		p.Start+p.Size-1 != sectors-34 || p.Size*512 < MaxConfigDriveSize {
		t.Errorf("new partition %+v: want config-2, Linux filesystem, 1 MiB aligned, at least 64 MiB up to the last usable sector", p)
	}
	want := ConfigDrivePartition{Number: 3, Device: "/dev/sdz3", Start: p.Start * 512, Size: p.Size * 512, Created: true}
	if part != want {
		t.Errorf("WriteConfigDrive = %+v, want %+v", part, want)
	}
	checkPartitionHoldsISO(t, path, part, iso)

	// A rebuild overwrites the partition now labelled config-2.
	iso2 := testISO(t, "second")
	again, err := WriteConfigDrive(t.Context(), testDisk(path), iso2)
	if err != nil {
		t.Fatal(err)
	}
	want.Created = false
	if again != want {
		t.Errorf("second WriteConfigDrive = %+v, want %+v", again, want)
	}
	if final := sfdiskJSON(t, path); len(final.PartitionTable.Partitions) != 3 {
		t.Errorf("a partition was added on rebuild: %+v", final.PartitionTable.Partitions)
	}
	checkPartitionHoldsISO(t, path, again, iso2)
}

func TestWriteConfigDriveGPTLittleSpace(t *testing.T) {
	requireTool(t, "sfdisk", "sgdisk", "blkid")
	path := diskFile(t, 100<<20)
	run(t, "label: gpt\nsize=20M\nsize=50M\n", "sfdisk", "-q", path)
	growFile(t, path, 110<<20) // less than 64 MiB free after partition 2
	iso := testISO(t, "small")
	part, err := WriteConfigDrive(t.Context(), Disk{Name: "/dev/nvme0n1", Path: path}, iso)
	if err != nil {
		t.Fatal(err)
	}
	if part.Device != "/dev/nvme0n1p3" || part.Size >= MaxConfigDriveSize {
		t.Errorf("got %+v, want a partition smaller than 64 MiB on /dev/nvme0n1p3", part)
	}
	if out := run(t, "", "sgdisk", "-v", path); !strings.Contains(out, "No problems found") {
		t.Errorf("sgdisk -v:\n%s", out)
	}
	checkPartitionHoldsISO(t, path, part, iso)
}

func TestWriteConfigDriveGPTNoSpace(t *testing.T) {
	requireTool(t, "sfdisk")
	path := diskFile(t, 100<<20)
	run(t, "label: gpt\nsize=20M\nsize=+\n", "sfdisk", "-q", path) // the second fills the disk
	before, _ := os.ReadFile(path)
	_, err := WriteConfigDrive(t.Context(), testDisk(path), bigISO(t))
	if err == nil || !strings.Contains(err.Error(), "free after the last partition") || !strings.Contains(err.Error(), "/dev/sdz") {
		t.Fatalf("got %v, want a no-space error naming the disk", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Errorf("the disk was changed although the configdrive did not fit")
	}
}

func TestWriteConfigDriveMBR(t *testing.T) {
	requireTool(t, "sfdisk", "blkid")
	path := diskFile(t, 100<<20)
	run(t, "label: dos\n,20M,83,*\n,50M,82\n", "sfdisk", "-q", path)
	before := sfdiskJSON(t, path)
	growFile(t, path, 300<<20)

	iso := testISO(t, "mbr")
	part, err := WriteConfigDrive(t.Context(), testDisk(path), iso)
	if err != nil {
		t.Fatal(err)
	}
	if out := run(t, "", "sfdisk", "--verify", path); !strings.Contains(out, "No errors detected") {
		t.Errorf("sfdisk --verify:\n%s", out)
	}
	after := sfdiskJSON(t, path)
	partitionsUnchanged(t, before, after)
	if len(after.PartitionTable.Partitions) != 3 {
		t.Fatalf("partitions: %+v", after.PartitionTable.Partitions)
	}
	p := after.PartitionTable.Partitions[2]
	if p.Type != "c" || p.Start%2048 != 0 || p.Start+p.Size != 300<<20/512 || p.Size*512 < MaxConfigDriveSize {
		t.Errorf("new partition %+v: want type c, 1 MiB aligned, at least 64 MiB up to the end of the disk", p)
	}
	if part.Number != 3 || part.Device != "/dev/sdz3" || !part.Created || part.Start != p.Start*512 {
		t.Errorf("WriteConfigDrive = %+v", part)
	}
	checkPartitionHoldsISO(t, path, part, iso)
}

func TestWriteConfigDriveMBRLargeDisk(t *testing.T) {
	requireTool(t, "sfdisk")
	path := diskFile(t, 100<<20)
	run(t, "label: dos\n,20M,83\n", "sfdisk", "-q", path)
	growFile(t, path, 3<<40) // beyond what an MBR addresses
	part, err := WriteConfigDrive(t.Context(), testDisk(path), testISO(t, "big"))
	if err != nil {
		t.Fatal(err)
	}
	if part.Start+part.Size > 2<<40 || part.Start+part.Size < 2<<40-(1<<20) {
		t.Errorf("partition %+v should end just below 2 TiB", part)
	}
	after := sfdiskJSON(t, path)
	if len(after.PartitionTable.Partitions) != 2 || after.PartitionTable.Partitions[1].Start*512 != part.Start {
		t.Errorf("sfdisk sees %+v", after.PartitionTable.Partitions)
	}
}

func TestWriteConfigDriveMBRFull(t *testing.T) {
	requireTool(t, "sfdisk")
	tests := []struct{ name, script string }{
		{"four primary partitions", "label: dos\n,10M\n,10M\n,10M\n,10M\n"},
		{"three primary and an extended", "label: dos\n,10M\n,10M\n,10M\n,20M,5\n,5M\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := diskFile(t, 100<<20)
			run(t, tt.script, "sfdisk", "-q", path)
			growFile(t, path, 300<<20)
			_, err := WriteConfigDrive(t.Context(), testDisk(path), testISO(t, "x"))
			if err == nil || !strings.Contains(err.Error(), "already has 4 primary partitions") {
				t.Fatalf("got %v", err)
			}
		})
	}
}

func TestWriteConfigDriveExistingLabel(t *testing.T) {
	requireTool(t, "sfdisk", "mkfs.vfat", "blkid")
	path := diskFile(t, 200<<20)
	run(t, "label: dos\n,20M,83\n,70M,c\n,20M,83\n", "sfdisk", "-q", path)
	table := sfdiskJSON(t, path)
	second := table.PartitionTable.Partitions[1]
	run(t, "", "mkfs.vfat", "-n", "CONFIG-2", "--offset", fmt.Sprint(second.Start), path, fmt.Sprint(second.Size/2))

	iso := testISO(t, "existing")
	part, err := WriteConfigDrive(t.Context(), testDisk(path), iso)
	if err != nil {
		t.Fatal(err)
	}
	if part.Number != 2 || part.Created || part.Start != second.Start*512 {
		t.Fatalf("got %+v, want partition 2 overwritten", part)
	}
	partitionsUnchanged(t, table, sfdiskJSON(t, path))
	checkPartitionHoldsISO(t, path, part, iso)

	t.Run("two labelled partitions", func(t *testing.T) {
		third := table.PartitionTable.Partitions[2]
		run(t, "", "mkfs.vfat", "-n", "config-2", "--offset", fmt.Sprint(third.Start), path, fmt.Sprint(third.Size/2))
		_, err := WriteConfigDrive(t.Context(), testDisk(path), iso)
		if err == nil || !strings.Contains(err.Error(), "partitions 2 and 3 are both labelled config-2") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestWriteConfigDriveExistingTooSmall(t *testing.T) {
	requireTool(t, "sfdisk")
	path := diskFile(t, 100<<20)
	run(t, "label: gpt\nsize=20M\nsize=1M, name=config-2\n", "sfdisk", "-q", path)
	_, err := WriteConfigDrive(t.Context(), testDisk(path), bigISO(t))
	if err == nil || !strings.Contains(err.Error(), "less than the") {
		t.Fatalf("got %v", err)
	}
}

func TestWriteConfigDriveNoPartitionTable(t *testing.T) {
	requireTool(t, "mkfs.ext4")
	path := diskFile(t, 64<<20)
	run(t, "", "mkfs.ext4", "-q", "-F", path)
	growFile(t, path, 200<<20)
	_, err := WriteConfigDrive(t.Context(), testDisk(path), testISO(t, "x"))
	if err == nil || !strings.Contains(err.Error(), "no GPT or MBR partition table") {
		t.Fatalf("got %v", err)
	}
}

func TestWriteConfigDriveRejects(t *testing.T) {
	path := diskFile(t, 1<<20)
	if _, err := WriteConfigDrive(t.Context(), testDisk(path), []byte("not an image")); err == nil ||
		!strings.Contains(err.Error(), "neither an ISO9660 nor a FAT") {
		t.Errorf("not an image: got %v", err)
	}
	disk := testDisk(path)
	disk.ReadOnly = true
	if _, err := WriteConfigDrive(t.Context(), disk, testISO(t, "x")); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("read-only disk: got %v", err)
	}
	if _, err := WriteConfigDrive(t.Context(), Disk{Name: "/dev/sdz", Path: t.TempDir()}, testISO(t, "x")); err == nil {
		t.Errorf("a directory was accepted as a disk")
	}
}
