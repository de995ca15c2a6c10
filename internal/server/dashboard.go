package server

import (
	"context"
	"errors"
	"time"

	"github.com/consentgate/consentgate/internal/audit"
	"github.com/consentgate/consentgate/internal/oauth"
	"github.com/consentgate/consentgate/internal/web"
)

// dashboardApps lets the customer's dashboard name apps and end grants
// through the authorization server, which revokes the consent with every
// token of it and audits consent.revoked.
type dashboardApps struct {
	p     *oauth.Provider
	hooks *webhooks
}

func (a dashboardApps) ClientNames(ctx context.Context, ids []string) (map[string]string, error) {
	return a.p.ClientNames(ctx, ids)
}

func (a dashboardApps) SuspendedApps(ctx context.Context, ids []string) (map[string]bool, error) {
	return a.p.SuspendedClients(ctx, ids)
}

func (a dashboardApps) RevokeGrant(ctx context.Context, grantID, customerID string) error {
	err := a.p.RevokeGrant(ctx, grantID, customerID, "customer")
	if errors.Is(err, oauth.ErrGrantNotFound) {
		return errors.Join(web.ErrGrantNotFound, err)
	}
	if err == nil {
		// Tell the app now rather than at the next outbox round.
		a.hooks.disp.Kick()
	}
	return err
}

// dashboardHistory shows the audit log to the dashboard.
type dashboardHistory struct{ r *audit.Reader }

func (h dashboardHistory) GrantHistory(ctx context.Context, grantID string, limit int, beforeSeq int64) ([]web.AccessEvent, error) {
	evs, err := h.r.GrantHistory(ctx, grantID, limit, beforeSeq)
	if err != nil {
		return nil, err
	}
	out := make([]web.AccessEvent, len(evs))
	for i, ev := range evs {
		out[i] = web.AccessEvent{Seq: ev.Seq, OccurredAt: ev.OccurredAt, Type: string(ev.Type), Outcome: string(ev.Outcome),
			Reason: ev.Reason, AccountID: ev.AccountID, Method: ev.Method, Path: ev.Path, Status: ev.Status}
	}
	return out, nil
}

func (h dashboardHistory) LastAccess(ctx context.Context, grantIDs []string) (map[string]time.Time, error) {
	return h.r.LastAccess(ctx, grantIDs)
}

// dashboardProofs proves to a customer that an entry of their history is
// in the signed log: it finds the newest signed tree head covering the
// entry (signing one now if none does yet), builds the inclusion proof and
// checks it the way an outside verifier would.
type dashboardProofs struct {
	r    *audit.Reader
	cp   *audit.Checkpointer
	keys *audit.Signer // its KeySet: every audit key of the ring
}

func (d dashboardProofs) EntryProof(ctx context.Context, grantID string, seq int64) (*web.EntryProof, error) {
	th, err := d.r.LatestTreeHead(ctx)
	if err != nil {
		return nil, err
	}
	if th == nil || th.TreeSize < seq {
		if th, err = d.cp.Checkpoint(ctx); err != nil {
			return nil, err
		}
		if th == nil || th.TreeSize < seq {
			return nil, web.ErrEntryNotFound
		}
	}
	p, err := d.r.InclusionProof(ctx, seq, th.TreeSize)
	if err != nil {
		return nil, err
	}
	if p.Event.GrantID != grantID {
		return nil, web.ErrEntryNotFound
	}
	ev := p.Event
	return &web.EntryProof{
		Event: web.AccessEvent{Seq: ev.Seq, OccurredAt: ev.OccurredAt, Type: string(ev.Type), Outcome: string(ev.Outcome),
			Reason: ev.Reason, AccountID: ev.AccountID, Method: ev.Method, Path: ev.Path, Status: ev.Status},
		LeafHash: p.LeafHash, Path: p.Path, TreeSize: th.TreeSize, RootHash: th.RootHash,
		SignedAt: time.UnixMilli(th.Timestamp), KeyID: th.KeyID, Note: th.Note,
		Checked: audit.CheckInclusion(p, *th, d.keys.KeySet()),
	}, nil
}
