package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
)

// EntryProofs proves to a customer that an entry of their history is in
// the signed audit log (SPEC §13).
type EntryProofs interface {
	// EntryProof returns the inclusion proof of the event seq, which must
	// belong to grantID (else an error wrapping ErrEntryNotFound), in the
	// tree of the newest signed tree head, signing one if none covers it.
	EntryProof(ctx context.Context, grantID string, seq int64) (*EntryProof, error)
}

// ErrEntryNotFound marks an entry that does not exist or is not of the
// grant asked about.
var ErrEntryNotFound = errors.New("web: no such entry in this grant's history")

// EntryProof is what the proof page shows.
type EntryProof struct {
	Event    AccessEvent
	LeafHash string   // base64 SHA-256(0x00 ‖ canonical event)
	Path     []string // base64 RFC 9162 audit path
	TreeSize int64
	RootHash string
	SignedAt time.Time
	KeyID    string
	Note     string // the signed tree head, as the auditor API serves it
	// Checked is the result of checking the path against the signed root
	// and the head's signature with the published key.
	Checked error
}

type proofPageView struct {
	view
	Grant    grantView
	Event    eventView
	Seq      int64
	Proof    *EntryProof
	Verified bool
	Problem  string
	Back     string
}

// entryProof shows the proof that one entry of a grant's history is in
// the signed log, with everything an outside tool needs to check it.
func (h *Handler) entryProof(c *gin.Context) {
	ctx := c.Request.Context()
	path := "/dashboard/consents/" + url.PathEscape(c.Param("grant_id"))
	sess, name, accts, ok := h.customerPage(c, path+"/proof/"+url.PathEscape(c.Param("seq")))
	if !ok {
		return
	}
	g, ok := h.ownGrant(c, sess.CustomerID)
	if !ok {
		return
	}
	seq, err := strconv.ParseInt(c.Param("seq"), 10, 64)
	if err != nil || seq < 1 || h.d.Proofs == nil {
		h.entryNotFound(c, path)
		return
	}
	p, err := h.d.Proofs.EntryProof(ctx, g.ID, seq)
	if errors.Is(err, ErrEntryNotFound) {
		h.entryNotFound(c, path)
		return
	}
	if err != nil {
		h.internalError(c, "dashboard: entry proof", err)
		return
	}
	names, err := h.d.Apps.ClientNames(ctx, []string{g.ClientID})
	if err != nil {
		h.internalError(c, "dashboard: app name", err)
		return
	}
	gv := h.grantView(g, names, accts, nil, h.now())
	v := proofPageView{view: view{Title: "Proof of an entry in the access log", SignedInAs: name, CSRF: sess.CSRFToken},
		Grant: gv, Event: describeEvent(p.Event, accts), Seq: seq, Proof: p, Verified: p.Checked == nil, Back: path + "#history"}
	if p.Checked != nil {
		v.Problem = p.Checked.Error()
	}
	h.render(c, http.StatusOK, "proof", v)
}

func (h *Handler) entryNotFound(c *gin.Context, back string) {
	h.errorPage(c, http.StatusNotFound, "Entry not found",
		"We could not find this entry in the history of this app connection.", back, "Back to the history")
}
