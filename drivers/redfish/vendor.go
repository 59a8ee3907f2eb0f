package redfish

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/stmcginnis/gofish/schemas"

	"github.com/ferric-metal/ferric/drivers"
)

// Vendor passthru methods.
const (
	methodBIOSAttributes    = "bios_attributes"
	methodEjectVirtualMedia = "eject_virtual_media"
)

// VendorMethods implements drivers.NodeVendor.
func (d *Driver) VendorMethods() []drivers.VendorMethod {
	return []drivers.VendorMethod{
		{
			Name:        methodBIOSAttributes,
			HTTPMethods: []string{"GET"},
			Description: "Returns the system's current BIOS attributes, name to value, as the BMC reports them.",
		},
		{
			Name:                 methodEjectVirtualMedia,
			HTTPMethods:          []string{"POST"},
			Async:                true,
			RequireExclusiveLock: true,
			Description: "Ejects every inserted virtual medium of the system's manager. " +
				"Optional body {\"media_type\": \"CD\"} limits it to devices offering that media type.",
		},
	}
}

// CallVendor implements drivers.NodeVendor.
func (d *Driver) CallVendor(ctx context.Context, n drivers.Node, method, httpMethod string, body json.RawMessage) (any, error) {
	op := "vendor method " + method
	i := slices.IndexFunc(d.VendorMethods(), func(m drivers.VendorMethod) bool { return m.Name == method })
	if i < 0 {
		return nil, opError(n, op, fmt.Errorf("unknown method: %w", drivers.ErrNotSupported))
	}
	if verbs := d.VendorMethods()[i].HTTPMethods; !slices.Contains(verbs, strings.ToUpper(httpMethod)) {
		return nil, opError(n, op, fmt.Errorf("HTTP method %s (want %s): %w", httpMethod, strings.Join(verbs, ", "), drivers.ErrNotSupported))
	}
	switch method {
	case methodBIOSAttributes:
		return d.biosAttributes(ctx, n, op)
	default:
		var args ejectArgs
		if err := decodeArgs(body, &args); err != nil {
			return nil, opError(n, op, err)
		}
		return d.ejectVirtualMedia(ctx, n, op, args)
	}
}

func (d *Driver) biosAttributes(ctx context.Context, n drivers.Node, op string) (map[string]any, error) {
	var attrs map[string]any
	err := d.run(ctx, n, op, func(o *operation) error {
		sys, err := o.system()
		if err != nil {
			return err
		}
		bios, err := sys.Bios()
		if err != nil {
			return fmt.Errorf("reading the Bios resource: %w", err)
		}
		if bios == nil {
			return fmt.Errorf("the system links no Bios resource: %w", drivers.ErrNotSupported)
		}
		attrs = map[string]any(bios.Attributes)
		if attrs == nil {
			attrs = map[string]any{}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return attrs, nil
}

// ejectArgs is the optional body of eject_virtual_media.
type ejectArgs struct {
	MediaType string `json:"media_type"`
}

// decodeArgs reads a vendor method's JSON body strictly; an empty body or
// null means no arguments.
func decodeArgs(body json.RawMessage, v any) error {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || bytes.Equal(trimmed, []byte("null")) {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("request body: %w", err)
	}
	return nil
}

// EjectResult lists the virtual media eject_virtual_media ejected, by
// their Redfish paths.
type EjectResult struct {
	Ejected []string `json:"ejected"`
}

func (d *Driver) ejectVirtualMedia(ctx context.Context, n drivers.Node, op string, args ejectArgs) (*EjectResult, error) {
	result := &EjectResult{Ejected: []string{}}
	err := d.run(ctx, n, op, func(o *operation) error {
		sys, err := o.system()
		if err != nil {
			return err
		}
		managers, err := sys.ManagedBy()
		if err != nil {
			return fmt.Errorf("reading the system's manager: %w", err)
		}
		if len(managers) == 0 {
			return fmt.Errorf("the system links no manager (Links.ManagedBy): %w", drivers.ErrNotSupported)
		}
		media, err := managers[0].VirtualMedia()
		if err != nil {
			return fmt.Errorf("reading virtual media of %s: %w", managers[0].ODataID, err)
		}
		if media == nil {
			return fmt.Errorf("manager %s has no VirtualMedia: %w", managers[0].ODataID, drivers.ErrNotSupported)
		}
		slices.SortFunc(media, func(a, b *schemas.VirtualMedia) int { return strings.Compare(a.ODataID, b.ODataID) })
		var errs []error
		for _, m := range media {
			if !isInserted(m) || !offersMediaType(m, args.MediaType) {
				continue
			}
			if _, err := m.EjectMedia(); err != nil {
				errs = append(errs, fmt.Errorf("eject %s: %w", m.ODataID, err))
				continue
			}
			result.Ejected = append(result.Ejected, m.ODataID)
		}
		return errors.Join(errs...)
	})
	if err != nil {
		return nil, err
	}
	return result, nil
}

func isInserted(m *schemas.VirtualMedia) bool {
	if m.Inserted != nil {
		return *m.Inserted
	}
	return m.Image != "" // BMCs that omit Inserted
}

func offersMediaType(m *schemas.VirtualMedia, want string) bool {
	if want == "" {
		return true
	}
	for _, t := range m.MediaTypes {
		if strings.EqualFold(string(t), want) {
			return true
		}
	}
	return false
}
