package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/ferric-metal/ferric/agent-api/agentwire"
	"github.com/ferric-metal/ferric/agent-api/disks"
	"github.com/ferric-metal/ferric/agent-api/imagewrite"
	"github.com/ferric-metal/ferric/shared/redact"
)

// Each command's errors name the step that failed: they become the node's
// last_error ("Agent reported that deploy failed: write image: ...").

// deploy writes the image to the root device and adds the configdrive.
func (a *Agent) deploy(ctx context.Context, s *session, raw json.RawMessage) error {
	var args agentwire.DeployArgs
	if err := decodeArgs(raw, &args); err != nil {
		return fmt.Errorf("deploy arguments: %w", err)
	}
	source := args.ImageURL
	if source == "" {
		source = args.ImageSource
	}
	if source == "" {
		return errors.New("deploy arguments: neither image_url nor image_source is set")
	}
	if u, err := url.Parse(source); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("deploy arguments: image source %q is not an http(s) URL (an image service's image needs image_url)", redact.URL(source))
	}
	m, err := a.hw.Machine(ctx) // disks as they are now
	if err != nil {
		return fmt.Errorf("inventory: %w", err)
	}
	s.machine = m
	root, err := disks.SelectRoot(m.Disks, args.RootDevice)
	if err != nil {
		return fmt.Errorf("root device: %w", err)
	}
	// As IPA does before a whole-disk image: no partition table or
	// signature of an earlier install may survive beyond the new image
	// (a backup GPT at the end of a disk larger than the image, say).
	if err := disks.EraseMetadata(ctx, root); err != nil {
		return fmt.Errorf("erase the metadata of %s before writing: %w", root.Name, err)
	}
	a.log.Info("writing the image", "node", s.node, "root_device", root.Name, "image", redact.URL(source))
	start := time.Now()
	res, err := imagewrite.Write(ctx, imagewrite.Source{
		URL: source, Checksum: args.ImageChecksum, OSHashAlgo: args.ImageOSHashAlgo,
		OSHashValue: args.ImageOSHashValue, DiskFormat: args.ImageDiskFormat,
	}, root.Path, imagewrite.Options{Client: a.images, Log: a.log.With("node", s.node), StallTimeout: a.cfg.ImageStallTimeout})
	if err != nil {
		return fmt.Errorf("write image to %s: %w", root.Name, err)
	}
	a.log.Info("image written", "node", s.node, "root_device", root.Name, "format", res.Format,
		"bytes_written", res.BytesWritten, "seconds", time.Since(start).Seconds())
	if args.Configdrive != nil && !isEmpty(args.Configdrive) {
		iso, err := disks.DecodeConfigDrive(ctx, args.Configdrive, disks.ConfigDriveOptions{HTTPClient: a.images, NodeUUID: s.node})
		if err != nil {
			return fmt.Errorf("configdrive: %w", err)
		}
		part, err := disks.WriteConfigDrive(ctx, root, iso)
		if err != nil {
			return fmt.Errorf("configdrive on %s: %w", root.Name, err)
		}
		a.log.Info("configdrive written", "node", s.node, "partition", part, "bytes", len(iso))
	}
	return nil
}

// clean runs the clean steps given, or erases every disk's metadata.
func (a *Agent) clean(ctx context.Context, s *session, raw json.RawMessage) error {
	var args agentwire.CleanArgs
	if err := decodeArgs(raw, &args); err != nil {
		return fmt.Errorf("clean arguments: %w", err)
	}
	steps := args.CleanSteps
	if len(steps) == 0 {
		steps = []agentwire.CleanStep{{Interface: "deploy", Step: agentwire.StepEraseDevicesMetadata}}
	}
	for _, st := range steps { // refuse the whole list before touching a disk
		if st.Step != agentwire.StepEraseDevicesMetadata && st.Step != agentwire.StepEraseDevices {
			return fmt.Errorf("clean step %q is not supported by ferric-agent (it offers %s and %s)",
				st.Step, agentwire.StepEraseDevicesMetadata, agentwire.StepEraseDevices)
		}
	}
	m, err := a.hw.Machine(ctx)
	if err != nil {
		return fmt.Errorf("inventory: %w", err)
	}
	s.machine = m
	for _, st := range steps {
		for _, d := range m.Disks {
			if !disks.Eligible(d) {
				a.log.Info("disk skipped by cleaning (read-only, or virtual media)", "node", s.node, "disk", d.Name)
				continue
			}
			start := time.Now()
			switch st.Step {
			case agentwire.StepEraseDevicesMetadata:
				err = disks.EraseMetadata(ctx, d)
			case agentwire.StepEraseDevices:
				err = disks.EraseAll(ctx, d, nil)
			}
			if err != nil {
				return fmt.Errorf("%s on %s: %w", st.Step, d.Name, err)
			}
			a.log.Info("clean step done", "node", s.node, "step", st.Step, "disk", d.Name, "seconds", time.Since(start).Seconds())
		}
	}
	return nil
}

// inspect sends the machine's inventory, read afresh, through lookup.
func (a *Agent) inspect(ctx context.Context, s *session, _ json.RawMessage) error {
	m, err := a.hw.Machine(ctx)
	if err != nil {
		return fmt.Errorf("inventory: %w", err)
	}
	s.machine = m
	if _, err := a.api.Lookup(ctx, &m.Inventory); err != nil {
		return fmt.Errorf("send inventory: %w", err)
	}
	return nil
}

// decodeArgs decodes a command's arguments; absent ones are {}.
func decodeArgs(raw json.RawMessage, v any) error {
	if len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil
	}
	return json.Unmarshal(raw, v)
}

// isEmpty reports a configdrive value that asks for nothing ("" or {}).
func isEmpty(v any) bool {
	switch x := v.(type) {
	case string:
		return x == ""
	case map[string]any:
		return len(x) == 0
	}
	return false
}
