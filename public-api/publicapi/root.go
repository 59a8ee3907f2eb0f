package publicapi

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// baseURL is the scheme and host the client used to reach us, for links.
func baseURL(c *gin.Context) string {
	scheme := "http"
	if c.Request.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + c.Request.Host
}

func link(href, rel string) gin.H { return gin.H{"href": href, "rel": rel} }

func versionDoc(base string) gin.H {
	return gin.H{
		"id":          "v1",
		"links":       []gin.H{link(base+"/v1/", "self")},
		"status":      "CURRENT",
		"min_version": MinVersion.String(),
		"version":     MaxVersion.String(),
	}
}

// root handles GET /: the version discovery document.
func (a *API) root(c *gin.Context) {
	base := baseURL(c)
	c.JSON(http.StatusOK, gin.H{
		"name":            "Ferric (OpenStack Ironic API compatible)",
		"description":     "Ferric provisions bare-metal servers; this is its operator API, a subset of Ironic's v1 API.",
		"default_version": versionDoc(base),
		"versions":        []gin.H{versionDoc(base)},
	})
}

// v1Root handles GET /v1: the v1 document with links to the resources.
func (a *API) v1Root(c *gin.Context) {
	base := baseURL(c)
	res := func(name string) []gin.H {
		return []gin.H{link(base+"/v1/"+name+"/", "self"), link(base+"/"+name+"/", "bookmark")}
	}
	v1 := gin.H{
		"id":          "v1",
		"links":       []gin.H{link(base+"/v1/", "self")},
		"media_types": []gin.H{{"base": "application/json", "type": "application/vnd.openstack.ironic.v1+json"}},
		"chassis":     res("chassis"),
		"nodes":       res("nodes"),
		"ports":       res("ports"),
		"drivers":     res("drivers"),
		"version":     versionDoc(base),
	}
	if versionOf(c).AtLeast(vConductors) {
		v1["conductors"] = res("conductors")
	}
	c.JSON(http.StatusOK, v1)
}
