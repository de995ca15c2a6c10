package httpapi

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/consentgate/consentgate/internal/apperr"
	"github.com/consentgate/consentgate/internal/audit"
)

// registerTreeRoutes mounts the Merkle tree endpoints of SPEC §13 on the
// auditor API's group (same authentication).
func registerTreeRoutes(g gin.IRouter, h *auditHandler) {
	g.GET("/checkpoints", h.checkpoints)
	g.GET("/proof/inclusion", h.inclusion)
	g.GET("/proof/consistency", h.consistency)
}

type treeHeadPage struct {
	Data       []audit.TreeHead `json:"data"`
	NextCursor *string          `json:"next_cursor"`
}

// checkpoints answers a page of signed tree heads, newest first. The
// cursor is the tree_size of the last head of the previous page.
func (h *auditHandler) checkpoints(c *gin.Context) {
	q := c.Request.URL.Query()
	limit, cursor, err := pageParams(q)
	if err != nil {
		WriteProblem(c, err)
		return
	}
	var before int64
	if cursor != "" {
		if before, err = strconv.ParseInt(cursor, 10, 64); err != nil || before < 1 {
			WriteProblem(c, apperr.New(apperr.InvalidCursor, "cursor is malformed; pass the next_cursor of the previous page."))
			return
		}
	}
	if limit == 0 {
		limit = audit.DefaultLimit
	}
	heads, err := h.log.TreeHeads(c.Request.Context(), limit+1, before)
	if err != nil {
		h.fail(c, err)
		return
	}
	page := treeHeadPage{Data: heads}
	if len(heads) > limit {
		page.Data = heads[:limit]
		next := strconv.FormatInt(heads[limit-1].TreeSize, 10)
		page.NextCursor = &next
	}
	if page.Data == nil {
		page.Data = []audit.TreeHead{}
	}
	c.JSON(http.StatusOK, page)
}

func (h *auditHandler) inclusion(c *gin.Context) {
	q := c.Request.URL.Query()
	seq, err := sizeParam(q, "seq", "the seq of the event to prove")
	if err != nil {
		WriteProblem(c, err)
		return
	}
	size, err := sizeParam(q, "tree_size", "the tree_size of a signed tree head from GET /v1/audit/checkpoints")
	if err != nil {
		WriteProblem(c, err)
		return
	}
	p, err := h.log.InclusionProof(c.Request.Context(), seq, size)
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, p)
}

func (h *auditHandler) consistency(c *gin.Context) {
	q := c.Request.URL.Query()
	first, err := sizeParam(q, "first", "the tree_size of the older tree head")
	if err != nil {
		WriteProblem(c, err)
		return
	}
	second, err := sizeParam(q, "second", "the tree_size of the newer tree head")
	if err != nil {
		WriteProblem(c, err)
		return
	}
	p, err := h.log.ConsistencyProof(c.Request.Context(), first, second)
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, p)
}

// sizeParam reads a required positive integer query parameter.
func sizeParam(q url.Values, name, what string) (int64, error) {
	vs := q[name]
	switch {
	case len(vs) == 0:
		return 0, apperr.New(apperr.InvalidRequest, name+" is required: "+what+".")
	case len(vs) > 1:
		return 0, apperr.New(apperr.InvalidRequest, name+" must be given at most once.")
	}
	n, err := strconv.ParseInt(vs[0], 10, 64)
	if err != nil || n < 1 {
		return 0, apperr.New(apperr.InvalidRequest, name+" must be a positive integer: "+what+".")
	}
	return n, nil
}
