package disks

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"

	"github.com/ferric-metal/ferric/shared/redact"
)

// MaxConfigDriveSize is the largest configdrive image accepted, as IPA's
// MAX_CONFIG_DRIVE_SIZE_MB; it is also the size of the partition made for
// one.
const MaxConfigDriveSize = 64 << 20

// maxConfigDriveDownload bounds what is read from a configdrive URL: the
// base64 text of a gzipped image of MaxConfigDriveSize (4/3 of it, with
// line breaks and gzip's worst-case overhead), or a raw image.
const maxConfigDriveDownload = MaxConfigDriveSize/3*4 + 16<<20

// ConfigDriveLabel is the filesystem label cloud-init looks for.
const ConfigDriveLabel = "config-2"

// ConfigDriveOptions says how to obtain a configdrive.
type ConfigDriveOptions struct {
	// HTTPClient downloads configdrives given as URLs; it should carry
	// timeouts and the TLS settings for the image servers. Required for URLs.
	HTTPClient *http.Client
	// NodeUUID and NodeName fill meta_data's "uuid" and "name" when a
	// configdrive given as JSON lacks them, as Ironic's conductor does.
	NodeUUID string
	NodeName string
}

// ConfigDriveContent is Ironic's JSON form of a configdrive.
type ConfigDriveContent struct {
	MetaData    map[string]any
	NetworkData map[string]any
	VendorData  map[string]any
	// UserData is written as it is; Ironic serialises a JSON object or
	// array given as user_data, which DecodeConfigDrive does too.
	UserData []byte
}

// DecodeConfigDrive turns instance_info.configdrive into the image to write:
//   - a string with an http:// or https:// URL: the body downloaded from it
//     is decoded as below, or taken as it is if it is already an image;
//   - any other string: base64 of a gzipped image (what Ironic stores), or
//     base64 of a plain image;
//   - a JSON object (map[string]any) with meta_data, network_data,
//     user_data and vendor_data, or a ConfigDriveContent: an ISO9660 image
//     is built, as Ironic's conductor builds one.
//
// The image must be ISO9660 (or FAT, which IPA writes on disks that cannot
// read ISO9660) and at most MaxConfigDriveSize.
func DecodeConfigDrive(ctx context.Context, value any, opts ConfigDriveOptions) ([]byte, error) {
	switch v := value.(type) {
	case string:
		s := strings.TrimSpace(v)
		if s == "" {
			return nil, errors.New("the configdrive is empty")
		}
		if lower := strings.ToLower(s); strings.HasPrefix(lower, "http://") || strings.HasPrefix(lower, "https://") {
			body, err := downloadConfigDrive(ctx, s, opts.HTTPClient)
			if err != nil {
				return nil, err
			}
			image, err := decodeConfigDriveData(body, true)
			if err != nil {
				return nil, fmt.Errorf("configdrive downloaded from %s: %w", redact.URL(s), err)
			}
			return image, nil
		}
		image, err := decodeConfigDriveData([]byte(s), false)
		if err != nil {
			return nil, fmt.Errorf("configdrive: %w", err)
		}
		return image, nil
	case map[string]any:
		content, err := parseConfigDriveJSON(v)
		if err != nil {
			return nil, fmt.Errorf("configdrive: %w", err)
		}
		return BuildConfigDrive(content, opts.NodeUUID, opts.NodeName)
	case ConfigDriveContent:
		return BuildConfigDrive(v, opts.NodeUUID, opts.NodeName)
	case *ConfigDriveContent:
		if v != nil {
			return BuildConfigDrive(*v, opts.NodeUUID, opts.NodeName)
		}
	}
	return nil, fmt.Errorf("configdrive: %s is neither a string nor a JSON object", describeKind(value))
}

func describeKind(value any) string {
	if value == nil {
		return "null"
	}
	return fmt.Sprintf("a %T", value)
}

func downloadConfigDrive(ctx context.Context, rawURL string, client *http.Client) ([]byte, error) {
	where := redact.URL(rawURL)
	if client == nil {
		return nil, fmt.Errorf("downloading the configdrive from %s: no HTTP client configured", where)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("downloading the configdrive from %s: %w", where, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		// The client's error repeats the URL, signature included.
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			err = urlErr.Err
		}
		return nil, fmt.Errorf("downloading the configdrive from %s: %w", where, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		return nil, fmt.Errorf("downloading the configdrive from %s: HTTP status %s: %q",
			where, resp.Status, strings.TrimSpace(string(snippet)))
	}
	if resp.ContentLength > maxConfigDriveDownload {
		return nil, fmt.Errorf("downloading the configdrive from %s: %d bytes is more than the %d allowed",
			where, resp.ContentLength, maxConfigDriveDownload)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxConfigDriveDownload+1))
	if err != nil {
		return nil, fmt.Errorf("downloading the configdrive from %s: %w", where, err)
	}
	if len(body) > maxConfigDriveDownload {
		return nil, fmt.Errorf("downloading the configdrive from %s: more than the %d bytes allowed", where, maxConfigDriveDownload)
	}
	return body, nil
}

