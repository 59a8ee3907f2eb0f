package publicapi

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/ferric-metal/ferric/shared/apierror"
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

// Version is an API microversion.
type Version struct{ Major, Minor int }

func (v Version) String() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// AtLeast reports whether v is minor or newer (within major version 1).
func (v Version) AtLeast(minor int) bool { return v.Minor >= minor }

// parseVersion parses "1.N" or "latest".
func parseVersion(s string) (Version, error) {
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, "latest") {
		return MaxVersion, nil
	}
	major, minor, ok := strings.Cut(s, ".")
	ma, err1 := strconv.Atoi(major)
	mi, err2 := strconv.Atoi(minor)
	if !ok || err1 != nil || err2 != nil || ma < 0 || mi < 0 {
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
// the baremetal CLI negotiate down from.
func negotiateVersion(c *gin.Context) {
	c.Header(minVersionHeader, MinVersion.String())
	c.Header(maxVersionHeader, MaxVersion.String())
	v := MinVersion
	if raw, ok := requestedVersion(c.Request); ok {
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
	c.Header("Vary", versionHeader)
	c.Next()
}

const versionKey = "api_version"

func versionOf(c *gin.Context) Version {
	if v, ok := c.Get(versionKey); ok {
		return v.(Version)
	}
	return MinVersion
}
