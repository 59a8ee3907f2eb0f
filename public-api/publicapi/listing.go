package publicapi

import (
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/ferric-metal/ferric/shared/fault"
)

// maxLimit caps a page, as Ironic's [api] max_limit.
const maxLimit = 1000

// Query parameters every list accepts.
var pagingParams = []string{"limit", "marker", "sort_key", "sort_dir", "fields", "detail"}

// allowQuery refuses query parameters outside allowed: a misspelt filter
// must not silently return everything.
func allowQuery(c *gin.Context, allowed ...[]string) error {
	for name := range c.Request.URL.Query() {
		if !contains(allowed, name) {
			var all []string
			for _, set := range allowed {
				all = append(all, set...)
			}
			sort.Strings(all)
			if len(all) == 0 {
				return fault.New(fault.Invalid, "Unknown query parameter %q: this resource takes none.", name)
			}
			return fault.New(fault.Invalid, "Unknown query parameter %q. Valid parameters: %s.", name, strings.Join(all, ", "))
		}
	}
	return nil
}

func contains(sets [][]string, name string) bool {
	for _, set := range sets {
		for _, s := range set {
			if s == name {
				return true
			}
		}
	}
	return false
}

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

// checkSortKey refuses sort keys naming fields newer than the request's
// version (406); unknown keys are refused by the conductor (400).
func checkSortKey[T any](t fieldTable[T], key string, v Version) error {
	if m, ok := t.minor(key); ok && !v.AtLeast(m) {
		return notAcceptable("Sorting by "+key, m, v)
	}
	return nil
}

// parseFields reads fields=a,b (API 1.8 and later); nil means all.
func parseFields[T any](c *gin.Context, t fieldTable[T], minor int) ([]string, error) {
	raw, ok := c.GetQuery("fields")
	if !ok {
		return nil, nil
	}
	v := versionOf(c)
	if !v.AtLeast(minor) {
		return nil, notAcceptable("The fields parameter", minor, v)
	}
	var fields []string
	for _, f := range strings.Split(raw, ",") {
		if f = strings.TrimSpace(f); f != "" {
			fields = append(fields, f)
		}
	}
	if len(fields) == 0 {
		return nil, fault.New(fault.Invalid, "The fields parameter names no field.")
	}
	if err := t.checkFields(fields, v); err != nil {
		return nil, err
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

// listShape reads detail= (API 1.43 and later on resource lists) and
// fields=, which exclude each other. detailPath is true on .../detail
// routes, which are always detailed and take no detail=.
func listShape[T any](c *gin.Context, t fieldTable[T], detailPath bool, detailMinor, fieldsMinor int) (detail bool, fields []string, err error) {
	v := versionOf(c)
	d, err := parseBoolQuery(c, "detail")
	if err != nil {
		return false, nil, err
	}
	switch {
	case d != nil && detailPath:
		return false, nil, fault.New(fault.Invalid, "The detail parameter is not allowed on a .../detail path.")
	case d != nil && !v.AtLeast(detailMinor):
		return false, nil, notAcceptable("The detail parameter", detailMinor, v)
	}
	detail = detailPath || (d != nil && *d)
	if fields, err = parseFields(c, t, fieldsMinor); err != nil {
		return false, nil, err
	}
	if detail && fields != nil {
		return false, nil, fault.New(fault.Invalid, "Can not specify ?detail=True and fields in the same request.")
	}
	return detail, fields, nil
}

// listKeys is the fields each item of a list shows.
func listKeys(detail bool, fields, summary []string, idField string) []string {
	switch {
	case detail:
		return nil
	case fields != nil:
		for _, f := range fields {
			if f == idField {
				return fields
			}
		}
		return append([]string{idField}, fields...) // items stay identifiable
	}
	return summary
}

// nextURL is the link to the page after lastID, repeating the request's
// filters, or "" when this page was not full.
func nextURL(c *gin.Context, n int, p page, lastID string) string {
	if n < p.limit || lastID == "" {
		return ""
	}
	q := url.Values{}
	for k, v := range c.Request.URL.Query() {
		q[k] = v
	}
	q.Set("limit", strconv.Itoa(p.limit))
	q.Set("marker", lastID)
	return baseURL(c) + c.Request.URL.Path + "?" + q.Encode()
}

// renderList writes {collection: items, "next": url, collection+"_links":
// [{next}]}; gophercloud pages with the latter, other clients the former.
// extraLinkKeys are further spellings gophercloud reads (conductor_links).
func renderList(c *gin.Context, collection string, items []doc, next string, extraLinkKeys ...string) {
	body := doc{{collection, items}}
	if next != "" {
		links := []doc{{{"href", next}, {"rel", "next"}}}
		body = append(body, member{"next", next}, member{collection + "_links", links})
		for _, k := range extraLinkKeys {
			body = append(body, member{k, links})
		}
	}
	writeJSON(c, http.StatusOK, body)
}
