package publicapi

import (
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/ferric-metal/ferric/shared/apierror"
	"github.com/ferric-metal/ferric/shared/fault"
)

// The API versions Ferric serves: the Ironic v1 microversions from MinVersion
// to MaxVersion. A request without a version header gets MinVersion, as
// Ironic does.
var (
	MinVersion = Version{1, 1}
	MaxVersion = Version{1, 81}
)

// Version headers (Ironic's, and the generic OpenStack one).
const (
	versionHeader    = "X-OpenStack-Ironic-API-Version"
	minVersionHeader = "X-OpenStack-Ironic-API-Minimum-Version"
	maxVersionHeader = "X-OpenStack-Ironic-API-Maximum-Version"
	genericHeader    = "OpenStack-API-Version"
)

// Microversions (minor numbers) at which Ironic changed what the endpoints
// Ferric serves accept or return. Requests at a lower version get the older
// behaviour; using a newer feature is 406, as in Ironic.
const (
	vAvailableState       = 2  // "available" replaces a null provision_state
	vDriverInternalInfo   = 3  // node.driver_internal_info
	vNames                = 5  // node names, and nodes addressed by name
	vCleanStep            = 7  // node.clean_step
	vFields               = 8  // ?fields=
	vProvisionStateFilter = 9  // ?provision_state=
	vEnrollDefault        = 11 // new nodes start in enroll
	vRAIDConfig           = 12 // node.raid_config, target_raid_config
	vStatesLink           = 14 // node.states link
	vDriverFilter         = 16 // ?driver=
	vPortInternalInfo     = 18 // port.internal_info
	vPortNetFields        = 19 // port.local_link_connection, pxe_enabled
	vResourceClass        = 21 // node.resource_class
	vNetworkInterface     = 20 // node.network_interface
	vPortgroupUUID        = 24 // port.portgroup_uuid
	vUnsetChassis         = 25 // removing a node's chassis_uuid
	vDynamicDrivers       = 30 // driver type, ?detail= and interfaces
	vNodeInterfaces       = 31 // node.boot_interface, deploy_interface... (network, storage, rescue, bios: their own)
	vStorageInterface     = 33 // driver storage interface fields
	vPhysicalNetwork      = 34 // port.physical_network
	vTraits               = 37 // node.traits
	vRescueInterface      = 38 // driver rescue interface fields
	vInspectWait          = 39 // "inspect wait" shown as such
	vBIOSInterface        = 40 // driver bios interface fields
	vFault                = 42 // node.fault, ?fault=
	vDetail               = 43 // ?detail= on lists
	vDeployStep           = 44 // node.deploy_step
	vResetInterfaces      = 45 // ?reset_interfaces= on node patches
	vConductorGroup       = 46 // node.conductor_group, ?conductor_group=
	vAutomatedClean       = 47 // node.automated_clean
	vProtected            = 48 // node.protected, protected_reason
	vConductors           = 49 // /v1/conductors, node.conductor
	vOwner                = 50 // node.owner, ?owner=
	vDescription          = 51 // node.description, ?description_contains=
	vSmartNIC             = 53 // port.is_smartnic
	vRetired              = 61 // node.retired, retired_reason
	vLessee               = 65 // node.lessee, ?lessee=
	vNetworkData          = 66 // node.network_data
	vBootMode             = 75 // node.boot_mode, secure_boot
	vDriverFields         = 77 // ?fields= on drivers
	vNodeHistory          = 78 // /v1/nodes/{node}/history
)

// notAcceptable is the error for a feature newer than the request's version.
func notAcceptable(what string, minor int, v Version) error {
	return fault.New(fault.NotAcceptable, "%s requires API version 1.%d or later; this request uses %s.", what, minor, v)
}

// Version is an API microversion.
type Version struct{ Major, Minor int }

func (v Version) String() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// AtLeast reports whether v is minor or newer (within major version 1).
func (v Version) AtLeast(minor int) bool { return v.Minor >= minor }

var versionPattern = regexp.MustCompile(`^[0-9]{1,4}\.[0-9]{1,4}$`)

// parseVersion parses "1.N" or "latest".
func parseVersion(s string) (Version, error) {
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, "latest") {
		return MaxVersion, nil
	}
	if !versionPattern.MatchString(s) {
		return Version{}, fmt.Errorf("invalid API version %q", s)
	}
	major, minor, _ := strings.Cut(s, ".")
	ma, err1 := strconv.Atoi(major)
	mi, err2 := strconv.Atoi(minor)
	if err1 != nil || err2 != nil {
		return Version{}, fmt.Errorf("invalid API version %q", s)
	}
	return Version{ma, mi}, nil
}

// requestedVersion reads the version from Ironic's header or, failing that,
// from "OpenStack-API-Version: baremetal 1.N".
func requestedVersion(r *http.Request) (string, bool) {
	if v := r.Header.Get(versionHeader); v != "" {
		return v, true
	}
	for _, h := range r.Header.Values(genericHeader) {
		for _, part := range strings.Split(h, ",") {
			f := strings.Fields(part)
			if len(f) == 2 && strings.EqualFold(f[0], "baremetal") {
				return f[1], true
			}
		}
	}
	return "", false
}

// negotiateVersion sets the minimum and maximum headers on every response,
// picks the request's version (MinVersion when none is asked for) and answers
// 406 to an unparseable or unsupported one, which is what clients such as
// the baremetal CLI negotiate down from. The root document and the probes
// are unversioned, as Ironic's root is: they ignore the header.
func negotiateVersion(c *gin.Context) {
	c.Header(minVersionHeader, MinVersion.String())
	c.Header(maxVersionHeader, MaxVersion.String())
	v := MinVersion
	if raw, ok := requestedVersion(c.Request); ok && !unversionedPaths[c.Request.URL.Path] {
		parsed, err := parseVersion(raw)
		if err != nil {
			c.Header(versionHeader, MinVersion.String())
			apierror.Write(c.Writer, http.StatusNotAcceptable, fmt.Sprintf("Invalid value for %s header: %q. Use 1.N or latest.", versionHeader, raw))
			c.Abort()
			return
		}
		if parsed.Major != 1 || parsed.Minor < MinVersion.Minor || parsed.Minor > MaxVersion.Minor {
			c.Header(versionHeader, MinVersion.String())
			apierror.Write(c.Writer, http.StatusNotAcceptable, fmt.Sprintf("Version %s was requested but the minor version is not supported by this service. The supported version range is: [%s, %s].", parsed, MinVersion, MaxVersion))
			c.Abort()
			return
		}
		v = parsed
	}
	c.Header(versionHeader, v.String())
	c.Set(versionKey, v)
	c.Header("Vary", versionHeader+", "+genericHeader)
	c.Next()
}

const versionKey = "api_version"

// unversionedPaths answer whatever version a client asks for.
var unversionedPaths = map[string]bool{"/": true, "/healthz": true, "/readyz": true}

func versionOf(c *gin.Context) Version {
	if v, ok := c.Get(versionKey); ok {
		return v.(Version)
	}
	return MinVersion
}