// decodeConfigDriveData decodes base64 and gzip. raw allows data that is
// already an image or gzip, as IPA writes downloaded data that is not base64.
func decodeConfigDriveData(data []byte, raw bool) ([]byte, error) {
	if raw {
		if imageKind(data) != "" {
			return checkConfigDriveImage(data)
		}
		if isGzip(data) {
			return gunzipConfigDrive(data)
		}
	}
	decoded, err := decodeBase64(data)
	if err != nil {
		if raw {
			return nil, fmt.Errorf("neither an ISO9660 or FAT image, nor gzip, nor base64: %w", err)
		}
		return nil, fmt.Errorf("neither a URL nor base64: %w", err)
	}
	if isGzip(decoded) {
		return gunzipConfigDrive(decoded)
	}
	return checkConfigDriveImage(decoded)
}

// decodeBase64 is lenient about line breaks and missing padding, which
// Ironic's API lets through.
func decodeBase64(data []byte) ([]byte, error) {
	compact := bytes.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == '\t' || r == ' ' {
			return -1
		}
		return r
	}, data)
	compact = bytes.TrimRight(compact, "=")
	out := make([]byte, base64.RawStdEncoding.DecodedLen(len(compact)))
	n, err := base64.RawStdEncoding.Decode(out, compact)
	if err != nil {
		return nil, err
	}
	return out[:n], nil
}

func isGzip(data []byte) bool { return len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b }

func gunzipConfigDrive(data []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("not valid gzip: %w", err)
	}
	// Limit what a small compressed input can expand to.
	image, err := io.ReadAll(io.LimitReader(zr, MaxConfigDriveSize+1))
	if err != nil {
		return nil, fmt.Errorf("decompressing: %w", err)
	}
	if len(image) > MaxConfigDriveSize {
		return nil, fmt.Errorf("the decompressed image is larger than the %d MiB allowed", MaxConfigDriveSize>>20)
	}
	return checkConfigDriveImage(image)
}

func checkConfigDriveImage(image []byte) ([]byte, error) {
	if len(image) > MaxConfigDriveSize {
		return nil, fmt.Errorf("the image is %d bytes, larger than the %d MiB allowed", len(image), MaxConfigDriveSize>>20)
	}
	if imageKind(image) == "" {
		return nil, fmt.Errorf("the decoded %d bytes are neither an ISO9660 nor a FAT filesystem image", len(image))
	}
	return image, nil
}

// imageKind recognises the filesystems a configdrive can be.
func imageKind(image []byte) string {
	if len(image) >= isoPVDOffset+72 {
		if _, ok := isoLabel(image[isoPVDOffset:]); ok {
			return "iso9660"
		}
	}
	if fatLabel(image) != nil {
		return "vfat"
	}
	return ""
}

// parseConfigDriveJSON applies Ironic's API schema for the JSON form.
func parseConfigDriveJSON(v map[string]any) (ConfigDriveContent, error) {
	var content ConfigDriveContent
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		value := v[key]
		switch key {
		case "meta_data", "network_data", "vendor_data":
			if value == nil {
				continue
			}
			object, ok := value.(map[string]any)
			if !ok {
				return content, fmt.Errorf("%s must be a JSON object, not %s", key, describeKind(value))
			}
			switch key {
			case "meta_data":
				content.MetaData = object
			case "network_data":
				content.NetworkData = object
			default:
				content.VendorData = object
			}
		case "user_data":
			switch u := value.(type) {
			case nil:
			case string:
				content.UserData = []byte(u)
			case map[string]any, []any:
				data, err := marshalJSON(u)
				if err != nil {
					return content, fmt.Errorf("user_data: %w", err)
				}
				content.UserData = data
			default:
				return content, fmt.Errorf("user_data must be a string, a JSON object or an array, not %s", describeKind(value))
			}
		default:
			return content, fmt.Errorf("unknown key %q (allowed: meta_data, network_data, user_data, vendor_data)", key)
		}
	}
	return content, nil
}

func marshalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// configDriveVersions are the metadata versions written, as openstacksdk's
// configdrive builder (which Ironic's conductor uses) writes them.
var configDriveVersions = []string{"2012-08-10", "latest"}

// BuildConfigDrive makes the ISO9660 image Ironic's conductor builds from
// the JSON form: volume label config-2, Rock Ridge and Joliet names, and for
// each metadata version openstack/<version>/meta_data.json, network_data.json,
// vendor_data2.json and user_data (those present). nodeUUID and nodeName are
// meta_data's defaults for "uuid" and "name".
func BuildConfigDrive(content ConfigDriveContent, nodeUUID, nodeName string) ([]byte, error) {
	meta := make(map[string]any, len(content.MetaData)+2)
	for k, v := range content.MetaData {
		meta[k] = v
	}
	if _, ok := meta["uuid"]; !ok && nodeUUID != "" {
		meta["uuid"] = nodeUUID
	}
	if _, ok := meta["name"]; !ok && nodeName != "" {
		meta["name"] = nodeName
	}
	files := map[string][]byte{}
	for _, version := range configDriveVersions {
		dir := path.Join("openstack", version)
		data, err := marshalJSON(meta)
		if err != nil {
			return nil, fmt.Errorf("building the configdrive: meta_data: %w", err)
		}
		files[path.Join(dir, "meta_data.json")] = data
		if len(content.NetworkData) > 0 {
			if files[path.Join(dir, "network_data.json")], err = marshalJSON(content.NetworkData); err != nil {
				return nil, fmt.Errorf("building the configdrive: network_data: %w", err)
			}
		}
		if len(content.VendorData) > 0 {
			if files[path.Join(dir, "vendor_data2.json")], err = marshalJSON(content.VendorData); err != nil {
				return nil, fmt.Errorf("building the configdrive: vendor_data: %w", err)
			}
		}
		if len(content.UserData) > 0 {
			files[path.Join(dir, "user_data")] = content.UserData
		}
	}
	image, err := buildISO(files, ConfigDriveLabel)
	if err != nil {
		return nil, fmt.Errorf("building the configdrive: %w", err)
	}
	if len(image) > MaxConfigDriveSize {
		return nil, fmt.Errorf("building the configdrive: the image is %d bytes, larger than the %d MiB allowed",
			len(image), MaxConfigDriveSize>>20)
	}
	return image, nil
}

// buildISO writes files (slash-separated relative paths) into an ISO9660
// image with go-diskfs, which stages them in a temporary directory.
func buildISO(files map[string][]byte, label string) ([]byte, error) {
	var total int64
	for _, data := range files {
		total += int64(len(data))
	}
	if total > MaxConfigDriveSize {
		return nil, fmt.Errorf("the files add up to %d bytes, more than the %d MiB allowed", total, MaxConfigDriveSize>>20)
	}
	tmp, err := os.MkdirTemp("", "configdrive")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	workspace := filepath.Join(tmp, "files")
	if err := os.Mkdir(workspace, 0o755); err != nil {
		return nil, err
	}
	imagePath := filepath.Join(tmp, "image.iso")
	imageFile, err := os.Create(imagePath)
	if err != nil {
		return nil, err
	}
	defer imageFile.Close()

	fs, err := iso9660.Create(file.New(imageFile, false), 0, 0, 2048, workspace)
	if err != nil {
		return nil, fmt.Errorf("creating the ISO9660 filesystem: %w", err)
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := fs.Mkdir("/" + path.Dir(name)); err != nil {
			return nil, fmt.Errorf("creating directory %s in the ISO9660 image: %w", path.Dir(name), err)
		}
		f, err := fs.OpenFile("/"+name, os.O_CREATE|os.O_RDWR)
		if err != nil {
			return nil, fmt.Errorf("creating %s in the ISO9660 image: %w", name, err)
		}
		_, writeErr := f.Write(files[name])
		closeErr := f.Close()
		if err := errors.Join(writeErr, closeErr); err != nil {
			return nil, fmt.Errorf("writing %s into the ISO9660 image: %w", name, err)
		}
	}
	err = fs.Finalize(iso9660.FinalizeOptions{
		RockRidge:           true,
		Joliet:              true,
		VolumeIdentifier:    label,
		PublisherIdentifier: "ferric",
	})
	if err != nil {
		return nil, fmt.Errorf("writing the ISO9660 image: %w", err)
	}
	return os.ReadFile(imagePath)
}
