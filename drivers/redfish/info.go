package redfish

import (
	"net/url"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/stmcginnis/gofish/schemas"

	"github.com/ferric-metal/ferric/drivers"
)

// driver_info keys.
const (
	keyAddress  = "redfish_address"
	keySystemID = "redfish_system_id"
	keyUsername = "redfish_username"
	keyPassword = "redfish_password"
	keyVerifyCA = "redfish_verify_ca"
	keyAuthType = "redfish_auth_type"
	keyBootMode = "redfish_boot_mode"
)

var knownKeys = []string{keyAddress, keySystemID, keyUsername, keyPassword, keyVerifyCA, keyAuthType, keyBootMode}

const systemsRoot = "/redfish/v1/Systems/"

// bmcConfig is a node's validated driver_info.
type bmcConfig struct {
	endpoint   string // scheme://host[:port]
	systemPath string // path of the ComputerSystem; "" to discover the only one
	username   string
	password   string
	session    bool
	skipVerify bool
	caFile     string // PEM bundle to verify against; "" for the system roots
	bootMode   schemas.BootSourceOverrideMode
}

// parseInfo validates driver_info. Its errors are *drivers.InfoError and
// never echo a value, which might hold a credential.
func parseInfo(info map[string]any) (*bmcConfig, error) {
	for key := range info {
		if strings.HasPrefix(key, "redfish_") && !slices.Contains(knownKeys, key) {
			return nil, &drivers.InfoError{Key: key, Reason: "unknown key; the redfish driver reads " + strings.Join(knownKeys, ", ")}
		}
	}
	cfg := &bmcConfig{}
	var err error

	address, ok, err := optionalString(info, keyAddress)
	if err != nil {
		return nil, err
	}
	if !ok || address == "" {
		return nil, &drivers.InfoError{Key: keyAddress, Reason: "required: the URL of the BMC, e.g. https://10.0.0.5"}
	}
	if cfg.endpoint, err = parseAddress(address); err != nil {
		return nil, err
	}

	systemID, _, err := optionalString(info, keySystemID)
	if err != nil {
		return nil, err
	}
	if cfg.systemPath, err = parseSystemID(systemID); err != nil {
		return nil, err
	}

	if cfg.username, _, err = optionalString(info, keyUsername); err != nil {
		return nil, err
	}
	if cfg.password, err = secretString(info, keyPassword); err != nil {
		return nil, err
	}

	if cfg.skipVerify, cfg.caFile, err = parseVerifyCA(info[keyVerifyCA]); err != nil {
		return nil, err
	}

	authType, _, err := optionalString(info, keyAuthType)
	if err != nil {
		return nil, err
	}
	switch strings.ToLower(authType) {
	case "", "basic":
	case "session":
		if cfg.username == "" {
			return nil, &drivers.InfoError{Key: keyUsername, Reason: "required with redfish_auth_type session"}
		}
		cfg.session = true
	default:
		return nil, &drivers.InfoError{Key: keyAuthType, Reason: "must be basic or session"}
	}

	bootMode, _, err := optionalString(info, keyBootMode)
	if err != nil {
		return nil, err
	}
	switch strings.ToLower(bootMode) {
	case "":
	case "uefi":
		cfg.bootMode = schemas.UEFIBootSourceOverrideMode
	case "bios":
		cfg.bootMode = schemas.LegacyBootSourceOverrideMode
	default:
		return nil, &drivers.InfoError{Key: keyBootMode, Reason: "must be uefi or bios"}
	}
	return cfg, nil
}

func optionalString(info map[string]any, key string) (value string, present bool, err error) {
	v, ok := info[key]
	if !ok || v == nil {
		return "", false, nil
	}
	s, isString := v.(string)
	if !isString {
		return "", true, &drivers.InfoError{Key: key, Reason: "must be a string"}
	}
	return strings.TrimSpace(s), true, nil
}

// secretString is optionalString without trimming: spaces may be part of a
// password.
func secretString(info map[string]any, key string) (string, error) {
	v, ok := info[key]
	if !ok || v == nil {
		return "", nil
	}
	s, isString := v.(string)
	if !isString {
		return "", &drivers.InfoError{Key: key, Reason: "must be a string"}
	}
	return s, nil
}

// parseAddress returns scheme://host[:port] of a BMC URL.
func parseAddress(address string) (string, error) {
	if !strings.Contains(address, "://") {
		address = "https://" + address // Ironic's default for a bare host
	}
	u, err := url.Parse(address)
	if err != nil {
		return "", &drivers.InfoError{Key: keyAddress, Reason: "not a valid URL"}
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", &drivers.InfoError{Key: keyAddress, Reason: "scheme must be http or https"}
	case u.User != nil:
		return "", &drivers.InfoError{Key: keyAddress, Reason: "must not contain credentials; use redfish_username and redfish_password"}
	case u.Hostname() == "":
		return "", &drivers.InfoError{Key: keyAddress, Reason: "has no host"}
	case u.Path != "" && u.Path != "/":
		return "", &drivers.InfoError{Key: keyAddress, Reason: "must not contain a path; the driver adds /redfish/v1"}
	case u.RawQuery != "" || u.Fragment != "":
		return "", &drivers.InfoError{Key: keyAddress, Reason: "must not contain a query or fragment"}
	}
	return u.Scheme + "://" + u.Host, nil
}

// parseSystemID turns an id or a path into the system's path.
func parseSystemID(id string) (string, error) {
	if id == "" {
		return "", nil
	}
	if strings.HasPrefix(id, "/") {
		clean := path.Clean(id)
		if !strings.HasPrefix(clean+"/", "/redfish/v1/") || clean == "/redfish/v1" || strings.ContainsAny(clean, "?#") {
			return "", &drivers.InfoError{Key: keySystemID, Reason: "a path must be under /redfish/v1/, e.g. /redfish/v1/Systems/1"}
		}
		return clean, nil
	}
	if strings.ContainsAny(id, "/?#") || id == "." || id == ".." {
		return "", &drivers.InfoError{Key: keySystemID, Reason: "must be a system id such as 1 or a path such as /redfish/v1/Systems/1"}
	}
	return systemsRoot + url.PathEscape(id), nil
}

// parseVerifyCA accepts a bool, a bool-like string or an absolute CA path.
func parseVerifyCA(v any) (skipVerify bool, caFile string, err error) {
	switch x := v.(type) {
	case nil:
		return false, "", nil
	case bool:
		return !x, "", nil
	case string:
		s := strings.TrimSpace(x)
		switch strings.ToLower(s) {
		case "", "true", "yes", "on", "1":
			return false, "", nil
		case "false", "no", "off", "0":
			return true, "", nil
		}
		if !filepath.IsAbs(s) {
			return false, "", &drivers.InfoError{Key: keyVerifyCA, Reason: "must be true, false or the absolute path of a CA bundle"}
		}
		return false, filepath.Clean(s), nil
	}
	return false, "", &drivers.InfoError{Key: keyVerifyCA, Reason: "must be a boolean or the absolute path of a CA bundle"}
}
