package publicapi

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/ferric-metal/ferric/shared/fault"
)

// maxLimit caps a page, as Ironic's [api] max_limit.
const maxLimit = 1000

// page holds the paging parameters common to every list.
type page struct {
	limit   int
	marker  string
	sortKey string
	desc    bool
}

func parsePage(c *gin.Context) (page, error) {
	p := page{limit: maxLimit, marker: c.Query("marker"), sortKey: c.Query("sort_key")}
	if s, ok := c.GetQuery("limit"); ok {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			return p, fault.New(fault.Invalid, "Limit must be a positive integer, got %q.", s)
		}
		p.limit = min(n, maxLimit)
	}
	switch d := c.DefaultQuery("sort_dir", "asc"); d {
	case "asc":
	case "desc":
		p.desc = true
	default:
		return p, fault.New(fault.Invalid, "Invalid sort direction: %q. Acceptable values are 'asc' or 'desc'.", d)
	}
	return p, nil
}

// parseFields reads fields=a,b; nil means all. Unknown names are an error.
func parseFields(c *gin.Context, known map[string]bool) ([]string, error) {
	raw, ok := c.GetQuery("fields")
	if !ok {
		return nil, nil
	}
	var fields []string
	for _, f := range strings.Split(raw, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !known[f] {
			return nil, fault.New(fault.Invalid, "Field(s) %q are not valid.", f)
		}
		fields = append(fields, f)
	}
	if len(fields) == 0 {
		return nil, fault.New(fault.Invalid, "The fields parameter names no field.")
	}
	return fields, nil
}

func parseBoolQuery(c *gin.Context, name string) (*bool, error) {
	s, ok := c.GetQuery(name)
	if !ok {
		return nil, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return nil, fault.New(fault.Invalid, "Invalid value for %s: %q is not a boolean.", name, s)
	}
	return &b, nil
}

// nextURL is the link to the page after lastUUID, repeating the request's
// filters, or "" when this page was not full.
func nextURL(c *gin.Context, n int, p page, lastUUID string) string {
	if n < p.limit || lastUUID == "" {
		return ""
	}
	q := url.Values{}
	for k, v := range c.Request.URL.Query() {
		q[k] = v
	}
	q.Set("limit", strconv.Itoa(p.limit))
	q.Set("marker", lastUUID)
	return baseURL(c) + c.Request.URL.Path + "?" + q.Encode()
}

// renderList writes {collection: items, "next": url, collection+"_links":
// [{next}]}; gophercloud pages with the latter, other clients the former.
func renderList(c *gin.Context, collection string, items []gin.H, next string) {
	body := gin.H{collection: items}
	if next != "" {
		body["next"] = next
		body[collection+"_links"] = []gin.H{link(next, "next")}
	}
	c.JSON(200, body)
}
