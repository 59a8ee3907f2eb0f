package publicapi

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/shared/fault"
)

// maxHistoryEvent is how much of an event a history list shows, as Ironic:
// longer ones are cut (the event itself shows it whole).
const maxHistoryEvent = 255

// historyDoc renders one event of a node's history: uuid, created_at,
// severity and event, and in detail event_type, conductor and user; its
// link is the event's own.
func historyDoc(r *renderer, nodeUUID string, e *store.HistoryEvent, detail bool) doc {
	event := e.Event
	if !detail && len([]rune(event)) > maxHistoryEvent {
		event = string([]rune(event)[:maxHistoryEvent-4]) + "..."
	}
	d := doc{{"uuid", e.UUID}, {"created_at", timestamp(&e.CreatedAt)}, {"severity", e.Severity}, {"event", event}}
	if detail {
		d = append(d, member{"event_type", e.EventType}, member{"conductor", str(e.Conductor)}, member{"user", str(e.User)})
	}
	link := r.base + "/v1/nodes/" + nodeUUID + "/history/" + e.UUID
	return append(d, member{"links", []doc{{{"href", link}, {"rel", "self"}}}})
}

// nodeHistory handles GET /v1/nodes/{node}/history (API 1.78): the node's
// events, oldest first, paged by marker and limit; detail=true adds who and
// what kind.
func (a *API) nodeHistory(c *gin.Context) {
	if !versionOf(c).AtLeast(vNodeHistory) {
		a.fail(c, fault.New(fault.NotFound, "The resource could not be found."))
		return
	}
	if err := allowQuery(c, []string{"detail", "marker", "limit"}); err != nil {
		a.fail(c, err)
		return
	}
	detail, err := parseBoolQuery(c, "detail")
	if err != nil {
		a.fail(c, err)
		return
	}
	p, err := parsePage(c)
	if err != nil {
		a.fail(c, err)
		return
	}
	n, events, err := a.conductor.NodeHistory(c.Request.Context(), c.Param("node"), p.marker, p.limit)
	if err != nil {
		a.fail(c, err)
		return
	}
	r := newRenderer(c)
	items := make([]doc, len(events))
	for i := range events {
		items[i] = historyDoc(r, n.UUID, &events[i], detail != nil && *detail)
	}
	last := ""
	if len(events) > 0 {
		last = events[len(events)-1].UUID
	}
	renderList(c, "history", items, nextURL(c, len(events), p, last))
}

// nodeHistoryEvent handles GET /v1/nodes/{node}/history/{event} (API 1.78):
// one event in detail.
func (a *API) nodeHistoryEvent(c *gin.Context) {
	if !versionOf(c).AtLeast(vNodeHistory) {
		a.fail(c, fault.New(fault.NotFound, "The resource could not be found."))
		return
	}
	if err := allowQuery(c); err != nil {
		a.fail(c, err)
		return
	}
	n, e, err := a.conductor.NodeHistoryEvent(c.Request.Context(), c.Param("node"), c.Param("event"))
	if err != nil {
		a.fail(c, err)
		return
	}
	writeJSON(c, http.StatusOK, historyDoc(newRenderer(c), n.UUID, e, true))
}
